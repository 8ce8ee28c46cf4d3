/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies are typed at run time */
import 'reflect-metadata';
import type { FastGpuConfig } from '@fastgpu/config';
import { startWholePlatform, type WholePlatform } from '../support/whole-platform';
import { ensureConsoleBuilt } from './browser';

/**
 * The console tests' running platform: the whole system (test/support/whole-platform.ts) with the
 * built console served at `/console` and the list price book published (the browser side is
 * ./browser.ts). One system and one browser per test file.
 */
export const ADMIN = 'console-admin-key-0123456789abcdef';
/** A flow of several views, each waiting for the platform, on a loaded 2-core machine: more than vitest's default minute. */
export const FLOW_TIMEOUT_MS = 180_000;

/** Far above what a browser sends: these tests are about views, not the limiter. */
const NO_RATE_LIMITS: Partial<FastGpuConfig> = { rateLimitKeyPerSecond: 1_000_000, rateLimitKeyBurst: 10_000_000, rateLimitTenantPerSecond: 1_000_000, rateLimitTenantBurst: 10_000_000 };

/** A list price every test tenant is billed with: a dollar per GPU-second, so seconds of a test job are dollars on its invoice. */
export const PRICE_BOOK = {
  priceBookId: 'list',
  currency: 'USD',
  effectiveFrom: '2020-01-01T00:00:00.000Z',
  prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '3600', incrementMs: 1000, minimumMs: 0 }],
};

export interface ConsoleSystem extends WholePlatform {
  http(method: string, path: string, key: string, body?: unknown, headers?: Record<string, string>): ReturnType<WholePlatform['http']>;
  /** A tenant (created once) and a fresh tenant key's secret. */
  tenantKey(tenantId: string): Promise<string>;
  platformKey(role: 'finance' | 'sre'): Promise<string>;
  /** A job submitted through the API (not the console), for what a test needs around it. */
  submitJob(key: string, request: Record<string, unknown>, idempotencyKey: string): Promise<string>;
  /** Polls the API until the job is in `state`. */
  waitForJob(key: string, jobId: string, state: string, timeoutMs?: number): Promise<any>;
}

/**
 * Starts the platform with a simulated fleet (default: two 8-GPU A100 nodes) whose run times are
 * multiplied by `speed`, and publishes the list price book.
 */
export async function startConsoleSystem(options: { fleet?: string; speed?: number } = {}): Promise<ConsoleSystem> {
  ensureConsoleBuilt();
  const platform = await startWholePlatform({ adminKey: ADMIN, fleet: options.fleet, speed: options.speed, config: NO_RATE_LIMITS });
  const http = platform.http;
  const expectStatus = (what: string, answer: { status: number; text: string }, ...statuses: number[]) => {
    if (!statuses.includes(answer.status)) throw new Error(`${what}: ${answer.status} ${answer.text}`);
  };
  const tenants = new Set<string>();
  const platformKey: ConsoleSystem['platformKey'] = async (role) => {
    const key = await http('POST', '/v1/api-keys', ADMIN, { role });
    expectStatus(`${role} key`, key, 201);
    return key.body.secret as string;
  };
  const finance = await platformKey('finance');
  expectStatus('price book', await http('POST', '/v1/price-books', finance, PRICE_BOOK), 201);
  const system: ConsoleSystem = {
    ...platform,
    async tenantKey(tenantId) {
      if (!tenants.has(tenantId)) {
        expectStatus(`tenant ${tenantId}`, await http('POST', '/v1/tenants', ADMIN, { tenantId, name: tenantId }), 201);
        tenants.add(tenantId);
      }
      const key = await http('POST', `/v1/tenants/${tenantId}/api-keys`, ADMIN, {});
      expectStatus(`key of ${tenantId}`, key, 201);
      return key.body.secret as string;
    },
    platformKey,
    async submitJob(key, request, idempotencyKey) {
      const submitted = await http('POST', '/v1/jobs', key, request, { 'idempotency-key': idempotencyKey });
      expectStatus('job', submitted, 202, 200);
      return submitted.body.jobId as string;
    },
    async waitForJob(key, jobId, state, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const job = await http('GET', `/v1/jobs/${jobId}`, key);
        if (job.body?.state === state) return job.body;
        if (Date.now() > deadline) throw new Error(`job ${jobId} not ${state} in ${timeoutMs} ms (it is ${job.body?.state ?? job.status})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
  return system;
}

