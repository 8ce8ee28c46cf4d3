/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies are typed at run time */
import 'reflect-metadata';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { FastGpuConfig } from '@fastgpu/config';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { startSimulatedFleet, type SimulatedNode } from '../../apps/node-simulator/src/simulated-node';
import { allServices } from '../../apps/fastgpu/src/services';

/**
 * The console tests' running platform: every service in one process (as `npm start` runs them)
 * on real NATS JetStream and PostgreSQL with this file's own database and streams, simulated GPU
 * nodes, the built console served at `/console`, and Debian's Chromium driven by playwright-core
 * (the system browser, never a downloaded one). One system and one browser per test file.
 */
export const ADMIN = 'console-admin-key-0123456789abcdef';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Screenshots are test artefacts (git-ignored), one PNG per view. */
export const SCREENSHOTS = path.join(root, 'reports/console');

/** Far above what a browser sends: these tests are about views, not the limiter. */
const NO_RATE_LIMITS: Partial<FastGpuConfig> = { rateLimitKeyPerSecond: 1_000_000, rateLimitKeyBurst: 10_000_000, rateLimitTenantPerSecond: 1_000_000, rateLimitTenantBurst: 10_000_000 };

/** A list price every test tenant is billed with, so invoices carry amounts. */
export const PRICE_BOOK = {
  priceBookId: 'list',
  currency: 'USD',
  effectiveFrom: '2020-01-01T00:00:00.000Z',
  prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.40', incrementMs: 1000, minimumMs: 0 }],
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

/** Builds the console once when `dist/console` has no build yet (`npm run build:console`). */
export function ensureConsoleBuilt(): void {
  if (existsSync(path.join(root, 'dist/console/index.html'))) return;
  const build = spawnSync('npm', ['run', 'build:console'], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
  if (build.status !== 0) throw new Error(`npm run build:console failed (${build.status}):\n${build.stdout}\n${build.stderr}`);
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

/** The Chromium on PATH (Debian's package; `.ci/run` installs it), or a clear error. */
export function chromiumPath(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' }).trim().split('\n')[0]!;
  } catch {
    throw new Error('no chromium on PATH: the console browser tests drive the system Chromium (apt-get install -y chromium; .ci/run does it)');
  }
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** The main views are checked at a desktop width and at a phone's. */
export const DESKTOP = { width: 1280, height: 800 } as const;
export const PHONE = { width: 390, height: 844 } as const;

/** Saves a full-page PNG of what the page shows now under reports/console/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[] }>;
}

/** axe-core's violations of impact serious or critical on the page as it is now (WCAG 2 A/AA rules). */
export async function seriousAccessibilityViolations(page: Page): Promise<AxeViolation[]> {
  // These run in the page (globalThis is its window; this project's types have no DOM). The console's
  // Content-Security-Policy refuses inline scripts, so axe is evaluated over the DevTools protocol,
  // which the policy does not govern, rather than added as a script element.
  if (!(await page.evaluate(() => 'axe' in globalThis))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const page = globalThis as any;
    const result = await page.axe.run(page.document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return result.violations as AxeViolation[];
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
}
