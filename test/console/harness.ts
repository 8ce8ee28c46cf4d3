/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies are typed at run time */
import 'reflect-metadata';
import type { FastGpuConfig } from '@fastgpu/config';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { startSimulatedFleet, type SimulatedNode } from '../../apps/node-simulator/src/simulated-node';
import { allServices } from '../../apps/fastgpu/src/services';
import { ensureConsoleBuilt } from './browser';

/**
 * The console tests' running platform: every service in one process (as `npm start` runs them)
 * on real NATS JetStream and PostgreSQL with this file's own database and streams, simulated GPU
 * nodes and the built console served at `/console` (the browser side is ./browser.ts). One system
 * and one browser per test file.
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

export interface ConsoleSystem {
  env: TestEnvironment;
  runtime: OwnedRuntime;
  started: StartedApp;
  fleet: SimulatedNode[];
  /** The platform's origin; the console is at `${url}/console`. */
  url: string;
  http(method: string, path: string, key: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; text: string }>;
  /** A tenant (created once) and a fresh tenant key's secret. */
  tenantKey(tenantId: string): Promise<string>;
  platformKey(role: 'finance' | 'sre'): Promise<string>;
  /** A job submitted through the API (not the console), for what a test needs around it. */
  submitJob(key: string, request: Record<string, unknown>, idempotencyKey: string): Promise<string>;
  /** Polls the API until the job is in `state`. */
  waitForJob(key: string, jobId: string, state: string, timeoutMs?: number): Promise<any>;
  close(): Promise<void>;
}

/**
 * Starts the platform with a simulated fleet (default: two 8-GPU A100 nodes) whose run times are
 * multiplied by `speed`, and publishes the list price book.
 */
export async function startConsoleSystem(options: { fleet?: string; speed?: number } = {}): Promise<ConsoleSystem> {
  ensureConsoleBuilt();
  const heartbeatIntervalMs = 200;
  const env = await createTestEnvironment({ adminKey: ADMIN, heartbeatIntervalMs, ...NO_RATE_LIMITS });
  const runtime = await createRuntime(env.config);
  const started = await startServices(runtime, allServices, { port: 0, logger: false });
  const fleet = await startSimulatedFleet(env.bus, options.fleet ?? 'a100:8x2', { speed: options.speed ?? 1, heartbeatIntervalMs });
  const http: ConsoleSystem['http'] = async (method, route, key, body, headers = {}) => {
    const response = await fetch(`${started.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed, text };
  };
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
    env,
    runtime,
    started,
    fleet,
    url: started.url,
    http,
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
    async close() {
      for (const node of fleet) await node.stop();
      await started.close();
      await runtime.close();
      await env.cleanup();
    },
  };
  return system;
}

