/**
 * Every registered projection (`npm run replay -- <name>`) rebuilds from the log into rows equal
 * to the live ones, after a real run of the pipeline: a job placed, run, metered, invoiced and
 * counted in the SLA read model.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { Rebuild } from '@fastgpu/replay';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { startSimulatedFleet, type SimulatedNode } from '../../apps/node-simulator/src/simulated-node';
import { allServices } from '../../apps/fastgpu/src/services';
import { replayableProjections } from '../../apps/fastgpu/src/cli/replay.registry';

const ADMIN = 'replay-admin-key-0123456789abcdef';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let fleet: SimulatedNode[];

async function call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) };  
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN, heartbeatIntervalMs: 200 });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, allServices, { port: 0, logger: false });
  fleet = await startSimulatedFleet(env.bus, 'a100:8x1', { speed: 0.001, heartbeatIntervalMs: 200 });
});

afterAll(async () => {
  for (const node of fleet ?? []) await node.stop();
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('replay of every projection', () => {
  it('rebuilds each registered projection into rows equal to the live ones', async () => {
    expect((await call('POST', '/v1/price-books', ADMIN, { priceBookId: 'list', currency: 'USD', effectiveFrom: '2026-01-01T00:00:00.000Z', prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.40' }] })).status).toBe(201);
    expect((await call('POST', '/v1/tenants', ADMIN, { tenantId: 'acme', name: 'Acme' })).status).toBe(201);
    const key = (await call('POST', '/v1/tenants/acme/api-keys', ADMIN, {})).body.secret as string;
    const job = await call('POST', '/v1/jobs', key, { projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 2, runtimeSeconds: 60 }, { 'idempotency-key': 'replay-all-1' });
    expect(job.status).toBe(202);
    await eventually(async () => (await call('GET', `/v1/jobs/${job.body.jobId}`, key)).body.state === 'succeeded', { timeoutMs: 30_000 });
    await eventually(async () => ((await call('GET', '/v1/invoices', key)).body.invoices ?? []).length === 1, { timeoutMs: 30_000 });

    const names = Object.keys(replayableProjections);
    expect(names).toEqual(expect.arrayContaining(['usage', 'reliability-sla', 'intake-jobs', 'intake-directory', 'billing-ledger']));
    for (const name of names) {
      const rebuild = new Rebuild(env.bus, runtime.db, replayableProjections[name]!);
      await rebuild.prepare();
      await rebuild.catchUp();
      const result = await rebuild.alignAndCompare();
      expect({ name, equal: result.equal }).toEqual({ name, equal: true });
      await rebuild.discard();
    }
  });
});
