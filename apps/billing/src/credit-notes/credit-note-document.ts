import { canonicalJson, sha256Hex } from '@fastgpu/contracts';
import { buyerProfileOf, type BuyerProfile, type InvoiceDocument } from '../invoices/invoice-document';
import { addAmounts, buyerLines, csvField, DEFAULT_PRESENTATION, groupedNumber, humanDate, humanPeriod, percent, unitPriceFixed, type DocumentPresentation } from '../invoices/document-format';
import { buyerCsvFields } from '../invoices/invoice-csv';
import { LINE_COLUMNS, renderPdf, type PdfCell, type PdfTotal } from '../invoices/pdf-layout';
import type { CreditNoteData, CreditNoteRequest } from './credit-note.decider';

/**
 * A credit note as a document: a pure function of its `CreditNoteIssued` event and the frozen
 * document of the invoice it corrects (for the tenant's name and zone, and the buyer as of the
 * invoice's finalization), so a rebuild from the log renders the same bytes in JSON, CSV and PDF.
 * Notes issued before credit notes had lines are one line for their amount, without a split into
 * net and tax (`split: false`).
 */
export const CREDIT_NOTE_SCHEMA = 'fastgpu.credit-note/1';

export interface CreditNoteLine {
  line: number;
  /** The invoice line it credits; null for a credit on the whole invoice. */
  invoiceLine: number | null;
  description: string;
  servicePeriod: string | null;
  quantityGpuHours: string | null;
  unitPrice: string | null;
  net: string;
  taxes: Array<{ name: string; rate: string; amount: string }>;
  tax: string;
  total: string;
}

export interface CreditNoteDocument {
  schema: typeof CREDIT_NOTE_SCHEMA;
  creditNoteId: string;
  number: string;
  invoiceId: string;
  invoiceNumber: string | null;
  tenant: { tenantId: string; name: string; billingTimeZone: string };
  currency: string;
  issuedAt: string;
  actor: string;
  reason: string;
  /** False for a note issued before credit notes had lines: its total is not split into net and tax. */
  split: boolean;
  lines: CreditNoteLine[];
  net: string;
  taxes: Array<{ name: string; rate: string; amount: string }>;
  total: string;
  /**
   * The buyer of the invoice it corrects, as that invoice's document names it (the billing profile
   * in force at its finalization). Absent when the invoice has none, so such notes keep their bytes.
   */
  buyer?: BuyerProfile;
}

export function creditNoteDocument(note: CreditNoteData, invoice: Pick<InvoiceDocument, 'number' | 'tenant' | 'currency' | 'buyer'>): CreditNoteDocument {
  const split = note.lines !== undefined && note.net !== undefined;
  const invoiceNumber = note.invoiceNumber ?? invoice.number;
  const lines: CreditNoteLine[] = split
    ? note.lines!.map((l) => ({ ...l, tax: addAmounts(l.taxes.map((t) => t.amount), note.currency) }))
    : [{ line: 1, invoiceLine: null, description: `Credit on invoice ${invoiceNumber ?? note.invoiceId}`, servicePeriod: null, quantityGpuHours: null, unitPrice: null, net: note.amount, taxes: [], tax: addAmounts([], note.currency), total: note.amount }];
  const document: CreditNoteDocument = {
    schema: CREDIT_NOTE_SCHEMA,
    creditNoteId: note.creditNoteId,
    number: note.number,
    invoiceId: note.invoiceId,
    invoiceNumber,
    tenant: invoice.tenant,
    currency: note.currency,
    issuedAt: note.issuedAt,
    actor: note.actor,
    reason: note.reason,
    split,
    lines,
    net: split ? note.net! : note.amount,
    taxes: split ? (note.taxes ?? []) : [],
    total: note.amount,
    ...(invoice.buyer ? { buyer: buyerProfileOf(invoice.buyer) } : {}),
  };
  assertCreditNote(document);
  return document;
}

/** The sums a reader relies on hold exactly: lines → net, net + taxes → total, each line's taxes → its tax and total. */
export function assertCreditNote(doc: CreditNoteDocument): void {
  const sum = (amounts: readonly string[]) => addAmounts(amounts, doc.currency);
  const fail = (what: string) => {
    throw new Error(`credit note ${doc.number}: ${what}`);
  };
  if (sum(doc.lines.map((l) => l.net)) !== doc.net) fail(`lines sum to ${sum(doc.lines.map((l) => l.net))}, the net is ${doc.net}`);
  if (sum([doc.net, ...doc.taxes.map((t) => t.amount)]) !== doc.total) fail(`net + taxes ≠ total ${doc.total}`);
  for (const l of doc.lines) {
    if (sum(l.taxes.map((t) => t.amount)) !== l.tax || sum([l.net, l.tax]) !== l.total) fail(`line ${l.line} does not add up`);
  }
  for (const [r, t] of doc.taxes.entries()) {
    if (sum(doc.lines.map((l) => l.taxes[r]?.amount ?? '0')) !== t.amount) fail(`line taxes of ${t.name} do not sum to ${t.amount}`);
  }
}

export function creditNoteJson(doc: CreditNoteDocument): string {
  return canonicalJson(doc);
}

export function creditNoteSha256(doc: CreditNoteDocument): string {
  return sha256Hex(creditNoteJson(doc));
}

