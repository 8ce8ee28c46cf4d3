/**
 * Proves, without I/O, how a billing profile reaches an invoice document and how layouts keep
 * finalized bytes: a layout-2 document holds `buyer` only when its inputs have a profile (no
 * field otherwise, so documents finalized before profiles existed keep their bytes); layout 1
 * never holds one; `buildFinalizedInvoice` rebuilds the document its hash was taken of — with the
 * buyer, without it (finalized by a process that did not know profiles while one was in force),
 * or in layout 1; and the exports print the buyer (CSV rows outside the sums, the PDF's "Bill to").
 */
import { describe, expect, it } from 'vitest';
import type { PriceVersion } from '@fastgpu/money';
import { assembleInputs } from '../ledger/invoice-inputs';
import type { InvoiceRow, PieceRow } from '../ledger/billing-tables';
import { documentSha256, type BuyerProfile, type InvoiceInputs } from './invoice-document';
import { buildFinalizedInvoice, buildInvoice } from './invoice-builder';
import { buyerLines } from './document-format';
import { invoiceCsv } from './invoice-csv';
import { HOUR_MS } from '@fastgpu/contracts';

const tenant = { tenantId: 'acme', name: 'Acme', currency: 'EUR', billingTimeZone: 'Europe/Berlin' };
const priceVersions: PriceVersion[] = [{ priceBookId: 'standard', version: 1, currency: 'EUR', effectiveFromMs: Date.UTC(2026, 0, 1), prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.00', incrementMs: 1000, minimumMs: 60_000 }] }];
const buyer: BuyerProfile = { legalName: 'Acme Deutschland GmbH', addressLines: ['Hauptstraße 1', '10115 Berlin'], country: 'DE', taxId: 'DE123456789' };
const row: InvoiceRow = { invoice_id: 'inv-1', tenant_id: 'acme', period: '2026-10', status: 'draft', issuer: null, number: null, number_sequence: null, cutoff_sequence: null, finalized_sequence: null, finalized_event_id: null, finalized_at: null, price_book_version: null, sha256: null, document: null, total: null, actor: null, reason: null };
const startMs = Date.UTC(2026, 9, 10);
const piece: PieceRow = { event_id: 'e1', piece: 0, usage_id: 'u1', tenant_id: 'acme', service_period: '2026-10', invoice_id: 'inv-1', gpu_model: 'a100', capacity_type: 'on-demand', gpus: 1, start_ms: startMs, end_ms: startMs + 10 * HOUR_MS, allocation_start_ms: startMs, allocation_end_ms: startMs + 10 * HOUR_MS, interrupted: false, sequence: 1, assigned_sequence: 1 };

function inputs(withBuyer: boolean): InvoiceInputs {
  return assembleInputs(
    { row, tenant, pieces: [piece], finalized: [], slaCredits: [], priceVersions, taxRates: [{ name: 'VAT', rate: '0.19' }], grants: [], ...(withBuyer ? { buyer } : {}) },
    { cutoff: 10, atMs: Date.UTC(2026, 10, 3), issuer: 'FGPU', finalization: { number: 'FGPU-000001', finalizedAt: '2026-11-03T00:00:00.000Z' } },
  );
}

describe('the buyer in invoice documents', () => {
  it('holds the profile in layout 2, nothing without one, and never in layout 1', () => {
    expect(buildInvoice(inputs(true)).document.buyer).toEqual(buyer);
    const none = buildInvoice(inputs(false)).document;
    expect(none.buyer).toBeUndefined();
    expect(JSON.stringify(none)).not.toContain('buyer');
    expect(buildInvoice(inputs(true), 1).document.buyer).toBeUndefined();
    // The buyer is a field of its own: amounts and lines do not change.
    const named = buildInvoice(inputs(true)).document;
    expect({ ...named, buyer: undefined }).toEqual({ ...none, buyer: undefined });
  });

  it('rebuilds a finalized invoice in the form its hash was taken of', () => {
    const named = buildInvoice(inputs(true)).document;
    const unnamed = buildInvoice(inputs(false)).document;
    const legacy = buildInvoice(inputs(false), 1).document;
    expect(buildFinalizedInvoice(inputs(true), documentSha256(named)).document).toEqual(named);
    // Finalized while a profile was in force by a process that did not know profiles: rebuilt without it.
    expect(buildFinalizedInvoice(inputs(true), documentSha256(unnamed)).document).toEqual(unnamed);
    expect(buildFinalizedInvoice(inputs(true), documentSha256(legacy)).document).toEqual(legacy);
    // A hash none matches gets the current layout back, and the caller's check fails on it.
    expect(documentSha256(buildFinalizedInvoice(inputs(true), '0'.repeat(64)).document)).toBe(documentSha256(named));
  });

  it('prints the buyer after the sums in CSV and under "Bill to" in the PDF', () => {
    const csv = invoiceCsv(buildInvoice(inputs(true)).document).trimEnd().split('\r\n');
    const kinds = csv.map((r) => r.split(',')[6]);
    expect(kinds.slice(kinds.indexOf('amount-due') + 1)).toEqual(['buyer', 'buyer-address', 'buyer-address', 'buyer-country', 'buyer-tax-id']);
    expect(invoiceCsv(buildInvoice(inputs(false)).document)).not.toContain('buyer');
    expect(buyerLines(tenant, buyer)).toEqual(['Acme Deutschland GmbH', 'Hauptstraße 1', '10115 Berlin', 'Germany', 'Tax ID: DE123456789', 'Customer ID acme']);
    expect(buyerLines(tenant, { legalName: buyer.legalName, addressLines: buyer.addressLines, country: 'CH' })).toEqual(['Acme Deutschland GmbH', 'Hauptstraße 1', '10115 Berlin', 'Switzerland', 'Customer ID acme']);
    expect(buyerLines(tenant, undefined)).toEqual(['Acme', 'Customer ID acme']);
  });
});
