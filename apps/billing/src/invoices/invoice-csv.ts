import { canonicalJson, type BuyerProfile, type InvoiceDocument } from './invoice-document';
import { addAmounts, csvField, lineQuantity, lineTaxes, negate, percent, unitPriceFixed } from './document-format';

/**
 * Exports of one invoice document (and of a whole period), all rendered from the same document:
 * canonical JSON, and CSV with fixed-point decimal strings whose rows add up exactly (lines →
 * subtotal, subtotal + taxes → total, total + prepaid credits → amount due; credits carried forward
 * to the next invoice follow, outside the sums). The PDF is invoice-pdf.ts, whose creation date and
 * metadata come from the invoice, so the same document (and the same seller settings) always gives
 * the same bytes.
 *
 * Fixed decimals per column: quantities 6, amounts the currency's minor digits, unit prices exact
 * with at least the currency's minor digits. Every line shows its tax (allocated by libs/money's
 * largest-remainder rule: the lines' taxes sum to the invoice's tax of each rate).
 */
export const CSV_HEADER = [
  'invoice_id',
  'invoice_number',
  'tenant_id',
  'period',
  'currency',
  'row',
  'kind',
  'description',
  'service_period',
  'gpu_model',
  'capacity_type',
  'price_book',
  'price_book_version',
  'tier',
  'quantity_gpu_hours',
  'unit_price',
  'amount',
  'tax',
  'amount_with_tax',
  'reference',
  'reference_number',
] as const;


/** The CSV rows of one invoice (without header). */
export function invoiceCsvRows(doc: InvoiceDocument): string[] {
  const head = [doc.invoiceId, doc.number, doc.tenant.tenantId, doc.period, doc.currency];
  const taxes = lineTaxes(doc);
  const rows: Array<Array<string | number | null>> = [];
  for (const [i, l] of doc.lines.entries()) {
    const tax = addAmounts(
      taxes[i]!.map((t) => t.amount),
      doc.currency,
    );
    rows.push([
      ...head,
      l.line,
      l.kind,
      l.description,
      l.servicePeriod,
      l.gpuModel,
      l.capacityType,
      l.priceBookId,
      l.priceBookVersion,
      l.tier,
      lineQuantity(l),
      l.unitPrice === null ? null : unitPriceFixed(l.unitPrice, doc.currency),
      l.amount,
      tax,
      addAmounts([l.amount, tax], doc.currency),
      l.reference,
      l.referenceNumber ?? null,
    ]);
  }
  const summary = (kind: string, description: string, amount: string) => rows.push([...head, null, kind, description, null, null, null, null, null, null, null, null, amount, null, null, null, null]);
  summary('subtotal', 'Subtotal (sum of lines)', doc.subtotal);
  for (const t of doc.taxes) summary('tax', `${t.name} ${percent(t.rate)} on ${t.taxableAmount}`, t.amount);
  summary('total', 'Total (subtotal + taxes)', doc.total);
  for (const p of doc.prepaidCredits) summary('prepaid-credit', `Prepaid credit ${p.grantId}`, negate(p.amount));
  summary('amount-due', 'Amount due (total − prepaid credits)', doc.amountDue);
  // Not part of the sums: what the tenant is still owed, carried to its next invoice.
  for (const c of doc.creditsCarriedForward ?? []) summary('credit-carried-forward', `SLA credit ${c.reference} for ${c.servicePeriod} (from ${c.originNumber ?? c.originInvoiceId}) carried forward to the next invoice`, c.amount);
  // Not part of the sums either: the void invoice a reissue replaces.
  if (doc.replaces) rows.push([...head, null, 'replaces', `Replaces void invoice ${doc.replaces.number ?? doc.replaces.invoiceId}`, null, null, null, null, null, null, null, null, null, null, null, doc.replaces.invoiceId, doc.replaces.number]);
  // Nor the buyer, one row per field (only documents that hold a billing profile have them).
  for (const [kind, description] of buyerCsvFields(doc.buyer)) rows.push([...head, null, kind, description, ...Array<null>(CSV_HEADER.length - head.length - 3).fill(null)]);
  return rows.map((r) => r.map(csvField).join(','));
}

/**
 * The buyer of a document as CSV rows after the sums, as (kind, description): `buyer` (the legal
 * name), a `buyer-address` row per address line, `buyer-country` (ISO 3166-1 alpha-2) and
 * `buyer-tax-id` when there is one. None for a document without a billing profile.
 */
export function buyerCsvFields(buyer: BuyerProfile | undefined): Array<[string, string]> {
  if (!buyer) return [];
  return [['buyer', buyer.legalName], ...buyer.addressLines.map((line): [string, string] => ['buyer-address', line]), ['buyer-country', buyer.country], ...(buyer.taxId ? [['buyer-tax-id', buyer.taxId] as [string, string]] : [])];
}

export function invoiceCsv(doc: InvoiceDocument): string {
  return `${[CSV_HEADER.join(','), ...invoiceCsvRows(doc)].join('\r\n')}\r\n`;
}

export function periodCsv(docs: readonly InvoiceDocument[]): string {
  return `${[CSV_HEADER.join(','), ...docs.flatMap(invoiceCsvRows)].join('\r\n')}\r\n`;
}

export function invoiceJson(doc: InvoiceDocument): string {
  return canonicalJson(doc);
}
