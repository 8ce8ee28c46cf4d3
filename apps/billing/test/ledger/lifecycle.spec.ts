/**
 * Proves draft deletion and void-with-reissue on real NATS and Postgres (issue 15, point 6):
 * - a deleted draft uses no number; with `usage: move` its usage is on a new draft of the period,
 *   with `usage: discard` it is billed nowhere and the period's next usage starts a new draft;
 *   both recorded as `InvoiceDraftDeleted` events;
 * - a reissue voids a finalized, unpaid invoice and replaces it by a draft holding what it billed,
 *   re-rated at the prices in force now, which takes the next number and names the void invoice;
 *   late usage of the period then names the replacement; a second reissue, a paid invoice, a
 *   finalized invoice's deletion and a tenant caller are refused;
 * - the Idempotency-Key rule on both routes (same body: the first answer, nothing published;
 *   another body: 409);
 * - a rebuild from the log gives identical rows in every billing table.
 *
 * Periods come from the real now: the previous month (UTC) holds the usage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPeriods, periodBounds, periodOf } from '@fastgpu/money';
import { invoiceIdFor } from '../../src/ledger/invoice-ids';
import { ACME, BillingHarness, FINANCE, FLAT_PRICES, usageData } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

let h: BillingHarness;
const previous = addPeriods(periodOf(Date.now(), 'UTC'), -1);
const current = addPeriods(previous, 1);
const startMs = periodBounds(previous, 'UTC').startMs;
const at = (offsetMs: number) => new Date(startMs + offsetMs).toISOString();
let counter = 0;
const usage = (tenantId: string, hours: number) => {
  counter++;
  return h.publish('UsageRecorded', usageData(tenantId, `u-${counter}`, at(counter * 10 * HOUR_MS), at(counter * 10 * HOUR_MS + hours * HOUR_MS)), { tenantId });
};

beforeAll(async () => {
  h = await BillingHarness.start();
  await h.tenant('acme');
  await h.tenant('globex');
  await h.priceBook(FLAT_PRICES);
});

afterAll(async () => {
  await h?.close();
});

let replacementOfDeleted = '';

describe('draft deletion', () => {
  it('moves the usage of a deleted draft onto a new draft, and the next finalization takes the first number', async () => {
    await usage('acme', 1);
    await h.settle();
    const draft = invoiceIdFor('acme', previous);
    expect(await h.document(draft)).toMatchObject({ status: 'draft', subtotal: '2.00' });
    expect((await h.call('POST', `/v1/invoices/${draft}/delete`, ACME, { usage: 'move', reason: 'wrong customer' })).status).toBe(403);

    const body = { usage: 'move', reason: 'recreated after a contract change' };
    const r = await h.call('POST', `/v1/invoices/${draft}/delete`, FINANCE, body, { 'idempotency-key': 'delete-1' });
    expect(r.status, r.text).toBe(200);
    expect(r.json.deletedInvoiceId).toBe(draft);
    replacementOfDeleted = r.json.replacementInvoiceId;
    expect(replacementOfDeleted).not.toBe(draft);
    const end = await h.streamEnd();
    const deletion = await h.env.bus.jsm.streams.getMessage(h.env.bus.topology.streams.events, { last_by_subj: h.env.bus.topology.subjects.invoice(draft) });
    expect(deletion?.json<{ type: string; data: { usage: string } }>()).toMatchObject({ type: 'InvoiceDraftDeleted', data: { usage: 'move' } });

    // The same request again answers the same; another body with the same key is refused.
    const retry = await h.call('POST', `/v1/invoices/${draft}/delete`, FINANCE, body, { 'idempotency-key': 'delete-1' });
    expect([retry.status, retry.json]).toEqual([200, r.json]);
    const other = await h.call('POST', `/v1/invoices/${draft}/delete`, FINANCE, { ...body, usage: 'discard' }, { 'idempotency-key': 'delete-1' });
    expect([other.status, other.json.error.code]).toEqual([409, 'idempotency_key_reused']);
    expect((await h.call('POST', `/v1/invoices/${draft}/delete`, FINANCE, body)).status).toBe(409);
    expect(await h.streamEnd()).toBe(end);

    expect((await h.call('GET', `/v1/invoices/${draft}`, FINANCE)).status).toBe(404);
    const moved = await h.document(replacementOfDeleted);
    expect([moved.status, moved.subtotal, moved.lines.map((l) => l.quantityGpuMs)]).toEqual(['draft', '2.00', [HOUR_MS]]);
    const finalized = await h.call('POST', `/v1/invoices/${replacementOfDeleted}/finalize`, FINANCE, { reason: 'month end' });
    expect([finalized.status, finalized.json.number]).toEqual([200, 'FGPU-000001']);
    expect((await h.call('POST', `/v1/invoices/${replacementOfDeleted}/delete`, FINANCE, body)).status).toBe(409);
  });

  it('discards the usage of a deleted draft; the period starts a new draft with the next usage only', async () => {
    await usage('globex', 2);
    await h.settle();
    const draft = invoiceIdFor('globex', previous);
    const r = await h.call('POST', `/v1/invoices/${draft}/delete`, FINANCE, { usage: 'discard', reason: 'test traffic, not billable' });
    expect([r.status, r.json.replacementInvoiceId]).toEqual([200, null]);
    expect((await h.call('GET', `/v1/invoices?tenantId=globex`, FINANCE)).json.invoices).toEqual([]);

    await usage('globex', 1);
    await h.settle();
    const list = (await h.call('GET', `/v1/invoices?tenantId=globex`, FINANCE)).json.invoices as Array<{ invoiceId: string; subtotal: string }>;
    expect(list.map((i) => i.subtotal)).toEqual(['2.00']);
    expect(list[0]!.invoiceId).not.toBe(draft);
  });
});

describe('void with reissue', () => {
  let replacement = '';

  it('voids the invoice and reissues a replacement that takes the next number at the prices in force now', async () => {
    // A corrected price for the whole period, published after the invoice was finalized.
    await h.priceBook({ ...FLAT_PRICES, effectiveFrom: new Date(startMs).toISOString(), prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '1.50' }] });
    const original = replacementOfDeleted;
    const originalBytes = (await h.call('GET', `/v1/invoices/${original}`, FINANCE)).text;

    const r = await h.call('POST', `/v1/invoices/${original}/reissue`, FINANCE, { reason: 'price corrected' }, { 'idempotency-key': 'reissue-1' });
    expect(r.status, r.text).toBe(201);
    expect([r.json.voidedInvoiceId, r.json.number]).toEqual([original, 'FGPU-000001']);
    replacement = r.json.replacementInvoiceId;
    const end = await h.streamEnd();
    expect((await h.call('POST', `/v1/invoices/${original}/reissue`, FINANCE, { reason: 'price corrected' }, { 'idempotency-key': 'reissue-1' })).json).toEqual(r.json);
    const other = await h.call('POST', `/v1/invoices/${original}/reissue`, FINANCE, { reason: 'another reason' }, { 'idempotency-key': 'reissue-1' });
    expect([other.status, other.json.error.code]).toEqual([409, 'idempotency_key_reused']);
    const twice = await h.call('POST', `/v1/invoices/${original}/reissue`, FINANCE, { reason: 'again' });
    expect([twice.status, twice.json.error.code]).toEqual([409, 'invoice_reissued']);
    expect(await h.streamEnd()).toBe(end);

    // The void invoice keeps its number and bytes; its status says void.
    expect((await h.call('GET', `/v1/invoices/${original}`, FINANCE)).text).toBe(originalBytes);
    expect((await h.call('GET', `/v1/invoices/${original}/status`, FINANCE)).json.status).toBe('void');
    const draft = await h.document(replacement);
    expect([draft.status, draft.period, draft.subtotal, draft.lines.map((l) => l.quantityGpuMs)]).toEqual(['draft', previous, '1.50', [HOUR_MS]]);
    const row = await h.runtime.db.selectFrom('billing_invoices').select(['replaces_invoice_id']).where('invoice_id', '=', replacement).executeTakeFirstOrThrow();
    expect(row.replaces_invoice_id).toBe(original);

    const finalized = await h.call('POST', `/v1/invoices/${replacement}/finalize`, FINANCE, { reason: 'reissued' });
    expect([finalized.status, finalized.json.number, finalized.json.subtotal]).toEqual([200, 'FGPU-000002', '1.50']);
  });

  it('sends late usage of the period onto the next invoice naming the replacement', async () => {
    await usage('acme', 1);
    await h.settle();
    const next = await h.document(invoiceIdFor('acme', current));
    const adjustment = next.lines.find((l) => l.kind === 'adjustment')!;
    expect([adjustment.servicePeriod, adjustment.reference, adjustment.referenceNumber]).toEqual([previous, replacement, 'FGPU-000002']);
  });

  it('refuses to reissue a paid invoice', async () => {
    expect((await h.call('POST', `/v1/invoices/${replacement}/pay`, FINANCE, { reason: 'wire received' })).status).toBe(200);
    const r = await h.call('POST', `/v1/invoices/${replacement}/reissue`, FINANCE, { reason: 'too late' });
    expect([r.status, r.json.error.code]).toEqual([409, 'invoice_paid']);
  });

  it('rebuilds every billing table with identical rows', async () => {
    expect(await h.rebuildDifferences()).toEqual([]);
  });
});
