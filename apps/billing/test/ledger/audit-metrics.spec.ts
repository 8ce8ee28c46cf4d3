/**
 * Proves billing's audit trail and metrics on real NATS and Postgres (issue 15, point 8):
 * a usage id arriving again with the same payload is counted once and recorded as a duplicate,
 * with another payload recorded as a conflict (the first stands); late usage after finalization
 * is counted; an invoice held by a missing price shows in an alert-ready gauge (and leaves it once
 * priced); Idempotency-Key replays and conflicts are counted; the audit routes list the events
 * behind an invoice and a tenant with what became of each (finance any, a tenant its own, another
 * tenant's invoice 404); a rebuild gives the same audit rows.
 *
 * Periods come from the real now: the previous month (UTC) is finalized, then gets late usage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPeriods, periodBounds, periodOf } from '@fastgpu/money';
import { invoiceIdFor } from '../../src/ledger/invoice-ids';
import { ACME, BillingHarness, FINANCE, FLAT_PRICES, GLOBEX, usageData } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

let h: BillingHarness;
const previous = addPeriods(periodOf(Date.now(), 'UTC'), -1);
const startMs = periodBounds(previous, 'UTC').startMs;
const at = (offsetMs: number) => new Date(startMs + offsetMs).toISOString();

/** The value of one sample of the Prometheus exposition (labels given must all match), or undefined. */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const text = await (await fetch(`${h.started.url}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

beforeAll(async () => {
  h = await BillingHarness.start();
  await h.tenant('acme');
  await h.tenant('globex');
  await h.priceBook(FLAT_PRICES);
});

afterAll(async () => {
  await h?.close();
});

describe('duplicates and conflicts', () => {
  it('counts a usage id seen again once, records the same payload as a duplicate and another as a conflict', async () => {
    const first = usageData('acme', 'use-1', at(HOUR_MS), at(2 * HOUR_MS));
    await h.publish('UsageRecorded', first, { tenantId: 'acme' });
    // New event ids (past the bus's dedupe window, as a republish from a backup would be).
    await h.publish('UsageRecorded', first, { tenantId: 'acme' });
    await h.publish('UsageRecorded', { ...first, endAt: at(3 * HOUR_MS), gpuMs: 2 * HOUR_MS }, { tenantId: 'acme' });
    await h.settle();
    expect((await h.document(invoiceIdFor('acme', previous))).subtotal).toBe('2.00');
    expect(await metric('fastgpu_billing_events_deduplicated_total', { type: 'UsageRecorded' })).toBe(1);
    expect(await metric('fastgpu_billing_event_conflicts_total', { type: 'UsageRecorded' })).toBe(1);

    const audit = await h.call('GET', '/v1/billing/audit', ACME);
    expect(audit.status, audit.text).toBe(200);
    const usage = audit.json.events.filter((e: { type: string }) => e.type === 'UsageRecorded');
    expect(usage.map((e: { outcome: string; invoiceId: string | null }) => [e.outcome, e.invoiceId])).toEqual([
      ['applied', invoiceIdFor('acme', previous)],
      ['duplicate', null],
      ['conflict', null],
    ]);
    expect(usage[2].detail).toMatch(/use-1 .*another payload; the first stands/);
  });
});

describe('held invoices and late usage', () => {
  it('gauges drafts held by a missing price until a price covers them', async () => {
    expect(await metric('fastgpu_billing_invoices_held_by_missing_price')).toBe(0);
    await h.publish('UsageRecorded', usageData('globex', 'use-h100', at(HOUR_MS), at(2 * HOUR_MS), { gpuModel: 'h100' }), { tenantId: 'globex' });
    await h.settle();
    expect(await metric('fastgpu_billing_invoices_held_by_missing_price')).toBe(1);
    // The book's next version prices h100 too (one version is in force at a time).
    await h.priceBook({ ...FLAT_PRICES, prices: [...FLAT_PRICES.prices, { gpuModel: 'h100', capacityType: 'on-demand', pricePerGpuHour: '4.00' }] });
    expect(await metric('fastgpu_billing_invoices_held_by_missing_price')).toBe(0);
  });

  it('counts late usage after finalization and lists the events behind each invoice', async () => {
    const invoiceId = invoiceIdFor('acme', previous);
    const finalized = await h.call('POST', `/v1/invoices/${invoiceId}/finalize`, FINANCE, { reason: 'month end' });
    expect(finalized.status, finalized.text).toBe(200);
    expect(await metric('fastgpu_billing_late_usage_total', { disposition: 'adjustment' })).toBeUndefined();
    await h.publish('UsageRecorded', usageData('acme', 'use-late', at(5 * HOUR_MS), at(6 * HOUR_MS)), { tenantId: 'acme' });
    await h.settle();
    expect(await metric('fastgpu_billing_late_usage_total', { disposition: 'adjustment' })).toBe(1);

    const trail = await h.call('GET', `/v1/invoices/${invoiceId}/audit`, ACME);
    expect(trail.status, trail.text).toBe(200);
    // The price book's next version re-rated the draft (held globex's, acme's too): it is among the events behind it.
    expect(trail.json.events.map((e: { type: string; outcome: string }) => [e.type, e.outcome])).toEqual([
      ['UsageRecorded', 'applied'],
      ['PriceBookPublished', 'applied'],
      ['InvoiceFinalized', 'applied'],
    ]);
    expect(trail.json.events[1].detail).toBe('re-rated by price book standard v2');
    expect(trail.json.events[2].detail).toBe(`finalized as ${finalized.json.number}`);
    const next = invoiceIdFor('acme', addPeriods(previous, 1));
    const nextTrail = await h.call('GET', `/v1/invoices/${next}/audit`, FINANCE);
    expect(nextTrail.json.events.map((e: { type: string; outcome: string }) => [e.type, e.outcome])).toEqual([
      ['UsageRecorded', 'applied'],
      ['UsageRecorded', 'late'],
    ]);
    // Another tenant's invoice is missing for a tenant; a tenant's audit is its own.
    expect((await h.call('GET', `/v1/invoices/${invoiceId}/audit`, GLOBEX)).status).toBe(404);
    const globex = await h.call('GET', '/v1/billing/audit?tenantId=acme', GLOBEX);
    expect(new Set(globex.json.events.map((e: { tenantId: string }) => e.tenantId))).toEqual(new Set(['globex']));
  });
});

describe('Idempotency-Key figures', () => {
  it('counts replays and conflicts per action', async () => {
    const body = { tenantId: 'acme', amount: '1.00', reason: 'goodwill' };
    expect((await h.call('POST', '/v1/billing/credit-grants', FINANCE, body, { 'idempotency-key': 'g-1' })).status).toBe(201);
    expect((await h.call('POST', '/v1/billing/credit-grants', FINANCE, body, { 'idempotency-key': 'g-1' })).status).toBe(201);
    expect((await h.call('POST', '/v1/billing/credit-grants', FINANCE, { ...body, amount: '2.00' }, { 'idempotency-key': 'g-1' })).status).toBe(409);
    expect(await metric('fastgpu_billing_idempotent_replays_total', { action: 'CreditGranted' })).toBe(1);
    expect(await metric('fastgpu_billing_idempotency_conflicts_total', { action: 'CreditGranted' })).toBe(1);
  });

  it('rebuilds every billing table, the audit trail included, with identical rows', async () => {
    expect(await h.rebuildDifferences()).toEqual([]);
  });
});
