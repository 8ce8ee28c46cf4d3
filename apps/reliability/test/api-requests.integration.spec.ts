/**
 * Proves that the API availability SLO counts API requests only: probes and health reads
 * (`/healthz`, `/readyz`, `/v1/health`, `/metrics`, with or without a query) leave the
 * reliability_api_requests counters untouched, while tenant and operator API calls, refusals
 * included, are counted — on the reliability service running on real NATS and PostgreSQL.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { ReliabilityEngine } from '../src/reliability.engine';
import { ReliabilityModule } from '../src/reliability.module';
import { countsAsApiRequest } from '../src/slo/api-requests.recorder';

const ADMIN_KEY = 'test-admin-key-0123456789abcdef';

let env: TestEnvironment;
let runtime: OwnedRuntime;
let started: StartedApp;
let engine: ReliabilityEngine;

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN_KEY });
  runtime = await createRuntime(env.config);
  started = await startServices(runtime, [{ name: 'reliability', module: ReliabilityModule.withOptions({ slaAutoClose: false }) }], { port: 0, logger: false });
  engine = started.app.get(ReliabilityEngine);
});
afterAll(async () => {
  await started?.close();
  await runtime?.close();
  await env?.cleanup();
});

/** Requests counted so far, all tenants and minutes together, after the recorder has written what it holds. */
async function countedRequests(): Promise<number> {
  await engine.recorder.flush();
  const rows = await runtime.db.selectFrom('reliability_api_requests').select(['total']).execute();
  return rows.reduce((sum, row) => sum + Number(row.total), 0);
}

async function get(path: string, key?: string): Promise<Response> {
  const response = await fetch(`${started.url}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  await response.arrayBuffer();
  return response;
}

describe('API requests counted for the API availability SLO', () => {
  it('does not count probes and health reads', async () => {
    const before = await countedRequests();
    const probes = [await get('/healthz'), await get('/readyz'), await get('/healthz?verbose=1'), await get('/v1/health', ADMIN_KEY), await get('/v1/health?x=1', ADMIN_KEY), await get('/v1/health'), await get('/metrics')];
    // They were answered (so the hook ran for each), with their usual statuses.
    expect(probes.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 401, 200]);
    expect(await countedRequests()).toBe(before);
  });

  it('counts API calls, refusals included', async () => {
    const before = await countedRequests();
    const period = new Date().toISOString().slice(0, 7);
    const answers = [await get(`/v1/sla-reports?period=${period}`, ADMIN_KEY), await get(`/v1/sla-reports?period=${period}`), await get('/v1/healthcheck')];
    expect(answers.map((r) => r.status)).toEqual([200, 401, 404]);
    expect(await countedRequests()).toBe(before + answers.length);
  });

  it('matches only the probe routes themselves', () => {
    for (const url of ['/healthz', '/readyz', '/metrics', '/v1/health', '/v1/health?detail=1', '/healthz?', '/console', '/console/', '/console/assets/index-1.js', '/console/jobs/j1?x=1']) expect(countsAsApiRequest(url)).toBe(false);
    for (const url of ['/v1/healthcheck', '/healthzz', '/v1/health/x', '/v1/jobs', '/v1/sla-reports?period=2026-10', '/x/healthz', '/consoles', '/v1/console']) expect(countsAsApiRequest(url)).toBe(true);
  });
});
