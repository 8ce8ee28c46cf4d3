/**
 * Proves that `GET /v1/usage` filters by project and time as the other list routes do (issue 14,
 * Integrators), on a real nats-server and PostgreSQL with metering running: external allocations
 * of two projects at known hours, two tenants.
 * - `projectId` selects exactly that project's GPU-ms (the same figure `groupBy=project` shows
 *   for it unfiltered), and `from`/`to` (half-open) narrow it further; every row carries only
 *   that project;
 * - a tenant's filter never reaches another tenant's project of the same name; finance without
 *   `tenantId` sees the project across tenants;
 * - a malformed `projectId` is 400 with that field; a cursor of a filtered query is refused for
 *   another filter (400 `cursor`), and the answer says which project it is filtered to.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, logNow } from '@fastgpu/testing';
import { meteringService } from '../../apps/metering/src/metering.service';
import { startPlatform, type Answer, type Platform } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

let p: Platform;
const keys: Record<'acme' | 'globex' | 'finance', string> = { acme: '', globex: '', finance: '' };
/** A whole UTC hour a day before the log's now: every allocation lies within the 35 days metering accepts. */
let base: number;
const iso = (ms: number) => new Date(ms).toISOString();

interface Usage {
  totalGpuMs: number;
  projectId: string | null;
  nextCursor: string | null;
  rows: Array<{ project?: string; gpuMs: number }>;
}

async function usage(key: string, query: Record<string, string>): Promise<Omit<Answer, 'body'> & { body: Usage }> {
  const answer = await p.http('GET', `/v1/usage?${new URLSearchParams(query).toString()}`, key);
  return { ...answer, body: answer.body as Usage };
}

beforeAll(async () => {
  p = await startPlatform([meteringService]);
  keys.acme = await p.key('tenant', 'acme');
  keys.globex = await p.key('tenant', 'globex');
  keys.finance = await p.key('finance', null);
  base = Math.floor((await logNow(p.env.bus)) / HOUR_MS) * HOUR_MS - 24 * HOUR_MS;
  const allocation = (id: string, projectId: string, gpus: number, fromHour: number, toHour: number) => [
    { specversion: '1.0', id: `${id}-start`, source: 'urn:test:cluster', type: 'ExternalAllocationStarted', data: { allocationId: id, projectId, gpuModel: 'a100', gpus, capacityType: 'on-demand', startedAt: iso(base + fromHour * HOUR_MS) } },
    { specversion: '1.0', id: `${id}-stop`, source: 'urn:test:cluster', type: 'ExternalAllocationStopped', data: { allocationId: id, stoppedAt: iso(base + toHour * HOUR_MS) } },
  ];
  // acme: p1 for 2 h × 1 GPU (-10 h … -8 h) and 1 h × 4 GPUs (-3 h … -2 h); p2 for 1 h × 2 GPUs. globex: p1 1 h × 1 GPU.
  const acme = await p.http('POST', '/v1/events', keys.acme, [...allocation('a1', 'p1', 1, -10, -8), ...allocation('a2', 'p2', 2, -6, -5), ...allocation('a3', 'p1', 4, -3, -2)]);
  expect(acme.status, acme.text).toBe(200);
  const globex = await p.http('POST', '/v1/events', keys.globex, allocation('g1', 'p1', 1, -7, -6));
  expect(globex.status, globex.text).toBe(200);
  await eventually(async () => ((await usage(keys.finance, { from: iso(base - 12 * HOUR_MS), to: iso(base), window: 'hour' })).body.totalGpuMs === 9 * HOUR_MS ? true : undefined), {
    timeoutMs: 20_000,
    message: 'metering did not apply the allocations',
  });
});
afterAll(async () => p?.close());

describe('GET /v1/usage filters', () => {
  const range = () => ({ from: iso(base - 12 * HOUR_MS), to: iso(base), window: 'hour' });

  it("selects one project's GPU-ms, the figure groupBy=project shows for it, and narrows it by time", async () => {
    const p1 = await usage(keys.acme, { ...range(), projectId: 'p1' });
    expect(p1.status, p1.text).toBe(200);
    expect([p1.body.totalGpuMs, p1.body.projectId]).toEqual([6 * HOUR_MS, 'p1']);
    const grouped = await usage(keys.acme, { ...range(), groupBy: 'project' });
    const byProject = (project: string) => grouped.body.rows.filter((r) => r.project === project).reduce((sum, r) => sum + r.gpuMs, 0);
    expect([byProject('p1'), byProject('p2'), grouped.body.projectId]).toEqual([p1.body.totalGpuMs, 2 * HOUR_MS, null]);
    const rows = await usage(keys.acme, { ...range(), projectId: 'p1', groupBy: 'project' });
    expect(new Set(rows.body.rows.map((r) => r.project))).toEqual(new Set(['p1']));
    // Half-open [from, to): the last four hours hold only a3 of p1; [-10 h, -9 h) one hour of a1.
    expect((await usage(keys.acme, { from: iso(base - 4 * HOUR_MS), to: iso(base), window: 'hour', projectId: 'p1' })).body.totalGpuMs).toBe(4 * HOUR_MS);
    expect((await usage(keys.acme, { from: iso(base - 10 * HOUR_MS), to: iso(base - 9 * HOUR_MS), window: 'hour', projectId: 'p1' })).body.totalGpuMs).toBe(HOUR_MS);
    expect((await usage(keys.acme, { ...range(), projectId: 'p3' })).body.totalGpuMs).toBe(0);
  });

  it("keeps a tenant's filter to its own project; finance sees the project across tenants", async () => {
    expect((await usage(keys.globex, { ...range(), projectId: 'p1' })).body.totalGpuMs).toBe(HOUR_MS);
    expect((await usage(keys.globex, { ...range(), projectId: 'p2' })).body.totalGpuMs).toBe(0);
    expect((await usage(keys.finance, { ...range(), projectId: 'p1' })).body.totalGpuMs).toBe(7 * HOUR_MS);
    expect((await usage(keys.finance, { ...range(), projectId: 'p1', tenantId: 'globex' })).body.totalGpuMs).toBe(HOUR_MS);
  });

  it('refuses a malformed projectId with the field, and a cursor of another filter', async () => {
    for (const bad of ['p 1', 'p\u0000', 'x'.repeat(300)]) {
      const answer = await usage(keys.acme, { ...range(), projectId: bad });
      expect([answer.status, (answer.body as unknown as { error: { field: string } }).error.field]).toEqual([400, 'projectId']);
    }
    const first = await usage(keys.acme, { ...range(), projectId: 'p1', limit: '2' });
    expect(first.body.nextCursor).not.toBeNull();
    const next = await usage(keys.acme, { ...range(), projectId: 'p1', limit: '2', cursor: first.body.nextCursor! });
    expect(next.status, next.text).toBe(200);
    const other = await usage(keys.acme, { ...range(), projectId: 'p2', limit: '2', cursor: first.body.nextCursor! });
    expect([other.status, (other.body as unknown as { error: { field: string } }).error.field]).toEqual([400, 'cursor']);
  });
});
