/**
 * Proves on real NATS and Postgres (issue 15, points 2 and 3):
 * - spot/preemptible usage interrupted by the platform (preempted) is billed up to its end and
 *   NOT credited, while an interruption of on-demand usage keeps its `interruption-credit` line;
 * - late usage after finalization is an adjustment line on the next invoice that names the invoice
 *   it corrects (`reference` = its id, `referenceNumber` = its number) and its service period, the
 *   same whether the draft is read alone or in a period run (the export);
 * - a rebuild from the log gives identical rows in every billing table.
 *
 * Periods come from the real now: the previous month (UTC) is finalized, the current one is the
 * draft that takes the late usage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPeriods, periodBounds, periodOf } from '@fastgpu/money';
import { invoiceIdFor } from '../../src/ledger/invoice-ids';
import { BillingHarness, FINANCE, FLAT_PRICES, usageData } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

let h: BillingHarness;
const previous = addPeriods(periodOf(Date.now(), 'UTC'), -1);
const current = addPeriods(previous, 1);
const startMs = periodBounds(previous, 'UTC').startMs;
const at = (offsetMs: number) => new Date(startMs + offsetMs).toISOString();

beforeAll(async () => {
  h = await BillingHarness.start();
  await h.tenant('acme');
  await h.priceBook(FLAT_PRICES);
});

afterAll(async () => {
  await h?.close();
});

describe('interruptions and preemption', () => {
  it('bills preempted spot time without a credit and credits an on-demand interruption', async () => {
    await h.publish('UsageRecorded', usageData('acme', 'spot-1', at(HOUR_MS), at(1.5 * HOUR_MS), { capacityType: 'preemptible', interrupted: true }), { tenantId: 'acme' });
    await h.publish('UsageRecorded', usageData('acme', 'od-1', at(2 * HOUR_MS), at(2.5 * HOUR_MS), { interrupted: true }), { tenantId: 'acme' });
    await h.settle();
    const draft = await h.document(invoiceIdFor('acme', previous));
    expect(draft.lines.map((l) => [l.kind, l.capacityType, l.amount])).toEqual([
      ['usage', 'on-demand', '1.00'],
      ['usage', 'preemptible', '0.30'],
      ['interruption-credit', 'on-demand', '-1.00'],
    ]);
    expect(draft.subtotal).toBe('0.30');
  });
});

describe('adjustment lines', () => {
  it('name the invoice they correct, with its number and service period', async () => {
    const original = invoiceIdFor('acme', previous);
    const finalized = await h.call('POST', `/v1/invoices/${original}/finalize`, FINANCE, { reason: 'month end' });
    expect(finalized.status, finalized.text).toBe(200);
    const number = finalized.json.number as string;
    expect(finalized.json.subtotal).toBe('0.30');

    // Late usage of the finalized period, and usage of the current one.
    await h.publish('UsageRecorded', usageData('acme', 'late-1', at(3 * HOUR_MS), at(4 * HOUR_MS)), { tenantId: 'acme' });
    const currentStart = periodBounds(current, 'UTC').startMs;
    await h.publish('UsageRecorded', usageData('acme', 'now-1', new Date(currentStart).toISOString(), new Date(currentStart + HOUR_MS).toISOString()), { tenantId: 'acme' });
    await h.settle();

    const draft = await h.document(invoiceIdFor('acme', current));
    const adjustment = draft.lines.find((l) => l.kind === 'adjustment')!;
    expect([adjustment.servicePeriod, adjustment.reference, adjustment.referenceNumber, adjustment.amount]).toEqual([previous, original, number, '2.00']);
    const usage = draft.lines.find((l) => l.kind === 'usage')!;
    expect([usage.servicePeriod, usage.reference]).toEqual([current, null]);

    // A period run (the export) rates the draft from summed parts: the same references.
    const exported = await h.call('GET', `/v1/invoices/export?period=${current}`, FINANCE);
    expect(exported.status, exported.text).toBe(200);
    expect(exported.json).toEqual([draft]);
  });

  it('rebuilds every billing table with identical rows', async () => {
    expect(await h.rebuildDifferences()).toEqual([]);
  });
});
