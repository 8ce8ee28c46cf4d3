/**
 * Proves metering's HTTP side on real NATS and Postgres: external usage through
 * `POST /v1/events` (batches, idempotent retries, 409 on a changed payload that changes nothing,
 * reports beyond the lateness horizon accepted as late, ahead of it and tenant checks refused
 * with reasons) and straight on the bus, metered like ours;
 * `GET /v1/usage` in hour/day/month windows of any zone, additive, tenant-scoped (finance sees
 * all); reconciliation against JobCompleted; and a valid event the projection cannot apply
 * stalling it, visible as `projection:usage` in /v1/health (and as down in /healthz).
 *
 * Its "now" is the log's clock (`logNow`): the lateness horizon compares producer times with
 * stream receipt times, so the service clock is pinned to that same instant and every other
 * instant is derived from it — the file passes on any date.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastSequence } from '@fastgpu/messaging';
import { DAY_MS, HOUR_MS } from '@fastgpu/money';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, insertTestApiKey, logNow, type TestEnvironment } from '@fastgpu/testing';
import { reconcileJobs } from '../src/cli/reconcile';
import { meteringService } from '../src/metering.service';
import { History } from './history';

let NOW: number;
/** The UTC calendar day of an instant, as `YYYY-MM-DD`. */
const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
/** A usage range of whole UTC days around NOW, wide enough for every instant these tests publish. */
/** The tenants a usage answer has rows for (a range of two days may give a tenant a row per day). */
const tenantsOf = (body: { rows: Array<{ tenant: string }> }) => [...new Set(body.rows.map((r) => r.tenant))].sort();
const aroundNow = () => `from=${utcDay(NOW - DAY_MS)}&to=${utcDay(NOW + DAY_MS)}`;
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let history: History;
const keys: Record<string, string> = {};

