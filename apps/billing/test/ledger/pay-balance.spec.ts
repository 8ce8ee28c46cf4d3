/**
 * Proves on real NATS and Postgres that a payment after a credit note records what is left to pay:
 * - `POST /v1/invoices/{id}/pay` publishes `InvoicePaid` with the balance due (the amount due less
 *   the credit notes against the invoice), not the invoice's full amount due;
 * - every summary (the list, the pay answer, the status route) shows `balanceDue` beside
 *   `amountDue` and `credited`: before the payment what is left, after it nothing; a void invoice
 *   has nothing left to pay;
 * - a retried payment with the same Idempotency-Key answers again and publishes nothing;
 * - a rebuild of the ledger from the log gives identical rows in every billing table.
 *
 * Periods come from the real now: the previous month (UTC) holds the usage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPeriods, periodBounds, periodOf } from '@fastgpu/money';
import { invoiceIdFor } from '../../src/ledger/invoice-ids';
import { ACME, BillingHarness, FINANCE, usageData } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

const previous = addPeriods(periodOf(Date.now(), 'UTC'), -1);
const startMs = periodBounds(previous, 'UTC').startMs;
const at = (offsetMs: number) => new Date(startMs + offsetMs).toISOString();
/** Prices and tax rates in force from a year before the usage. */
const effectiveFrom = new Date(periodBounds(addPeriods(previous, -12), 'UTC').startMs).toISOString();
const acmeInvoice = invoiceIdFor('acme', previous);
const globexInvoice = invoiceIdFor('globex', previous);
const initechInvoice = invoiceIdFor('initech', previous);

let h: BillingHarness;

async function lastOnInvoice(invoiceId: string): Promise<{ seq: number; type: string; data: Record<string, unknown> }> {
  const message = await h.env.bus.jsm.streams.getMessage(h.env.bus.topology.streams.events, { last_by_subj: h.env.bus.topology.subjects.invoice(invoiceId) });
  const body = message!.json<{ type: string; data: Record<string, unknown> }>();
  return { seq: message!.seq, type: body.type, data: body.data };
}

async function listed(invoiceId: string): Promise<Record<string, unknown>> {
  const r = await h.call('GET', `/v1/invoices?period=${previous}`, FINANCE);
  expect(r.status, r.text).toBe(200);
  return (r.json.invoices as Array<Record<string, unknown>>).find((i) => i.invoiceId === invoiceId)!;
}

beforeAll(async () => {
  h = await BillingHarness.start();
  await h.tenant('acme');
  await h.tenant('globex');
  await h.tenant('initech');
  await h.priceBook({ priceBookId: 'standard', currency: 'USD', effectiveFrom, prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.00' }] });
  for (const tenantId of ['acme', 'globex', 'initech']) {
    const r = await h.call('POST', '/v1/billing/tax-rates', FINANCE, { tenantId, rates: [{ name: 'VAT', rate: '0.2' }], effectiveFrom, reason: 'tax registration' });
    expect(r.status, r.text).toBe(201);
    // 10 GPU-hours at 2.00: 20.00 net, VAT 4.00, total 24.00.
    await h.publish('UsageRecorded', usageData(tenantId, `${tenantId}-u1`, at(HOUR_MS), at(11 * HOUR_MS)), { tenantId });
  }
  await h.settle();
  for (const invoiceId of [acmeInvoice, globexInvoice, initechInvoice]) {
    const r = await h.call('POST', `/v1/invoices/${invoiceId}/finalize`, FINANCE, { reason: 'month closed' });
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ total: '24.00', amountDue: '24.00' });
  }
});

afterAll(async () => {
  await h?.close();
});

describe('paying after a credit note', () => {
  it('shows the balance due after the credit note in the list', async () => {
    expect(await listed(acmeInvoice)).toMatchObject({ status: 'finalized', amountDue: '24.00', credited: '0.00', balanceDue: '24.00' });
    // 2.5 GPU-hours of line 1: 5.00 net, VAT 1.00, 6.00 in all.
    const note = await h.call('POST', `/v1/invoices/${acmeInvoice}/credit-notes`, FINANCE, { reason: 'node degraded', lines: [{ invoiceLine: 1, quantityGpuHours: '2.5' }] });
    expect(note.status, note.text).toBe(201);
    expect(note.json.amount).toBe('6.00');
    expect(await listed(acmeInvoice)).toMatchObject({ status: 'finalized', amountDue: '24.00', credited: '6.00', balanceDue: '18.00' });
  });

  it('records the balance due as the payment, and nothing is left to pay afterwards', async () => {
    const paid = await h.call('POST', `/v1/invoices/${acmeInvoice}/pay`, FINANCE, { reason: 'wire received', paymentReference: 'WIRE-1' }, { 'idempotency-key': 'pay-acme-1' });
    expect(paid.status, paid.text).toBe(200);
    expect(paid.json).toMatchObject({ status: 'paid', amountDue: '24.00', credited: '6.00', balanceDue: '0.00' });
    const event = await lastOnInvoice(acmeInvoice);
    expect(event.type).toBe('InvoicePaid');
    expect(event.data).toMatchObject({ amount: '18.00', currency: 'USD', paymentReference: 'WIRE-1' });

    const status = await h.call('GET', `/v1/invoices/${acmeInvoice}/status`, ACME);
    expect(status.json).toMatchObject({ status: 'paid', credited: '6.00', balanceDue: '0.00' });
    expect(await listed(acmeInvoice)).toMatchObject({ status: 'paid', balanceDue: '0.00' });

    // A retry with the same key answers again and publishes nothing.
    const again = await h.call('POST', `/v1/invoices/${acmeInvoice}/pay`, FINANCE, { reason: 'wire received', paymentReference: 'WIRE-1' }, { 'idempotency-key': 'pay-acme-1' });
    expect(again.status, again.text).toBe(200);
    expect(again.json).toMatchObject({ status: 'paid', balanceDue: '0.00' });
    expect((await lastOnInvoice(acmeInvoice)).seq).toBe(event.seq);
  });

  it('pays the whole amount due when no credit note was issued, and a void invoice has nothing left to pay', async () => {
    const paid = await h.call('POST', `/v1/invoices/${initechInvoice}/pay`, FINANCE, { reason: 'card payment' });
    expect(paid.status, paid.text).toBe(200);
    expect(paid.json).toMatchObject({ status: 'paid', credited: '0.00', balanceDue: '0.00' });
    expect((await lastOnInvoice(initechInvoice)).data).toMatchObject({ amount: '24.00' });

    const voided = await h.call('POST', `/v1/invoices/${globexInvoice}/void`, FINANCE, { reason: 'issued in error' });
    expect(voided.status, voided.text).toBe(200);
    expect(voided.json).toMatchObject({ status: 'void', amountDue: '24.00', balanceDue: '0.00' });
    expect(await listed(globexInvoice)).toMatchObject({ status: 'void', balanceDue: '0.00' });
  });

  it('rebuilds every billing table to the same rows', async () => {
    expect(await h.rebuildDifferences()).toEqual([]);
  });
});