/** The hash of a credit-note request (`CreditNoteIssued.requestSha256`): a retried Idempotency-Key must carry the same request. */
export function creditNoteRequestSha256(invoiceId: string, request: CreditNoteRequest, reason: string): string {
  return sha256Hex(canonicalJson({ invoiceId, request, reason }));
}

export const CREDIT_NOTE_CSV_HEADER = [
  'credit_note_id',
  'credit_note_number',
  'invoice_id',
  'invoice_number',
  'tenant_id',
  'currency',
  'row',
  'kind',
  'invoice_line',
  'description',
  'service_period',
  'quantity_gpu_hours',
  'unit_price',
  'net',
  'tax',
  'total',
] as const;

/**
 * CSV rows of credit notes: a row per line (net + tax = total), then per note `net` (the lines'
 * nets), a `tax` row per rate (the lines' taxes of that rate) and `total` (net + taxes).
 */
export function creditNoteCsvRows(doc: CreditNoteDocument): string[] {
  const head = [doc.creditNoteId, doc.number, doc.invoiceId, doc.invoiceNumber, doc.tenant.tenantId, doc.currency];
  const rows: Array<Array<string | number | null>> = doc.lines.map((l) => [
    ...head,
    l.line,
    'line',
    l.invoiceLine,
    l.description,
    l.servicePeriod,
    l.quantityGpuHours,
    l.unitPrice === null ? null : unitPriceFixed(l.unitPrice, doc.currency),
    l.net,
    l.tax,
    l.total,
  ]);
  rows.push([...head, null, 'net', null, 'Net credited (sum of lines)', null, null, null, doc.net, null, null]);
  for (const t of doc.taxes) rows.push([...head, null, 'tax', null, `${t.name} ${percent(t.rate)} on ${doc.net}`, null, null, null, null, t.amount, null]);
  rows.push([...head, null, 'total', null, doc.split ? 'Total credited (net + taxes)' : 'Total credited (issued without a split into net and tax)', null, null, null, null, null, doc.total]);
  // The buyer, outside the sums, one row per field (only notes on invoices that name one).
  for (const [kind, description] of buyerCsvFields(doc.buyer)) rows.push([...head, null, kind, null, description, ...Array<null>(CREDIT_NOTE_CSV_HEADER.length - head.length - 4).fill(null)]);
  return rows.map((r) => r.map(csvField).join(','));
}

export function creditNotesCsv(docs: readonly CreditNoteDocument[]): string {
  return `${[CREDIT_NOTE_CSV_HEADER.join(','), ...docs.flatMap(creditNoteCsvRows)].join('\r\n')}\r\n`;
}

/** A credit note's PDF, laid out like the invoice's. Deterministic: its dates and ids come from the note. */
export function creditNotePdf(doc: CreditNoteDocument, presentation: DocumentPresentation = DEFAULT_PRESENTATION): Promise<Buffer> {
  const zone = doc.tenant.billingTimeZone;
  const money = (amount: string) => groupedNumber(amount, doc.currency);
  const rows: PdfCell[][] = doc.lines.map((l) => [
    { text: String(l.line) },
    {
      text: l.description,
      note: [l.invoiceLine === null ? null : `credits invoice line ${l.invoiceLine}`, l.servicePeriod ? `service period ${humanPeriod(l.servicePeriod, zone)}` : null].filter(Boolean).join(' · ') || undefined,
    },
    { text: l.quantityGpuHours === null ? '' : groupedNumber(l.quantityGpuHours, doc.currency) },
    { text: l.unitPrice === null ? '' : money(unitPriceFixed(l.unitPrice, doc.currency)) },
    { text: money(l.net) },
    { text: doc.split ? money(l.tax) : '', note: l.taxes.length === 1 ? percent(l.taxes[0]!.rate, doc.currency) : undefined },
    { text: money(l.total) },
  ]);
  const totals: PdfTotal[] = doc.split ? [{ label: 'Net credited', amount: money(doc.net) }, ...doc.taxes.map((t) => ({ label: `${t.name} ${percent(t.rate, doc.currency)} on ${money(doc.net)}`, amount: money(t.amount) }))] : [];
  totals.push({ label: `Total credited (${doc.currency})`, amount: money(doc.total), bold: true });
  const notes = [`Reason: ${doc.reason}`, `This credit note reduces the amount due on invoice ${doc.invoiceNumber ?? doc.invoiceId} by ${money(doc.total)} ${doc.currency}.`];
  if (!doc.split) notes.push('Issued before credit notes were split into net and tax: the total is the amount credited.');
  const sha = creditNoteSha256(doc);
  return renderPdf({
    title: `Credit note ${doc.number}`,
    heading: 'CREDIT NOTE',
    author: doc.number,
    subject: `${doc.tenant.name} ${doc.invoiceNumber ?? doc.invoiceId}`,
    keywords: `credit-note ${doc.creditNoteId} ${sha}`,
    stamp: new Date(doc.issuedAt),
    seller: presentation.seller,
    buyer: buyerLines(doc.tenant, doc.buyer),
    meta: [
      ['Credit note', doc.number],
      ['Issue date', humanDate(Date.parse(doc.issuedAt), zone)],
      ['Corrects invoice', doc.invoiceNumber ?? doc.invoiceId],
      ['Currency', doc.currency],
    ],
    columns: LINE_COLUMNS,
    rows,
    emptyText: '',
    totals,
    notes,
    footer: [`Credit note ${doc.number} · id ${doc.creditNoteId} · invoice ${doc.invoiceId}`, `Document SHA-256 ${sha}`],
  });
}
