/**
 * Proves, with exact amounts and without I/O, that an SLA credit larger than what its invoice
 * charges is not lost: the invoice credits what it charges (amount due 0.00, never negative), lists
 * the rest as carried forward, and the tenant's next invoices take it as their own line citing its
 * origin until it is used up — folded from the finalized documents alone, as a rebuild does.
 */
import { describe, expect, it } from 'vitest';
import type { PriceVersion, TaxRate } from '@fastgpu/money';
import { assembleInputs } from '../ledger/invoice-inputs';
import type { InvoiceRow, PieceRow, SlaCreditRow } from '../ledger/billing-tables';
import { canonicalJson, type InvoiceDocument } from './invoice-document';
import { buildInvoice } from './invoice-builder';
import { invoiceCsv } from './invoice-csv';
import { HOUR_MS } from '@fastgpu/contracts';

const tenant = { tenantId: 'initech', name: 'Initech', currency: 'USD', billingTimeZone: 'UTC' };
const priceVersions: PriceVersion[] = [
  { priceBookId: 'standard', version: 1, currency: 'USD', effectiveFromMs: Date.UTC(2026, 0, 1), prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '10.00', incrementMs: 1000, minimumMs: 60_000 }] },
];

function row(period: string): InvoiceRow {
  return { invoice_id: `inv-${period}`, tenant_id: tenant.tenantId, period, status: 'draft', issuer: null, number: null, number_sequence: null, cutoff_sequence: null, finalized_sequence: null, finalized_event_id: null, finalized_at: null, price_book_version: null, sha256: null, document: null, total: null, actor: null, reason: null };
}

/** One allocation on the 10th of the period, `hours` long, at 10.00 per GPU-hour. */
function usage(period: string, hours: number): PieceRow {
  const [year, month] = period.split('-').map(Number) as [number, number];
  const startMs = Date.UTC(year, month - 1, 10);
  const endMs = startMs + hours * HOUR_MS;
  return { event_id: `e-${period}`, piece: 0, usage_id: `u-${period}`, tenant_id: tenant.tenantId, service_period: period, invoice_id: `inv-${period}`, gpu_model: 'a100', capacity_type: 'on-demand', gpus: 1, start_ms: startMs, end_ms: endMs, allocation_start_ms: startMs, allocation_end_ms: endMs, interrupted: false, sequence: 1, assigned_sequence: 1 };
}

function invoice(period: string, hours: number, options: { finalized: InvoiceDocument[]; number: string | null; credits?: SlaCreditRow[]; taxRates?: TaxRate[] }): InvoiceDocument {
  const inputs = assembleInputs(
    { row: row(period), tenant, pieces: [usage(period, hours)], finalized: options.finalized, slaCredits: options.credits ?? [], priceVersions, taxRates: options.taxRates ?? [], grants: [] },
    { cutoff: 100, atMs: Date.UTC(2027, 5, 1), issuer: 'FGPU', finalization: options.number ? { number: options.number, finalizedAt: '2027-06-01T00:00:00.000Z' } : null },
  );
  return buildInvoice(inputs).document;
}

const lines = (doc: InvoiceDocument) => doc.lines.map((l) => [l.kind, l.servicePeriod, l.amount, l.reference]);

describe('SLA credits larger than the amount', () => {
  // October billed 30.00. A 50 % SLA credit for October (15.00) arrives after October is finalized,
  // so it lands on November, which charges only 6.00.
  const october = invoice('2026-10', 3, { finalized: [], number: 'FGPU-000001' });
  const credit: SlaCreditRow = { event_id: 'e-sla', credit_id: 'sla-oct', tenant_id: tenant.tenantId, period: '2026-10', metric: 'gpu-availability', measured: '94.1', target: '99.5', credit_percent: 50, invoice_id: 'inv-2026-11', sequence: 50, assigned_sequence: 50 };
  const november = invoice('2026-11', 0.6, { finalized: [october], number: 'FGPU-000002', credits: [credit] });
  const december = invoice('2026-12', 0.4, { finalized: [october, november], number: 'FGPU-000003' });
  const january = invoice('2027-01', 2, { finalized: [october, november, december], number: null, taxRates: [{ name: 'VAT', rate: '0.1' }] });

  it('credits what the invoice charges and carries the rest forward', () => {
    expect(october.total).toBe('30.00');
    expect(lines(november)).toEqual([
      ['usage', '2026-11', '6.00', null],
      ['sla-credit', '2026-10', '-6.00', 'sla-oct'], // 50 % of October's 30.00 = 15.00, of which November charges 6.00
    ]);
    expect([november.subtotal, november.total, november.amountDue]).toEqual(['0.00', '0.00', '0.00']);
    expect(november.creditsCarriedForward).toEqual([{ reference: 'sla-oct', servicePeriod: '2026-10', originInvoiceId: 'inv-2026-11', originNumber: 'FGPU-000002', amount: '9.00' }]);
  });

  it('puts the carried part on the next invoice as its own line with its origin, and carries what is still left', () => {
    expect(lines(december)).toEqual([
      ['usage', '2026-12', '4.00', null],
      ['carried-credit', '2026-10', '-4.00', 'sla-oct'],
    ]);
    expect(december.lines[1]!.description).toBe('SLA credit for 2026-10 carried forward from invoice FGPU-000002 (sla-oct)');
    expect(december.amountDue).toBe('0.00');
    expect(december.creditsCarriedForward).toEqual([{ reference: 'sla-oct', servicePeriod: '2026-10', originInvoiceId: 'inv-2026-11', originNumber: 'FGPU-000002', amount: '5.00' }]);
    expect(invoiceCsv(december)).toContain(',credit-carried-forward,SLA credit sla-oct for 2026-10 (from FGPU-000002) carried forward to the next invoice,,,,,,,,,5.00,,,,\r\n');
  });

  it('uses the last of it on the invoice after, before tax, and then carries nothing', () => {
    expect(lines(january)).toEqual([
      ['usage', '2027-01', '20.00', null],
      ['carried-credit', '2026-10', '-5.00', 'sla-oct'],
    ]);
    expect([january.subtotal, january.taxes[0]!.amount, january.total, january.amountDue]).toEqual(['15.00', '1.50', '16.50', '16.50']);
    expect(january.creditsCarriedForward).toBeUndefined();
  });

  it('offers a carried credit only once it is on a finalized invoice, and only to later periods', () => {
    // December built before November was finalized knows nothing of the credit.
    expect(lines(invoice('2026-12', 0.4, { finalized: [october], number: null })).map((l) => l[0])).toEqual(['usage']);
    // An earlier period's invoice does not take a credit carried by a later one.
    expect(lines(invoice('2026-09', 1, { finalized: [october, november], number: null })).map((l) => l[0])).toEqual(['usage']);
  });

  it('leaves documents without carried credits byte for byte as before (no new field)', () => {
    expect(canonicalJson(october)).not.toContain('creditsCarriedForward');
    expect(Object.keys(january)).not.toContain('creditsCarriedForward');
  });

  it('keeps carrying a credit an invoice with nothing to charge cannot take, without a zero line', () => {
    const empty = invoice('2026-12', 0, { finalized: [october, november], number: 'FGPU-000003' });
    expect(lines(empty)).toEqual([]);
    expect(empty.amountDue).toBe('0.00');
    expect(empty.creditsCarriedForward).toEqual([{ reference: 'sla-oct', servicePeriod: '2026-10', originInvoiceId: 'inv-2026-11', originNumber: 'FGPU-000002', amount: '9.00' }]);
  });
});