async function call(method: string, path: string, key: string | undefined, body?: unknown, contentType = 'application/json') {
  const response = await fetch(`${app.url}${path}`, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': contentType } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function issueKey(keyId: string, tenantId: string | null, role: string): Promise<string> {
  return insertTestApiKey(env.database.db, { keyId, tenantId, role, issuedAt: new Date(NOW) });
}

function cloudEvent(id: string, type: 'ExternalAllocationStarted' | 'ExternalAllocationStopped', data: Record<string, unknown>) {
  return { specversion: '1.0', id, source: 'urn:partner:cluster-7', type, datacontenttype: 'application/json', data };
}
const started = (id: string, allocationId: string, atMs: number, gpus = 2) =>
  cloudEvent(id, 'ExternalAllocationStarted', { allocationId, projectId: 'ext', gpuModel: 'L40S', gpus, capacityType: 'on-demand', startedAt: new Date(atMs).toISOString() });
const stopped = (id: string, allocationId: string, atMs: number) => cloudEvent(id, 'ExternalAllocationStopped', { allocationId, stoppedAt: new Date(atMs).toISOString() });

async function settle(): Promise<void> {
  const last = await lastSequence(env.bus, env.bus.topology.streams.events);
  await eventually(async () => {
    const row = await env.database.db.selectFrom('projection_checkpoints').select('last_sequence').where('projection', '=', 'usage').executeTakeFirst();
    return Number(row?.last_sequence ?? 0) >= last;
  });
}

beforeAll(async () => {
  env = await createTestEnvironment();
  NOW = await logNow(env.bus);
  runtime = await createRuntime(env.config, { clock: { now: () => new Date(NOW) } });
  app = await startServices(runtime, [meteringService], { port: 0, logger: false });
  history = new History(env.bus);
  keys.acme = await issueKey('k-acme', 'acme', 'tenant');
  keys.globex = await issueKey('k-globex', 'globex', 'tenant');
  keys.finance = await issueKey('k-finance', null, 'finance');
});

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('external usage ingestion', () => {
  const batch = () => [started('e-1', 'alloc-1', NOW - 3 * HOUR_MS), stopped('e-2', 'alloc-1', NOW - HOUR_MS), started('e-3', 'alloc-2', NOW - 30 * 60_000, 1)];

  it('accepts a batch, then the same batch again idempotently, and meters it once', async () => {
    const first = await call('POST', '/v1/events', keys.acme, batch(), 'application/cloudevents-batch+json');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ accepted: 3, duplicates: 0, rejected: 0, conflicts: 0 });
    const retried = await call('POST', '/v1/events', keys.acme, batch());
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ accepted: 0, duplicates: 3 });
    await settle();
    const usage = await call('GET', `/v1/usage?${aroundNow()}&window=day&groupBy=allocation`, keys.acme);
    expect(usage.status).toBe(200);
    expect(usage.body.rows).toEqual([expect.objectContaining({ allocation: 'alloc-1', gpuMs: 2 * 2 * HOUR_MS, accruedGpuMs: 0 })]);
  });

  it('answers 409 for an id received with another payload and changes nothing', async () => {
    const before = await lastSequence(env.bus, env.bus.topology.streams.events);
    const changed = [stopped('e-4', 'alloc-2', NOW - 10 * 60_000), { ...batch()[1], data: { ...batch()[1]!.data, stoppedAt: new Date(NOW).toISOString() } }];
    const response = await call('POST', '/v1/events', keys.acme, changed);
    expect(response.status).toBe(409);
    expect(response.body.results.map((r: { id: string; status: string }) => [r.id, r.status])).toEqual([
      ['e-4', 'rejected'],
      ['e-2', 'conflict'],
    ]);
    expect(await lastSequence(env.bus, env.bus.topology.streams.events)).toBe(before);
    const receipts = await env.database.db.selectFrom('metering_external_event_receipts').select('ce_id').where('tenant_id', '=', 'acme').where('ce_id', 'in', ['e-2', 'e-4']).execute();
    expect(receipts.map((r) => r.ce_id)).toEqual(['e-2']);
  });

  it('accepts events beyond the lateness horizon as late, and rejects events ahead of it, for another tenant or malformed, each with its reason', async () => {
    const response = await call('POST', '/v1/events', keys.acme, [
      started('late-1', 'alloc-9', NOW - 36 * DAY_MS),
      started('ahead-1', 'alloc-9', NOW + 6 * 60_000),
      { ...started('other-1', 'alloc-9', NOW), data: { ...started('x', 'y', NOW).data, tenantId: 'globex' } },
      { ...started('bad-1', 'alloc-9', NOW), data: { allocationId: 'alloc-9' } },
      started('ok-1', 'alloc-3', NOW - 35 * DAY_MS + 60_000),
      started('many-1', 'alloc-9', NOW, 20_000),
    ]);
    expect(response.status).toBe(200);
    const reasons = Object.fromEntries(response.body.results.map((r: { id: string; status: string; reason?: string }) => [r.id, `${r.status}: ${r.reason ?? ''}`]));
    expect(reasons['late-1']).toBe('accepted-late: ');
    expect(reasons['ahead-1']).toMatch(/rejected: data.startedAt: more than 5 minutes ahead/);
    expect(reasons['other-1']).toMatch(/rejected: data.tenantId: does not match the API key/);
    expect(reasons['bad-1']).toMatch(/^rejected: data\.projectId: /);
    expect(reasons['ok-1']).toBe('accepted: ');
    expect(reasons['many-1']).toMatch(/rejected: data.gpus: at most 10000/);
    const allRejected = await call('POST', '/v1/events', keys.acme, started('ahead-2', 'alloc-9', NOW + 40 * DAY_MS));
    expect(allRejected.status).toBe(422);
    const allLate = await call('POST', '/v1/events', keys.acme, started('late-2', 'alloc-10', NOW - 40 * DAY_MS));
    expect([allLate.status, allLate.body.acceptedLate]).toEqual([200, 1]);
    expect((await call('POST', '/v1/events', undefined, batch())).status).toBe(401);
  });

  it('meters external events published straight on the bus, and keeps tenants apart', async () => {
    const onBus = history.event('ExternalAllocationStarted', { allocationId: 'bus-1', tenantId: 'globex', projectId: 'x', gpuModel: 'H100', gpus: 8, capacityType: 'reserved', startedAt: new Date(NOW - 2 * HOUR_MS).toISOString() });
    const stop = history.event('ExternalAllocationStopped', { allocationId: 'bus-1', tenantId: 'globex', stoppedAt: new Date(NOW - HOUR_MS).toISOString() });
    await history.publish(onBus, stop);
    await settle();
    const globex = await call('GET', `/v1/usage?${aroundNow()}&groupBy=tenant,allocation`, keys.globex);
    expect(globex.body.rows).toEqual([expect.objectContaining({ tenant: 'globex', allocation: 'bus-1', gpuMs: 8 * HOUR_MS })]);
    const acme = await call('GET', `/v1/usage?${aroundNow()}&groupBy=tenant&tenantId=globex`, keys.acme);
    expect(tenantsOf(acme.body)).toEqual(['acme']);
    const finance = await call('GET', `/v1/usage?${aroundNow()}&groupBy=tenant`, keys.finance);
    expect(tenantsOf(finance.body)).toEqual(['acme', 'globex']);
    const financeFiltered = await call('GET', `/v1/usage?${aroundNow()}&groupBy=tenant&tenantId=globex`, keys.finance);
    expect(tenantsOf(financeFiltered.body)).toEqual(['globex']);
  });
});

