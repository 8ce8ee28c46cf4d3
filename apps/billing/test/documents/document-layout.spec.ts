/**
 * Proves, without I/O, the rules of the invoice document's layout 2: an adjustment line names the
 * finalized invoice it corrects (id and number) and its service period, in JSON, CSV and PDF text;
 * every line holds its share of each tax rate; an invoice finalized in layout 1 (before per-line
 * taxes existed) is rebuilt in layout 1 when its recorded hash says so, byte for byte, and its CSV
 * still shows the tax per line (allocated at render time by the same rule).
 */
import { describe, expect, it } from 'vitest';
import type { PriceVersion } from '@fastgpu/money';
import { assembleInputs } from '../../src/ledger/invoice-inputs';
import type { InvoiceRow, PieceRow } from '../../src/ledger/billing-tables';
import { canonicalJson, documentSha256, type InvoiceInputs } from '../../src/invoices/invoice-document';
import { buildFinalizedInvoice, buildInvoice } from '../../src/invoices/invoice-builder';
import { invoiceCsv } from '../../src/invoices/invoice-csv';
import { invoicePdf } from '../../src/invoices/invoice-pdf';
import { lineTaxes } from '../../src/invoices/document-format';
import { layoutProblems, readPdf, requirePoppler } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

const tenant = { tenantId: 'initech', name: 'Initech', currency: 'USD', billingTimeZone: 'Europe/Berlin' };
const priceVersions: PriceVersion[] = [
  { priceBookId: 'standard', version: 1, currency: 'USD', effectiveFromMs: Date.UTC(2026, 0, 1), prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '3.00', incrementMs: 1000, minimumMs: 60_000 }] },
];
const row: InvoiceRow = { invoice_id: 'inv-2026-11', tenant_id: tenant.tenantId, period: '2026-11', status: 'draft', issuer: null, number: null, number_sequence: null, cutoff_sequence: null, finalized_sequence: null, finalized_event_id: null, finalized_at: null, price_book_version: null, sha256: null, document: null, total: null, actor: null, reason: null };

function piece(usageId: string, servicePeriod: string, startMs: number, hours: number): PieceRow {
  const endMs = startMs + hours * HOUR_MS;
  return { event_id: `e-${usageId}`, piece: 0, usage_id: usageId, tenant_id: tenant.tenantId, service_period: servicePeriod, invoice_id: row.invoice_id, gpu_model: 'a100', capacity_type: 'on-demand', gpus: 1, start_ms: startMs, end_ms: endMs, allocation_start_ms: startMs, allocation_end_ms: endMs, interrupted: false, sequence: 1, assigned_sequence: 1 };
}

/** November's invoice with usage of November and late usage of October (October finalized as FGPU-000041). */
function inputs(): InvoiceInputs {
  const built = assembleInputs(
    { row, tenant, pieces: [piece('nov', '2026-11', Date.UTC(2026, 10, 10), 10), piece('oct-late', '2026-10', Date.UTC(2026, 9, 20), 1.5)], finalized: [], slaCredits: [], priceVersions, taxRates: [{ name: 'VAT', rate: '0.19' }], grants: [] },
    { cutoff: 77, atMs: Date.UTC(2026, 11, 2), issuer: 'FGPU', finalization: { number: 'FGPU-000042', finalizedAt: '2026-12-02T09:00:00.000Z' } },
  );
  return { ...built, adjustmentReferences: [{ servicePeriod: '2026-10', invoiceId: 'inv-2026-10', number: 'FGPU-000041' }] };
}

describe('adjustment references', () => {
  const doc = buildInvoice(inputs()).document;
  const adjustment = doc.lines.find((l) => l.kind === 'adjustment')!;

  it('names the invoice an adjustment corrects and its service period in the document', () => {
    expect(adjustment).toMatchObject({ servicePeriod: '2026-10', reference: 'inv-2026-10', referenceNumber: 'FGPU-000041', amount: '4.50', quantityGpuHours: '1.500000' });
    expect(doc.lines.find((l) => l.kind === 'usage')).not.toHaveProperty('referenceNumber');
  });

  it('shows them in the CSV', () => {
    const [header, ...rows] = invoiceCsv(doc).trimEnd().split('\r\n').map((r) => r.split(','));
    const line = rows.find((r) => r[header!.indexOf('kind')] === 'adjustment')!;
    expect([line[header!.indexOf('service_period')], line[header!.indexOf('reference')], line[header!.indexOf('reference_number')]]).toEqual(['2026-10', 'inv-2026-10', 'FGPU-000041']);
  });

  it('prints them in the PDF, the service period as days in the tenant zone', async () => {
    await requirePoppler();
    const read = await readPdf(await invoicePdf(doc));
    expect(layoutProblems(read)).toEqual([]);
    const text = read.text.join('\n').replace(/\s+/g, ' ');
    expect(text).toContain('Service period 1–31 October 2026 · corrects invoice FGPU-000041');
  });

  it('leaves the reference empty when the ledger does not know the corrected invoice', () => {
    const without = buildInvoice({ ...inputs(), adjustmentReferences: [] }).document;
    expect(without.lines.find((l) => l.kind === 'adjustment')).toMatchObject({ servicePeriod: '2026-10', reference: null, referenceNumber: null });
  });
});

describe('document layouts', () => {
  it('splits the tax over the lines exactly: 19 % of 34.50 = 6.555 → 6.56 as 5.70 + 0.86', () => {
    const doc = buildInvoice(inputs()).document;
    expect(doc.taxes.map((t) => t.amount)).toEqual(['6.56']);
    expect(doc.lines.map((l) => [l.amount, l.tax])).toEqual([
      ['30.00', '5.70'],
      ['4.50', '0.86'],
    ]);
  });

  it('rebuilds an invoice finalized in layout 1 in layout 1, byte for byte, when its hash says so', () => {
    const legacy = buildInvoice(inputs(), 1).document;
    expect(legacy.schema).toBe('fastgpu.invoice/1');
    expect(legacy.lines[0]).not.toHaveProperty('taxes');
    expect(legacy.lines[0]!.quantityGpuHours).toBe('10');
    const rebuilt = buildFinalizedInvoice(inputs(), documentSha256(legacy)).document;
    expect(canonicalJson(rebuilt)).toBe(canonicalJson(legacy));
    const current = buildFinalizedInvoice(inputs(), documentSha256(buildInvoice(inputs()).document)).document;
    expect(current.schema).toBe('fastgpu.invoice/2');
    // A layout-1 document still gets its tax per line in the exports, by the same rule.
    expect(lineTaxes(legacy).map((taxes) => taxes.map((t) => t.amount))).toEqual([['5.70'], ['0.86']]);
    expect(invoiceCsv(legacy)).toContain(',30.00,5.70,35.70,,');
  });
});
