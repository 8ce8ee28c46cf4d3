/**
 * Proves accrual at period close on real NATS and Postgres (issue 15, point 1): an allocation
 * running across a period's end is on the closing period's invoice when that invoice is
 * finalized (usage up to the boundary, from event times), through `POST …/finalize` and through
 * `finalize-due` for a tenant whose only usage is one allocation running all along (no usage
 * record, so no draft existed before the close); its stop later bills only the remainder on the
 * next invoice (with the allocation's minimum on it); the close is an event in the log; and a
 * rebuild from sequence 1 gives the same rows in every billing table (finalized documents
 * included, so byte-identical).
 *
 * Periods come from the real now: the closed period is the month before the current one (UTC).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPeriods, periodBounds, periodOf } from '@fastgpu/money';
import { invoiceIdFor } from '../../src/ledger/invoice-ids';
import { BillingHarness, FINANCE, FLAT_PRICES, usageData } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

let h: BillingHarness;
const now = Date.now();
const closing = addPeriods(periodOf(now, 'UTC'), -1);
const next = addPeriods(closing, 1);
const boundaryMs = periodBounds(closing, 'UTC').endMs;
const at = (offsetMs: number) => new Date(boundaryMs + offsetMs).toISOString();

async function runSubtask(tenantId: string, subtaskId: string, gpus: number, startOffsetMs: number): Promise<number> {
  const common = { jobId: `job-${subtaskId}`, tenantId, subtaskId, attempt: 1, nodeId: 'node-1', leaseEpoch: 1 };
  await h.publish('SubtaskPlaced', { ...common, projectId: 'p1', gpuModel: 'a100', gpus, gpuIndices: [0], capacityType: 'on-demand', runtimeMs: 1000, placedAt: at(startOffsetMs) }, { tenantId });
  return h.publish('SubtaskStarted', { ...common, startedAt: at(startOffsetMs) }, { tenantId });
}

async function stopSubtask(tenantId: string, subtaskId: string, gpus: number, startOffsetMs: number, endOffsetMs: number, startSequence: number): Promise<void> {
  const common = { jobId: `job-${subtaskId}`, tenantId, subtaskId, attempt: 1, nodeId: 'node-1', leaseEpoch: 1 };
  const endSequence = await h.publish('SubtaskCompleted', { ...common, exitCode: 0, endedAt: at(endOffsetMs) }, { tenantId });
  await h.publish('UsageRecorded', usageData(tenantId, `use-${subtaskId}`, at(startOffsetMs), at(endOffsetMs), { gpus, jobId: common.jobId, subtaskId, sourceSequences: [startSequence, endSequence] }), { tenantId });
}

beforeAll(async () => {
  // No grace: the month before the current one is always due, whatever today's date.
  h = await BillingHarness.start({ graceMs: 0 });
  await h.tenant('acme');
  await h.tenant('globex', 'Europe/Berlin');
  await h.priceBook(FLAT_PRICES);
});

afterAll(async () => {
  await h?.close();
});

describe('accrual at period close', () => {
  let longStart = 0;
  let shortStart = 0;

  it('puts running allocations on the closing invoice up to the boundary when finance finalizes it', async () => {
    // A finished hour on the closing period (so a draft exists), and two allocations still running.
    await h.publish('UsageRecorded', usageData('acme', 'done-1', at(-5 * HOUR_MS), at(-4 * HOUR_MS)), { tenantId: 'acme' });
    longStart = await runSubtask('acme', 'long', 2, -2 * HOUR_MS); // 2 GPUs × 2 h before the boundary
    shortStart = await runSubtask('acme', 'short', 1, -10_000); // 10 s before the boundary
    await h.settle();
    const invoiceId = invoiceIdFor('acme', closing);
    const before = await h.streamEnd();
    const r = await h.call('POST', `/v1/invoices/${invoiceId}/finalize`, FINANCE, { reason: 'month end' });
    expect(r.status, r.text).toBe(200);

    const document = await h.document(invoiceId);
    expect(document.status).toBe('finalized');
    const usage = document.lines.filter((l) => l.kind === 'usage');
    expect(usage.map((l) => [l.servicePeriod, l.quantityGpuMs])).toEqual([[closing, HOUR_MS + 2 * 2 * HOUR_MS + 10_000]]);
    // 5 GPU-hours and 10 GPU-seconds at 2.00: 10.005555… → 10.01
    expect(usage[0]!.amount).toBe('10.01');

    // The close is a fact in the log, before the finalization.
    const closes = await h.env.bus.jsm.streams.getMessage(h.env.bus.topology.streams.events, { last_by_subj: h.env.bus.topology.subjects.billingTenant('acme') });
    expect(closes?.seq).toBeGreaterThan(before);
    expect(closes?.json<{ type: string; data: { period: string } }>()).toMatchObject({ type: 'BillingPeriodClosed', data: { period: closing } });
  });

  it('bills only the remainder at the stop, with the allocation minimum on its last piece', async () => {
    await stopSubtask('acme', 'long', 2, -2 * HOUR_MS, 30 * 60_000, longStart); // 2 GPUs × 30 min after the boundary
    await stopSubtask('acme', 'short', 1, -10_000, 20_000, shortStart); // 20 s after it; 30 s in all → billed 60 s
    await h.settle();
    const closed = await h.document(invoiceIdFor('acme', closing));
    expect(closed.lines.filter((l) => l.kind === 'usage').map((l) => l.quantityGpuMs)).toEqual([HOUR_MS + 2 * 2 * HOUR_MS + 10_000]);
    const draft = await h.document(invoiceIdFor('acme', next));
    expect(draft.lines.map((l) => [l.kind, l.servicePeriod, l.quantityGpuMs])).toEqual([['usage', next, 2 * 30 * 60_000 + 50_000]]);
    const review = await h.call('GET', '/v1/billing/review-queue', FINANCE);
    expect(review.json.items).toEqual([]);
  });

  it('closes the due period of a tenant with nothing but a running allocation, and finalize-due bills it', async () => {
    const globexClosing = addPeriods(periodOf(now, 'Europe/Berlin'), -1);
    const globexBoundary = periodBounds(globexClosing, 'Europe/Berlin').endMs;
    await h.publish('LeaseGranted', { leaseId: 'lease-1', tenantId: 'globex', projectId: 'p1', nodeId: 'node-2', gpuModel: 'a100', gpus: 4, gpuIndices: [0, 1, 2, 3], leaseEpoch: 1, capacityType: 'on-demand', grantedAt: new Date(globexBoundary - HOUR_MS).toISOString() }, { tenantId: 'globex' });
    await h.settle();
    expect((await h.call('GET', `/v1/invoices/${invoiceIdFor('globex', globexClosing)}`, FINANCE)).status).toBe(404);

    const r = await h.call('POST', '/v1/invoices/finalize-due', FINANCE, { asOf: new Date().toISOString() });
    expect(r.status, r.text).toBe(200);
    expect(r.json.finalized.map((f: { invoiceId: string }) => f.invoiceId)).toContain(invoiceIdFor('globex', globexClosing));
    const document = await h.document(invoiceIdFor('globex', globexClosing));
    expect(document.lines.map((l) => [l.kind, l.quantityGpuMs, l.amount])).toEqual([['usage', 4 * HOUR_MS, '8.00']]);
  });

  it('rebuilds every billing table with identical rows, accruals and finalized documents included', async () => {
    const accruals = await h.runtime.db.selectFrom('billing_accruals').selectAll().execute();
    expect(accruals.length).toBe(3);
    expect(await h.rebuildDifferences()).toEqual([]);
  });
});