describe('usage API', () => {
  it('is additive in any zone: hours sum to days and days to months, DST included', async () => {
    // Usage across the Berlin fall-back night (2026-10-25) and a month boundary.
    const events = [
      ...history.subtask({ tenantId: 'zoned', jobId: 'zj1', subtaskId: 'z1', gpus: 3, startMs: Date.UTC(2026, 9, 24, 20, 17), endMs: Date.UTC(2026, 9, 25, 3, 41, 7, 123) }),
      ...history.subtask({ tenantId: 'zoned', jobId: 'zj1', subtaskId: 'z2', gpus: 1, startMs: Date.UTC(2026, 9, 31, 23, 59, 59, 999), endMs: Date.UTC(2026, 10, 1, 0, 0, 0, 1) }),
    ];
    await history.publish(...events);
    await settle();
    const total = 3 * (Date.UTC(2026, 9, 25, 3, 41, 7, 123) - Date.UTC(2026, 9, 24, 20, 17)) + 2;
    for (const tz of ['Europe/Berlin', 'UTC', 'America/New_York', 'Asia/Kolkata']) {
      const sums: Record<string, number> = {};
      for (const window of ['hour', 'day', 'month']) {
        const response = await call('GET', `/v1/usage?from=2026-10&to=2026-12&window=${window}&tz=${encodeURIComponent(tz)}&tenantId=zoned`, keys.finance);
        expect(response.status).toBe(200);
        expect(response.body.source).toBe(tz === 'Asia/Kolkata' ? 'intervals' : 'hourly');
        sums[window] = response.body.totalGpuMs;
        if (tz === 'Europe/Berlin' && window === 'month') {
          expect(response.body.windowCount).toBe(2);
          expect(response.body.rows.map((r: { localStart: string }) => r.localStart)).toEqual(['2026-10-01T00:00:00.000+02:00', '2026-11-01T00:00:00.000+01:00']);
        }
        if (tz === 'Europe/Berlin' && window === 'hour') expect(response.body.windowCount).toBe(745 + 720);
      }
      expect(sums).toEqual({ hour: total, day: total, month: total });
    }
    // Day windows sum to their month window, per zone.
    const days = await call('GET', `/v1/usage?from=2026-10&to=2026-11&window=day&tz=Europe/Berlin&tenantId=zoned`, keys.finance);
    const month = await call('GET', `/v1/usage?from=2026-10&to=2026-11&window=month&tz=Europe/Berlin&tenantId=zoned`, keys.finance);
    expect(days.body.rows.reduce((s: number, r: { gpuMs: number }) => s + r.gpuMs, 0)).toBe(month.body.rows[0].gpuMs);
    expect(days.body.rows).toHaveLength(31);
  });

  it('accrues an open allocation up to the requested cutoff, never the wall clock', async () => {
    const open = history.subtask({ tenantId: 'accrue', jobId: 'aj', subtaskId: 'a1', gpus: 2, startMs: Date.UTC(2026, 9, 20, 10) });
    await history.publish(...open);
    await settle();
    const until = await call('GET', `/v1/usage?from=2026-10-20&to=2026-10-21&tenantId=accrue&accrueUntil=2026-10-20T10:30:00Z`, keys.finance);
    expect(until.body.rows[0]).toMatchObject({ gpuMs: 2 * 30 * 60_000, accruedGpuMs: 2 * 30 * 60_000 });
    // Asked for a closed past period, it accrues to that period's end.
    const periodEnd = await call('GET', `/v1/usage?from=2026-10-20&to=2026-10-20T11:00:00Z&tenantId=accrue&accrueUntil=2026-10-24T00:00:00Z`, keys.finance);
    expect(periodEnd.body.rows[0].gpuMs).toBe(2 * HOUR_MS);
  });

  it('rejects bad parameters with the field', async () => {
    expect((await call('GET', '/v1/usage?from=2026-10-01&to=2026-10-02&tz=Mars/Base', keys.acme)).body.error.field).toBe('tz');
    expect((await call('GET', '/v1/usage?from=2026-10-01&to=2026-10-02&groupBy=colour', keys.acme)).body.error.field).toBe('groupBy');
    expect((await call('GET', '/v1/usage?from=2026-10-02&to=2026-10-01', keys.acme)).status).toBe(422);
    expect((await call('GET', '/v1/usage?from=2026-10-01T00:00:00&to=2026-10-02', keys.acme)).body.error.field).toBe('from');
    expect((await call('GET', '/v1/usage?from=2020-01-01&to=2026-10-02&window=hour', keys.acme)).status).toBe(422);
    // Without a range: the current day in the zone, by the service clock (NOW).
    const today = await call('GET', '/v1/usage?window=hour&tz=Europe/Berlin', keys.acme);
    expect(today.status).toBe(200);
    const [start, end] = berlinDayAround(NOW);
    expect([today.body.from, today.body.to, today.body.windowCount]).toEqual([new Date(start).toISOString(), new Date(end).toISOString(), (end - start) / HOUR_MS]);
  });
});

