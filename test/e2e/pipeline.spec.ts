/**
 * The whole pipeline, end to end, in one process on real NATS JetStream and PostgreSQL:
 * a job submitted over HTTP is divided into sub-tasks, placed by the scheduler on simulated
 * nodes, run, metered from event times, priced on the tenant's draft invoice and counted in
 * the SLA report. Usage and the invoice line must equal GPUs × the simulated run time,
 * priced exactly; a retried POST with the same Idempotency-Key returns the same job.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountForGpuMs, formatMoney, gpuMs, roundToMinor } from '@fastgpu/money';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { startSimulatedFleet, type SimulatedNode } from '../../apps/node-simulator/src/simulated-node';
import { allServices } from '../../apps/fastgpu/src/services';

const ADMIN = 'e2e-admin-key-0123456789abcdef';
/** 36 000 per GPU-hour = 1 cent per GPU-ms... per 100 GPU-ms: amounts stay exact and visible. */
const PRICE_PER_GPU_HOUR = '36000';

let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let fleet: SimulatedNode[];

async function call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // non-JSON bodies (CSV, PDF) stay text
  }
  return { status: response.status, body: parsed as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN, heartbeatIntervalMs: 200 });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, allServices, { port: 0, logger: false });
  fleet = await startSimulatedFleet(env.bus, 'a100:8x2', { speed: 1, heartbeatIntervalMs: 200 });
});

afterAll(async () => {
  for (const node of fleet ?? []) await node.stop();
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('pipeline', () => {
  it('runs a job from submission to usage, invoice line and SLA report', async () => {
    const finance = await call('POST', '/v1/api-keys', ADMIN, { role: 'finance' });
    expect(finance.status).toBe(201);
    const priceBook = await call('POST', '/v1/price-books', finance.body.secret, {
      priceBookId: 'list',
      currency: 'USD',
      effectiveFrom: '2026-01-01T00:00:00.000Z',
      prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: PRICE_PER_GPU_HOUR, incrementMs: 1, minimumMs: 0 }],
    });
    expect(priceBook.status).toBe(201);
    expect((await call('POST', '/v1/tenants', ADMIN, { tenantId: 'acme', name: 'Acme AI' })).status).toBe(201);
    const key = (await call('POST', '/v1/tenants/acme/api-keys', ADMIN, {})).body.secret as string;

    const request = { projectId: 'vision', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 2, runtimeSeconds: 1 };
    const submitted = await call('POST', '/v1/jobs', key, request, { 'idempotency-key': 'e2e-1' });
    expect(submitted.status).toBe(202);
    const jobId = submitted.body.jobId as string;
    const retried = await call('POST', '/v1/jobs', key, request, { 'idempotency-key': 'e2e-1' });
    expect(retried.body.jobId).toBe(jobId);

    const job = await eventually(
      async () => {
        const view = await call('GET', `/v1/jobs/${jobId}`, key);
        return view.body.state === 'succeeded' ? view.body : undefined;
      },
      { timeoutMs: 30_000, message: 'job did not complete' },
    );
    expect(job.subtasks).toHaveLength(2);
    const gpuMsRun = (job.subtasks as Array<{ gpus: number; startedAt: string; endedAt: string; gpuModel: string }>).reduce((sum, s) => {
      expect(s.gpuModel).toBe('a100');
      return sum + gpuMs(s.gpus, Date.parse(s.startedAt), Date.parse(s.endedAt));
    }, 0);
    expect(gpuMsRun).toBeGreaterThanOrEqual(2 * 2 * 1000);

    const from = new Date(Date.parse(job.submittedAt) - 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const usage = await eventually(async () => {
      const u = await call('GET', `/v1/usage?from=${from}&to=${to}&window=hour`, key);
      return u.status === 200 && u.body.totalGpuMs === gpuMsRun ? u.body : undefined;
    });
    expect(usage.totalGpuMs).toBe(gpuMsRun);

    const period = job.submittedAt.slice(0, 7);
    const expected = formatMoney(roundToMinor(amountForGpuMs(gpuMsRun, PRICE_PER_GPU_HOUR), 'USD'), 'USD');
    const invoice = await eventually(async () => {
      const list = await call('GET', `/v1/invoices?period=${period}`, key);
      const summary = list.body?.invoices?.[0];
      if (!summary) return undefined;
      const doc = await call('GET', `/v1/invoices/${summary.invoiceId}`, key, undefined, { accept: 'application/json' });
      return doc.body?.total === expected ? doc.body : undefined;
    });
    expect(invoice.status).toBe('draft');
    const a100Lines = (invoice.lines as Array<{ gpuModel: string | null; quantityGpuMs: number | null; amount: string }>).filter((l) => l.gpuModel === 'a100');
    expect(a100Lines.reduce((sum, l) => sum + (l.quantityGpuMs ?? 0), 0)).toBe(gpuMsRun);
    expect(invoice.total).toBe(expected);

    const sla = await eventually(async () => {
      const response = await call('GET', `/v1/sla-reports?period=${period}`, key);
      const report = response.body?.reports?.find((r: { tenantId: string }) => r.tenantId === 'acme');
      return report?.jobs?.succeeded === 1 ? report : undefined;
    });
    expect(sla.jobs).toMatchObject({ finished: 1, succeeded: 1, failedUser: 0, failedPlatform: 0 });
    expect(sla.queueWaitMs.count).toBe(2);
  });
});
