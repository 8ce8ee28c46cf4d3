/**
 * Proves the billing side of late usage on real NATS and Postgres (issue 15, point 9): usage that
 * metering records as reported beyond the lateness horizon (`LateUsageRecorded`) lands in the
 * review queue and is never billed automatically, like usage too old for an adjustment; finance
 * bills an item onto an open draft of its tenant (`LateUsageBilled`: an adjustment line for its
 * service period) or dismisses it (`LateUsageDismissed`), one decision per item (the same decision
 * again answers the same, another 409; a finalized or foreign invoice 422); the late-usage report
 * lists items with their decisions as JSON and CSV; a rebuild gives identical rows.
 *
 * Periods come from the real now: the usage is of four months ago, the draft of the current month.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPeriods, periodBounds, periodOf } from '@fastgpu/money';
import { invoiceIdFor } from '../../src/ledger/invoice-ids';
import { BillingHarness, FINANCE, FLAT_PRICES, usageData } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

let h: BillingHarness;
const current = periodOf(Date.now(), 'UTC');
const old = addPeriods(current, -4);
const oldStart = periodBounds(old, 'UTC').startMs;
const currentStart = periodBounds(current, 'UTC').startMs;
const iso = (ms: number) => new Date(ms).toISOString();

async function lateUsage(usageId: string, hours: number): Promise<void> {
  await h.publish(
    'LateUsageRecorded',
    { usageId, tenantId: 'acme', projectId: 'p1', allocationId: `alloc-${usageId}`, gpuModel: 'a100', capacityType: 'on-demand', gpus: 1, startAt: iso(oldStart + HOUR_MS), endAt: iso(oldStart + (1 + hours) * HOUR_MS), gpuMs: hours * HOUR_MS, reportedLateAt: new Date().toISOString(), sourceSequences: [] },
    { tenantId: 'acme' },
  );
}
const itemOf = async (usageId: string) => ((await h.call('GET', '/v1/billing/review-queue?tenantId=acme', FINANCE)).json.items as Array<Record<string, unknown>>).find((i) => i.referenceId === usageId)!;

beforeAll(async () => {
  h = await BillingHarness.start();
  await h.tenant('acme');
  await h.tenant('globex');
  await h.priceBook(FLAT_PRICES);
});

afterAll(async () => {
  await h?.close();
});

describe('late usage in the review queue', () => {
  it('queues usage reported beyond the horizon without billing it', async () => {
    await lateUsage('late-1', 2);
    await h.settle();
    expect(await itemOf('late-1')).toMatchObject({ kind: 'late-usage', servicePeriod: old, piece: 0, status: 'open', gpuMs: 2 * HOUR_MS });
    expect((await h.call('GET', `/v1/invoices?tenantId=acme`, FINANCE)).json.invoices).toEqual([]);
  });

  it('bills an item onto an open draft as an adjustment of its period, once', async () => {
    await h.publish('UsageRecorded', usageData('acme', 'now-1', iso(currentStart), iso(currentStart + HOUR_MS)), { tenantId: 'acme' });
    await h.publish('UsageRecorded', usageData('globex', 'now-g', iso(currentStart), iso(currentStart + HOUR_MS)), { tenantId: 'globex' });
    await h.settle();
    const draft = invoiceIdFor('acme', current);
    const item = await itemOf('late-1');
    const path = `/v1/billing/review-queue/${item.eventId as string}/0`;

    const foreign = await h.call('POST', `${path}/bill`, FINANCE, { invoiceId: invoiceIdFor('globex', current), reason: 'agreed with the customer' });
    expect([foreign.status, foreign.json.error.code, foreign.json.error.field]).toEqual([422, 'invoice_not_open', 'invoiceId']);

    const before = await h.streamEnd();
    const billed = await h.call('POST', `${path}/bill`, FINANCE, { invoiceId: draft, reason: 'agreed with the customer' });
    expect(billed.status, billed.text).toBe(200);
    expect(billed.json).toEqual({ usageEventId: item.eventId, piece: 0, status: 'billed', invoiceId: draft });
    expect(await h.streamEnd()).toBe(before + 1);
    const document = await h.document(draft);
    expect(document.lines.map((l) => [l.kind, l.servicePeriod, l.quantityGpuMs, l.amount])).toEqual([
      ['usage', current, HOUR_MS, '2.00'],
      ['adjustment', old, 2 * HOUR_MS, '4.00'],
    ]);

    // The same decision again answers it; another is refused; nothing more is published.
    expect((await h.call('POST', `${path}/bill`, FINANCE, { invoiceId: draft, reason: 'agreed with the customer' })).json).toEqual(billed.json);
    const dismiss = await h.call('POST', `${path}/dismiss`, FINANCE, { reason: 'changed my mind' });
    expect([dismiss.status, dismiss.json.error.code]).toEqual([409, 'review_item_decided']);
    expect(await h.streamEnd()).toBe(before + 1);
  });

  it('dismisses an item: never billed, and reported with its decision', async () => {
    await lateUsage('late-2', 1);
    await h.settle();
    const late = await itemOf('late-2');
    expect((await h.call('POST', `/v1/billing/review-queue/${late.eventId as string}/0/dismiss`, FINANCE, { reason: 'duplicate of an invoiced allocation' })).status).toBe(200);
    expect((await h.call('POST', `/v1/billing/review-queue/${late.eventId as string}/0/bill`, FINANCE, { invoiceId: invoiceIdFor('acme', current), reason: 'after all' })).status).toBe(409);
    const document = await h.document(invoiceIdFor('acme', current));
    expect(document.lines.filter((l) => l.kind === 'adjustment').map((l) => l.quantityGpuMs)).toEqual([2 * HOUR_MS]);

    const csv = await h.call('GET', '/v1/billing/late-usage?tenantId=acme', FINANCE, undefined, { accept: 'text/csv' });
    expect(csv.status).toBe(200);
    const rows = csv.text.trim().split('\n');
    expect(rows[0]).toBe('event_id,piece,kind,tenant_id,usage_id,service_period,gpu_model,capacity_type,gpus,start_at,end_at,gpu_ms,status,invoice_id,event_sequence,reason');
    expect(rows.slice(1).map((r) => r.split(',').slice(2, 5).concat(r.split(',')[12]!))).toEqual([
      ['late-usage', 'acme', 'late-1', 'billed'],
      ['late-usage', 'acme', 'late-2', 'dismissed'],
    ]);
  });

  it('rebuilds every billing table with identical rows', async () => {
    expect(await h.rebuildDifferences()).toEqual([]);
  });
});