describe('reconciliation and health', () => {
  it('reports every job whose metered GPU-ms differ from the scheduler record', async () => {
    const ok = history.subtask({ tenantId: 'rec', jobId: 'rj-ok', subtaskId: 'r1', gpus: 2, startMs: NOW - 10_000, endMs: NOW });
    const off = history.subtask({ tenantId: 'rec', jobId: 'rj-off', subtaskId: 'r2', gpus: 2, startMs: NOW - 10_000, endMs: NOW });
    const completed = (jobId: string, gpuMsObserved: number) =>
      history.event('JobCompleted', { jobId, tenantId: 'rec', projectId: 'p1', outcome: 'succeeded', subtasksSucceeded: 1, subtasksFailed: 0, subtasksCancelled: 0, gpuMsObserved, completedAt: new Date(NOW).toISOString() });
    await history.publish(...ok, ...off, completed('rj-ok', 20_000), completed('rj-off', 19_000));
    await settle();
    const report = await reconcileJobs(env.database.db, { tenantId: 'rec' });
    expect(report).toMatchObject({ jobsCompared: 2, jobsMatching: 1, differencesTotal: 1 });
    expect(report.differences[0]).toMatchObject({ jobId: 'rj-off', gpuMsMetered: 20_000, gpuMsObserved: 19_000, deltaGpuMs: 1000 });
    expect(report.differences[0]!.attempts).toEqual([{ subtaskId: 'r2', attempt: 1, gpuMs: 20_000, endReason: 'completed', interrupted: false }]);
  });

  it('stalls on a valid event it cannot apply and shows it unhealthy in /healthz', async () => {
    // /healthz answers only up or down; the checks' details need an sre (or admin) key.
    const sre = await issueKey('k-sre', null, 'sre');
    const healthy = await call('GET', '/v1/health', sre);
    expect(healthy.status).toBe(200);
    expect(healthy.body.checks['projection:usage'].ok).toBe(true);
    // 2^31−1 GPUs for two hours: GPU-ms beyond the safe integer range cannot be metered exactly.
    const huge = history.subtask({ tenantId: 'huge', jobId: 'hj', subtaskId: 'h1', gpus: 2 ** 31 - 1, startMs: NOW - 2 * HOUR_MS, endMs: NOW });
    const stuckAt = await history.publish(...huge);
    await eventually(async () => (await call('GET', '/healthz', undefined)).status === 503, { timeoutMs: 10_000 });
    const unhealthy = await call('GET', '/v1/health', sre);
    expect(unhealthy.body.checks['projection:usage']).toMatchObject({ ok: false, detail: { status: 'stalled', error: expect.stringMatching(/safe integer/) } });
    expect(unhealthy.body.checks['projection:usage'].detail.stalledAtSequence).toBeLessThanOrEqual(stuckAt);
    const checkpoint = await env.database.db.selectFrom('projection_checkpoints').select(['last_sequence', 'status']).where('projection', '=', 'usage').executeTakeFirstOrThrow();
    expect(Number(checkpoint.last_sequence)).toBeLessThan(stuckAt);
    expect(checkpoint.status).toBe('stalled');
  });
});

/**
 * The Berlin calendar day containing `ms`, as UTC instants [start, end), found independently of
 * the code under test: Intl gives the local date, and Berlin is UTC+1 or UTC+2 at midnight.
 */
function berlinDayAround(ms: number): [number, number] {
  const localDate = (at: number) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Berlin', year: 'numeric', month: '2-digit', day: '2-digit' }).format(at);
  const localHour = (at: number) => Number(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', hourCycle: 'h23' }).format(at));
  const midnight = (date: string) => {
    const [y, m, d] = date.split('-').map(Number) as [number, number, number];
    const candidates = [1, 2].map((offsetHours) => Date.UTC(y, m - 1, d) - offsetHours * HOUR_MS);
    const found = candidates.find((at) => localDate(at) === date && localHour(at) === 0);
    if (found === undefined) throw new Error(`no Berlin midnight for ${date}`);
    return found;
  };
  const today = localDate(ms);
  const start = midnight(today);
  const tomorrow = localDate(start + 26 * HOUR_MS);
  return [start, midnight(tomorrow)];
}
