/**
 * Proves, on real NATS and Postgres, that external usage older than the lateness horizon is kept
 * for finance instead of refused (issue 15, point 9, metering side):
 * - `POST /v1/events` answers `accepted-late` for such a report (200), records it in the log as
 *   `ExternalAllocationReportedLate` under the event's derived id, and a retry is a duplicate;
 * - a late allocation is never billable usage: it is not in `GET /v1/usage` (not even accrued
 *   while open), no `UsageRecorded` is published for it, a `LateUsageRecorded` is — also when
 *   only its stop was late, or when a producer on the bus published it beyond the horizon;
 * - finance sees it in `GET /v1/usage/late` as JSON or CSV (Accept with q-values, 406 when
 *   neither fits), open and closed, with the LateUsageRecorded id, paged with a cursor; tenants
 *   cannot read the report.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS, HOUR_MS } from '@fastgpu/money';
import { externalEventId } from '../src/external/external.ingest';
import { lateUsageIdFor } from '../src/usage/usage.projection';
import { History } from './history';
import { MeteringHarness, started, stopped } from './api-harness';

let h: MeteringHarness;
const keys: Record<string, string> = {};
const SOURCE = 'urn:partner:cluster-7';

beforeAll(async () => {
  h = await MeteringHarness.start();
  keys.acme = await h.issueKey('k-acme', 'acme', 'tenant');
  keys.finance = await h.issueKey('k-finance', null, 'finance');
});

afterAll(async () => {
  await h?.close();
});

interface LateItem {
  tenantId: string;
  allocationId: string;
  state: string;
  gpuMs: number | null;
  usageId: string | null;
  reportedLateAt: string;
  startAt: string | null;
  endAt: string | null;
}

describe('late external usage', () => {
  let sequenceBefore: number;
  const lateStartMs = () => h.now - 40 * DAY_MS;

  it('accepts reports beyond the horizon as accepted-late, in the log as ExternalAllocationReportedLate', async () => {
    sequenceBefore = await h.lastSequence();
    const batch = [
      started('late-1', 'late-alloc', lateStartMs(), 3),
      stopped('late-2', 'late-alloc', lateStartMs() + HOUR_MS),
      started('late-3', 'late-open', lateStartMs()),
      // Started late, stopped on time: the stop is news, the allocation is late.
      started('late-4', 'late-long', h.now - 36 * DAY_MS, 1),
      stopped('late-5', 'late-long', h.now - 35 * DAY_MS),
      started('ok-1', 'on-time', h.now - 2 * HOUR_MS),
    ];
    const response = await h.call('POST', '/v1/events', keys.acme, { body: batch });
    expect(response.status).toBe(200);
    expect(response.body.results.map((r: { status: string }) => r.status)).toEqual(['accepted-late', 'accepted-late', 'accepted-late', 'accepted-late', 'accepted', 'accepted']);
    expect(response.body).toMatchObject({ accepted: 2, acceptedLate: 4, duplicates: 0, rejected: 0 });
    const logged = await h.eventsAfter(sequenceBefore);
    expect(logged.map((e) => [e.type, e.id])).toEqual([
      ['ExternalAllocationReportedLate', externalEventId('acme', SOURCE, 'late-1')],
      ['ExternalAllocationReportedLate', externalEventId('acme', SOURCE, 'late-2')],
      ['ExternalAllocationReportedLate', externalEventId('acme', SOURCE, 'late-3')],
      ['ExternalAllocationReportedLate', externalEventId('acme', SOURCE, 'late-4')],
      ['ExternalAllocationStopped', externalEventId('acme', SOURCE, 'late-5')],
      ['ExternalAllocationStarted', externalEventId('acme', SOURCE, 'ok-1')],
    ]);
    expect(logged[0]!.data).toMatchObject({ allocationId: 'late-alloc', tenantId: 'acme', report: 'started', gpus: 3, at: new Date(lateStartMs()).toISOString(), receivedAt: new Date(h.now).toISOString() });
    const retried = await h.call('POST', '/v1/events', keys.acme, { body: batch.slice(0, 2) });
    expect(retried.body).toMatchObject({ acceptedLate: 0, duplicates: 2 });
    // Only ahead of receipt is still refused.
    const ahead = await h.call('POST', '/v1/events', keys.acme, { body: started('ahead-1', 'ahead', h.now + 6 * 60_000) });
    expect(ahead.status).toBe(422);
    expect(ahead.body.results[0]).toMatchObject({ status: 'rejected', field: 'data.startedAt' });
  });

  it('meters late allocations into LateUsageRecorded only, never into usage', async () => {
    // A producer on the bus publishing beyond the horizon of the stream time is late too.
    const history = new History(h.env.bus);
    await history.publish(
      history.event('ExternalAllocationStarted', { allocationId: 'bus-late', tenantId: 'acme', projectId: 'ext', gpuModel: 'H100', gpus: 8, capacityType: 'reserved', startedAt: new Date(h.now - 50 * DAY_MS).toISOString() }),
      history.event('ExternalAllocationStopped', { allocationId: 'bus-late', tenantId: 'acme', stoppedAt: new Date(h.now - 50 * DAY_MS + HOUR_MS).toISOString() }),
    );
    await h.settle();
    const usage = await h.call('GET', `/v1/usage?from=${new Date(h.now - 60 * DAY_MS).toISOString()}&to=${new Date(h.now + HOUR_MS).toISOString()}&window=month&groupBy=allocation&accrueUntil=${new Date(h.now).toISOString()}`, keys.acme);
    expect(usage.status).toBe(200);
    expect(usage.body.rows.map((r: { allocation: string }) => r.allocation)).toEqual(['on-time']);
    const published = (await h.eventsAfter(sequenceBefore)).filter((e) => e.type === 'UsageRecorded' || e.type === 'LateUsageRecorded');
    expect(published.map((e) => [e.type, (e.data as { allocationId?: string }).allocationId, (e.data as { gpuMs: number }).gpuMs]).sort()).toEqual([
      ['LateUsageRecorded', 'bus-late', 8 * HOUR_MS],
      ['LateUsageRecorded', 'late-alloc', 3 * HOUR_MS],
      ['LateUsageRecorded', 'late-long', DAY_MS],
    ]);
  });

  it('shows finance the late usage as JSON, open and closed, with the LateUsageRecorded ids', async () => {
    const report = await h.call('GET', '/v1/usage/late?tenantId=acme', keys.finance);
    expect(report.status).toBe(200);
    const items = report.body.items as LateItem[];
    expect(items.map((i) => [i.allocationId, i.state, i.gpuMs])).toEqual([
      ['bus-late', 'closed', 8 * HOUR_MS],
      ['late-alloc', 'closed', 3 * HOUR_MS],
      ['late-long', 'closed', DAY_MS],
      ['late-open', 'open', null],
    ]);
    const lateUsage = (await h.eventsAfter(sequenceBefore)).filter((e) => e.type === 'LateUsageRecorded');
    for (const item of items.filter((i) => i.state === 'closed')) {
      const event = lateUsage.find((e) => (e.data as { allocationId: string }).allocationId === item.allocationId)!;
      expect(item.usageId).toBe(event.id);
      expect(item.usageId).toBe(lateUsageIdFor(event.causationid!, `x:acme:${item.allocationId}`));
      expect([item.startAt, item.endAt, item.reportedLateAt]).toEqual([(event.data as { startAt: string }).startAt, (event.data as { endAt: string }).endAt, (event.data as { reportedLateAt: string }).reportedLateAt]);
    }
    expect(items.find((i) => i.allocationId === 'late-alloc')!.reportedLateAt).toBe(new Date(h.now).toISOString());
    expect((await h.call('GET', '/v1/usage/late?state=open', keys.finance)).body.items.map((i: LateItem) => i.allocationId)).toEqual(['late-open']);
    expect((await h.call('GET', '/v1/usage/late', keys.acme)).status).toBe(403);
  });

  it('exports CSV when Accept prefers it, honours q=0, and answers 406 when nothing fits', async () => {
    const csv = await h.call('GET', '/v1/usage/late?tenantId=acme&state=closed', keys.finance, { headers: { accept: 'application/json;q=0.5, text/csv' } });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (csv.body as string).split('\r\n');
    expect(lines[0]).toBe('tenant_id,allocation_id,project_id,gpu_model,capacity_type,gpus,start_at,end_at,gpu_ms,state,reported_late_at,usage_id');
    expect(lines.slice(1, -1).map((l) => l.split(',').slice(1, 2)[0])).toEqual(['bus-late', 'late-alloc', 'late-long']);
    expect(lines[2]).toMatch(new RegExp(`^acme,late-alloc,ext,L40S,on-demand,3,${new Date(lateStartMs()).toISOString()},${new Date(lateStartMs() + HOUR_MS).toISOString()},${3 * HOUR_MS},closed,`));
    const refused = await h.call('GET', '/v1/usage/late', keys.finance, { headers: { accept: 'text/csv;q=0, application/json' } });
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/);
    const none = await h.call('GET', '/v1/usage/late', keys.finance, { headers: { accept: 'application/pdf' } });
    expect(none.status).toBe(406);
    expect(none.body.error.field).toBe('Accept');
  });

  it('pages with a cursor, without gaps or repeats, and refuses a cursor it did not give', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const response: { status: number; headers: Headers; body: { items: LateItem[]; nextCursor: string | null } } = await h.call('GET', `/v1/usage/late?tenantId=acme&limit=3${cursor ? `&cursor=${cursor}` : ''}`, keys.finance);
      expect(response.status).toBe(200);
      seen.push(...response.body.items.map((i) => i.allocationId));
      cursor = response.body.nextCursor;
      if (cursor) expect(response.headers.get('link')).toBe(`</v1/usage/late?tenantId=acme&limit=3&cursor=${cursor}>; rel="next"`);
      else break;
    }
    expect(seen).toEqual(['bus-late', 'late-alloc', 'late-long', 'late-open']);
    const bad = await h.call('GET', '/v1/usage/late?cursor=not-ours', keys.finance);
    expect([bad.status, bad.body.error.field]).toEqual([400, 'cursor']);
    expect((await h.call('GET', '/v1/usage/late?limit=0', keys.finance)).body.error.field).toBe('limit');
  });
});
