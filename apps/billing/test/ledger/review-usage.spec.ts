/**
 * Proves review-queue items of kind `usage` on real NATS and Postgres (issue 15, points 3 and 9):
 * usage whose service period and the next LATE_PERIODS_MAX periods are all finalized is not put on
 * any invoice automatically: each such piece becomes a `usage` item that keeps the piece it would
 * bill (GPUs, model, times, GPU-ms), is listed by the review queue and the late-usage report, and
 * is announced nowhere as billed. Finance bills one onto an open draft (`LateUsageBilled`: an
 * adjustment line of its service period that references the invoice it corrects) or dismisses it
 * (`LateUsageDismissed`: billed nowhere), one decision per item; a rebuild from the log gives
 * identical rows in every billing table.
 *
 * Periods come from the real now: the usage is of four months ago; that month and the two after it
 * are finalized; the draft is of the current month.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPeriods, periodBounds, periodOf } from '@fastgpu/money';
import { invoiceIdFor } from '../../src/ledger/invoice-ids';
import { LATE_PERIODS_MAX } from '../../src/ledger/ledger-writer';
import { ACME, BillingHarness, FINANCE, FLAT_PRICES, usageData } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

let h: BillingHarness;
const current = periodOf(Date.now(), 'UTC');
const old = addPeriods(current, -4);
const iso = (ms: number) => new Date(ms).toISOString();
const startOf = (period: string) => periodBounds(period, 'UTC').startMs;
const items = async () => (await h.call('GET', '/v1/billing/review-queue?tenantId=acme', FINANCE)).json.items as Array<Record<string, unknown>>;
const itemOf = async (usageId: string) => (await items()).find((i) => i.referenceId === usageId);

beforeAll(async () => {
  h = await BillingHarness.start();
  await h.tenant('acme');
  await h.priceBook(FLAT_PRICES);
  // The old month and the LATE_PERIODS_MAX months after it are finalized, one hour of usage each.
  for (let step = 0; step <= LATE_PERIODS_MAX; step++) {
    const period = addPeriods(old, step);
    await h.publish('UsageRecorded', usageData('acme', `base-${step}`, iso(startOf(period)), iso(startOf(period) + HOUR_MS)), { tenantId: 'acme' });
    await h.settle();
    const finalized = await h.call('POST', `/v1/invoices/${invoiceIdFor('acme', period)}/finalize`, FINANCE, { reason: 'month end' });
    expect(finalized.status, finalized.text).toBe(200);
  }
  await h.publish('UsageRecorded', usageData('acme', 'now-1', iso(startOf(current)), iso(startOf(current) + HOUR_MS)), { tenantId: 'acme' });
  await h.settle();
});

afterAll(async () => {
  await h?.close();
});

describe('usage too late for an adjustment', () => {
  it('goes to the review queue as a usage item that keeps its piece, on no invoice', async () => {
    const totals = async () => (await h.call('GET', '/v1/invoices?tenantId=acme', FINANCE)).json.invoices.map((i: { invoiceId: string; subtotal?: string; total?: string }) => [i.invoiceId, i.subtotal ?? i.total]);
    const before = await totals();
    await h.publish('UsageRecorded', usageData('acme', 'old-1', iso(startOf(old) + 10 * HOUR_MS), iso(startOf(old) + 13 * HOUR_MS), { gpus: 2, gpuMs: 2 * 3 * HOUR_MS }), { tenantId: 'acme' });
    await h.publish('UsageRecorded', usageData('acme', 'old-2', iso(startOf(old) + 20 * HOUR_MS), iso(startOf(old) + 21 * HOUR_MS)), { tenantId: 'acme' });
    await h.settle();

    const item = await itemOf('old-1');
    expect(item).toMatchObject({
      kind: 'usage',
      tenantId: 'acme',
      servicePeriod: old,
      piece: 0,
      status: 'open',
      resolvedInvoiceId: null,
      gpuModel: 'a100',
      capacityType: 'on-demand',
      gpus: 2,
      startAt: iso(startOf(old) + 10 * HOUR_MS),
      endAt: iso(startOf(old) + 13 * HOUR_MS),
      gpuMs: 2 * 3 * HOUR_MS,
    });
    expect(item!.reason).toContain(`more than ${LATE_PERIODS_MAX} periods after the service period ${old}`);
    // Nothing was billed: every invoice keeps its amount.
    expect(await totals()).toEqual(before);
    // The late-usage report lists it, and a tenant key cannot read the queue.
    const report = await h.call('GET', '/v1/billing/late-usage?tenantId=acme', FINANCE);
    expect((report.json.items as Array<Record<string, unknown>>).filter((i) => i.kind === 'usage').map((i) => i.referenceId)).toEqual(['old-1', 'old-2']);
    expect((await h.call('GET', '/v1/billing/review-queue?tenantId=acme', ACME)).status).toBe(403);
  });

  it('bills a usage item onto the open draft as an adjustment that references the invoice it corrects', async () => {
    const item = (await itemOf('old-1'))!;
    const draft = invoiceIdFor('acme', current);
    const billed = await h.call('POST', `/v1/billing/review-queue/${item.eventId as string}/0/bill`, FINANCE, { invoiceId: draft, reason: 'agreed with the customer' });
    expect(billed.status, billed.text).toBe(200);
    expect(billed.json).toEqual({ usageEventId: item.eventId, piece: 0, status: 'billed', invoiceId: draft });
    expect(await itemOf('old-1')).toMatchObject({ status: 'billed', resolvedInvoiceId: draft });

    const document = await h.document(draft);
    const corrected = await h.document(invoiceIdFor('acme', old));
    expect(document.lines.map((l) => [l.kind, l.servicePeriod, l.quantityGpuMs, l.amount])).toEqual([
      ['usage', current, HOUR_MS, '2.00'],
      ['adjustment', old, 2 * 3 * HOUR_MS, '12.00'],
    ]);
    expect(document.lines.find((l) => l.kind === 'adjustment')).toMatchObject({ reference: corrected.invoiceId, referenceNumber: corrected.number });
  });

  it('dismisses a usage item: billed nowhere, and decided once', async () => {
    const item = (await itemOf('old-2'))!;
    const path = `/v1/billing/review-queue/${item.eventId as string}/0`;
    const dismissed = await h.call('POST', `${path}/dismiss`, FINANCE, { reason: 'already invoiced by hand' });
    expect(dismissed.status, dismissed.text).toBe(200);
    expect(dismissed.json).toEqual({ usageEventId: item.eventId, piece: 0, status: 'dismissed', invoiceId: null });
    const again = await h.call('POST', `${path}/bill`, FINANCE, { invoiceId: invoiceIdFor('acme', current), reason: 'after all' });
    expect([again.status, again.json.error.code]).toEqual([409, 'review_item_decided']);
    const document = await h.document(invoiceIdFor('acme', current));
    expect(document.lines.filter((l) => l.kind === 'adjustment').map((l) => l.quantityGpuMs)).toEqual([2 * 3 * HOUR_MS]);
  });

  it('rebuilds every billing table with identical rows', async () => {
    expect(await h.rebuildDifferences()).toEqual([]);
  });
});
