import type PDFDocumentClass from 'pdfkit';
import { allocateTaxToLines, fixedUnits, formatMinor, minorUnits, Money, offsetAt, periodBounds } from '@fastgpu/money';
import type { BillingOptions } from '../billing.config';
import { canonicalJson, documentSha256, DOCUMENT_SCHEMA, quantityFixed, type BuyerProfile, type InvoiceDocument, type InvoiceLine, type LineTax } from './invoice-document';

/**
 * Exports of one invoice document (and of a whole period), all rendered from the same document:
 * canonical JSON, CSV with fixed-point decimal strings whose rows add up exactly (lines → subtotal,
 * subtotal + taxes → total, total + prepaid credits → amount due; credits carried forward to the
 * next invoice follow, outside the sums), and a PDF whose creation date and metadata come from the
 * invoice, so the same document (and the same seller settings) always gives the same bytes.
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

/** What the PDF prints besides the document: the seller (billing configuration) and payment terms. */
export interface DocumentPresentation {
  seller: { name: string; address: string; taxId: string; email: string };
  paymentTermsDays: number;
}

export const DEFAULT_PRESENTATION: DocumentPresentation = { seller: { name: 'FastGPU', address: '', taxId: '', email: '' }, paymentTermsDays: 30 };

/** What PDFs print from the billing configuration: the seller and the payment terms. */
export function presentationOf(options: Pick<BillingOptions, 'seller' | 'paymentTermsDays'>): DocumentPresentation {
  return { seller: options.seller, paymentTermsDays: options.paymentTermsDays };
}

export function csvField(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function negate(amount: string): string {
  if (/^0(\.0+)?$/.test(amount)) return amount;
  return amount.startsWith('-') ? amount.slice(1) : `-${amount}`;
}

/** A unit price, exact, with at least the currency's minor digits ("2.5" → "2.50"). */
export function unitPriceFixed(price: string, currency: string): string {
  const digits = minorUnits(currency);
  const [whole, fraction = ''] = price.split('.');
  const padded = fraction.padEnd(digits, '0');
  return padded ? `${whole}.${padded}` : whole!;
}

/** Sum of fixed-point amounts of one currency, as a fixed-point amount. */
export function addAmounts(amounts: readonly string[], currency: string): string {
  const digits = minorUnits(currency);
  let sum = 0n;
  for (const a of amounts) sum += fixedUnits(a, digits);
  return formatMinor(sum, currency);
}

/**
 * The tax of every line per rate: stored in documents of layout 2; for documents finalized in
 * layout 1 (which do not hold it), allocated here by the same libs/money rule from their lines.
 */
export function lineTaxes(doc: InvoiceDocument): LineTax[][] {
  if (doc.schema === DOCUMENT_SCHEMA) return doc.lines.map((l) => l.taxes ?? []);
  const digits = minorUnits(doc.currency);
  const allocated = allocateTaxToLines(
    doc.lines.map((l) => ({ amountMinor: fixedUnits(l.amount, digits), taxable: l.taxable })),
    doc.taxes.map((t) => ({ name: t.name, rate: t.rate, amountMinor: fixedUnits(t.amount, digits) })),
  );
  return allocated.map((taxes) => taxes.map((t) => ({ name: t.name, rate: t.rate, amount: formatMinor(t.amountMinor, doc.currency) })));
}

function lineQuantity(line: InvoiceLine): string | null {
  return line.quantityGpuMs === null ? null : quantityFixed(line.quantityGpuMs);
}

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

const regionNames = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'code' });

/** An ISO 3166-1 alpha-2 code as the country's English name ("DE" → "Germany"); the code when unknown. */
export function countryName(code: string): string {
  return regionNames.of(code) ?? code;
}

/**
 * The "Bill to" block of a PDF: the buyer's legal name, address, country and tax id when the
 * document holds a billing profile, else the tenant's name; then the customer id.
 */
export function buyerLines(tenant: { tenantId: string; name: string }, buyer: BuyerProfile | undefined): string[] {
  if (!buyer) return [tenant.name, `Customer ID ${tenant.tenantId}`];
  return [buyer.legalName, ...buyer.addressLines, countryName(buyer.country), ...(buyer.taxId ? [`Tax ID: ${buyer.taxId}`] : []), `Customer ID ${tenant.tenantId}`];
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

// ---------------------------------------------------------------------------------------------
// Human formatting for the PDF: grouped amounts in the currency's locale, percentages, dates in
// the tenant's zone. Exact: amounts are regrouped from their fixed-point strings, never floats.

/** The locale whose grouping a currency's amounts are printed in. */
const CURRENCY_LOCALE: Record<string, string> = {
  USD: 'en-US',
  EUR: 'de-DE',
  GBP: 'en-GB',
  CHF: 'de-CH',
  CAD: 'en-CA',
  AUD: 'en-AU',
  SGD: 'en-SG',
  JPY: 'ja-JP',
  KRW: 'ko-KR',
  KWD: 'en-KW',
  BHD: 'en-BH',
  JOD: 'en-JO',
  OMR: 'en-OM',
  TND: 'fr-TN',
};

interface Separators {
  group: string;
  decimal: string;
}
const separatorsCache = new Map<string, Separators>();

/**
 * The group and decimal separators of a currency's locale. Spaces of any width print as a plain
 * space (the PDF's standard fonts have no narrow no-break space).
 */
export function separatorsFor(currency: string): Separators {
  let found = separatorsCache.get(currency);
  if (!found) {
    const parts = new Intl.NumberFormat(CURRENCY_LOCALE[currency] ?? 'en-US', { useGrouping: true, minimumFractionDigits: 1 }).formatToParts(1234567.5);
    const plain = (text: string) => text.replace(/[\s\u00a0\u202f]/g, ' ');
    found = { group: plain(parts.find((p) => p.type === 'group')?.value ?? ','), decimal: plain(parts.find((p) => p.type === 'decimal')?.value ?? '.') };
    separatorsCache.set(currency, found);
  }
  return found;
}

/** "1234567.5" → "1,234,567.5" (en-US) or "1.234.567,5" (de-DE), digits unchanged. */
export function groupedNumber(fixed: string, currency: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(fixed);
  if (!m) throw new Error(`"${fixed}" is not a fixed-point decimal`);
  const { group, decimal } = separatorsFor(currency);
  const whole = m[2]!.replace(/\B(?=(\d{3})+(?!\d))/g, group);
  return `${m[1] ? '-' : ''}${whole}${m[3] ? `${decimal}${m[3]}` : ''}`;
}

/** A decimal fraction as a percentage: "0.2" → "20 %", "0.075" → "7.5 %". */
export function percent(rate: string, currency?: string): string {
  const text = new Money(rate).times(100).toFixed();
  return `${currency ? groupedNumber(text, currency) : text} %`;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'] as const;

interface LocalDate {
  year: number;
  month: number;
  day: number;
}

function localDate(instantMs: number, timeZone: string): LocalDate {
  const local = new Date(instantMs + offsetAt(timeZone, instantMs));
  return { year: local.getUTCFullYear(), month: local.getUTCMonth() + 1, day: local.getUTCDate() };
}

function dateText(d: LocalDate, withYear = true, withMonth = true): string {
  return [String(d.day), withMonth ? MONTHS[d.month - 1] : '', withYear ? String(d.year) : ''].filter(Boolean).join(' ');
}

/** An instant as its date in a zone: "30 November 2026". */
export function humanDate(instantMs: number, timeZone: string): string {
  return dateText(localDate(instantMs, timeZone));
}

/** The date `days` calendar days after an instant's date in a zone. */
export function humanDatePlusDays(instantMs: number, days: number, timeZone: string): string {
  const d = localDate(instantMs, timeZone);
  const later = new Date(Date.UTC(d.year, d.month - 1, d.day + days));
  return dateText({ year: later.getUTCFullYear(), month: later.getUTCMonth() + 1, day: later.getUTCDate() });
}

/**
 * A half-open range [start, end) as the days it covers, the last one included:
 * "1–30 November 2026", "15 October – 3 November 2026", "20 December 2026 – 2 January 2027".
 */
export function humanRange(startMs: number, endMs: number, timeZone: string): string {
  const first = localDate(startMs, timeZone);
  const last = localDate(Math.max(startMs, endMs - 1), timeZone);
  if (first.year !== last.year) return `${dateText(first)} – ${dateText(last)}`;
  if (first.month !== last.month) return `${dateText(first, false)} – ${dateText(last)}`;
  if (first.day !== last.day) return `${first.day}–${dateText(last)}`;
  return dateText(last);
}

/** A billing period ("2026-11") as the days it covers in a zone. */
export function humanPeriod(period: string, timeZone: string): string {
  const bounds = periodBounds(period, timeZone);
  return humanRange(bounds.startMs, bounds.endMs, timeZone);
}

// ---------------------------------------------------------------------------------------------
// A small layout engine over pdfkit: every piece of text is placed in a box of known width and
// measured height, rows grow to their tallest cell and move to the next page whole, so nothing is
// ever printed over something else. Invoices and credit notes share it.

const PAGE_MARGIN = 50;
const CONTENT_RIGHT = 545;
const FOOTER_HEIGHT = 28;
const FOOTER_LINE_HEIGHT = 9;
const CELL_GAP = 6;
const FONT_SIZE_MIN = 6;
const GREY = '#555555';

export interface PdfColumn {
  title: string;
  width: number;
  align: 'left' | 'right';
  /** Text wraps onto more lines; otherwise it is set smaller until it fits one line. */
  wraps?: boolean;
}

export interface PdfCell {
  text: string;
  /** Smaller grey text under the main text (service period, references). */
  note?: string;
  bold?: boolean;
}

export interface PdfTotal {
  label: string;
  amount: string;
  bold?: boolean;
  /** Smaller grey text under the label (a grant id). */
  note?: string;
}

export interface PdfSpec {
  title: string;
  heading: string;
  author: string;
  subject: string;
  keywords: string;
  stamp: Date;
  seller: DocumentPresentation['seller'];
  buyer: string[];
  meta: Array<[string, string]>;
  columns: PdfColumn[];
  rows: PdfCell[][];
  emptyText: string;
  totals: PdfTotal[];
  notes: string[];
  warning?: string;
  /** Up to two lines at the foot of every page. */
  footer: [string] | [string, string];
}

type Pdf = InstanceType<typeof PDFDocumentClass>;

/**
 * pdfkit (with fontkit and its fonts) loads on the first PDF rendered, not when billing starts:
 * about 20 MB that an idle billing process, or one that never renders a PDF, does not hold.
 */
let pdfkit: Promise<typeof PDFDocumentClass> | undefined;
const loadPdfkit = () => (pdfkit ??= import('pdfkit').then((module) => module.default));

/** Font size at which one line of text fits a width (down to a floor; below it, the text wraps). */
function fittingSize(pdf: Pdf, text: string, width: number, size: number): number {
  let fitted = size;
  while (fitted > FONT_SIZE_MIN && pdf.fontSize(fitted).widthOfString(text) > width) fitted -= 0.5;
  return fitted;
}

/** Draws text in a box, returns its height. */
function box(pdf: Pdf, text: string, x: number, y: number, width: number, options: { size: number; bold?: boolean; align?: 'left' | 'right'; color?: string; shrink?: boolean }): number {
  pdf.font(options.bold ? 'Helvetica-Bold' : 'Helvetica');
  const size = options.shrink ? fittingSize(pdf, text, width, options.size) : options.size;
  pdf.fontSize(size).fillColor(options.color ?? '#000000');
  const height = pdf.heightOfString(text, { width, align: options.align ?? 'left' });
  pdf.text(text, x, y, { width, align: options.align ?? 'left' });
  pdf.fillColor('#000000');
  return height;
}

/** Height a box would take, without drawing it. */
function measure(pdf: Pdf, text: string, width: number, options: { size: number; bold?: boolean; shrink?: boolean }): number {
  pdf.font(options.bold ? 'Helvetica-Bold' : 'Helvetica');
  const size = options.shrink ? fittingSize(pdf, text, width, options.size) : options.size;
  return pdf.fontSize(size).heightOfString(text, { width });
}

export async function renderPdf(spec: PdfSpec): Promise<Buffer> {
  const PDFDocument = await loadPdfkit();
  const pdf = new PDFDocument({
    size: 'A4',
    margin: PAGE_MARGIN,
    compress: true,
    bufferPages: true,
    info: { Title: spec.title, Author: spec.author, Subject: spec.subject, Keywords: spec.keywords, Creator: 'FastGPU billing', Producer: 'FastGPU billing', CreationDate: spec.stamp, ModDate: spec.stamp },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pdf.on('data', (chunk: Buffer) => chunks.push(chunk));
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
  });
  const bottom = () => pdf.page.height - PAGE_MARGIN - FOOTER_HEIGHT;
  const contentWidth = CONTENT_RIGHT - PAGE_MARGIN;

  // Header: the seller on the left, the heading and the document's facts on the right.
  const leftWidth = 250;
  const rightX = 320;
  const rightWidth = CONTENT_RIGHT - rightX;
  let left = PAGE_MARGIN;
  left += box(pdf, spec.seller.name, PAGE_MARGIN, left, leftWidth, { size: 16, bold: true, shrink: true }) + 2;
  for (const line of spec.seller.address.split('\n').filter((l) => l.trim())) left += box(pdf, line, PAGE_MARGIN, left, leftWidth, { size: 9, color: GREY });
  if (spec.seller.taxId) left += box(pdf, `Tax ID: ${spec.seller.taxId}`, PAGE_MARGIN, left, leftWidth, { size: 9, color: GREY });
  if (spec.seller.email) left += box(pdf, spec.seller.email, PAGE_MARGIN, left, leftWidth, { size: 9, color: GREY });
  let right = PAGE_MARGIN;
  right += box(pdf, spec.heading, rightX, right, rightWidth, { size: 16, bold: true, align: 'right', shrink: true }) + 6;
  const labelWidth = 82;
  for (const [label, value] of spec.meta) {
    const h1 = box(pdf, label, rightX, right, labelWidth, { size: 9, color: GREY });
    const h2 = box(pdf, value, rightX + labelWidth + CELL_GAP, right, rightWidth - labelWidth - CELL_GAP, { size: 9, align: 'right' });
    right += Math.max(h1, h2) + 2;
  }
  let y = Math.max(left, PAGE_MARGIN + 40) + 16;
  y += box(pdf, 'Bill to', PAGE_MARGIN, y, leftWidth, { size: 10, bold: true }) + 2;
  for (const [i, line] of spec.buyer.entries()) y += box(pdf, line, PAGE_MARGIN, y, leftWidth, { size: i === 0 ? 10 : 9, color: i === 0 ? undefined : GREY });
  y = Math.max(y, right) + 18;

  // The table: columns laid out left to right with a gap; the header repeats on every page.
  const xs: number[] = [];
  let x = PAGE_MARGIN;
  for (const c of spec.columns) {
    xs.push(x);
    x += c.width + CELL_GAP;
  }
  if (x - CELL_GAP > CONTENT_RIGHT + 0.5) throw new Error(`table columns are ${x - CELL_GAP - PAGE_MARGIN} pt wide, the page has ${contentWidth}`);
  const headerRow = () => {
    let height = 0;
    for (const [i, c] of spec.columns.entries()) height = Math.max(height, box(pdf, c.title, xs[i]!, y, c.width, { size: 8.5, bold: true, align: c.align, shrink: true }));
    y += height + 3;
    pdf.moveTo(PAGE_MARGIN, y).lineTo(CONTENT_RIGHT, y).lineWidth(0.5).strokeColor('#999999').stroke();
    y += 4;
  };
  const cellHeight = (cell: PdfCell, column: PdfColumn) => {
    let h = measure(pdf, cell.text, column.width, { size: 8.5, bold: cell.bold, shrink: !column.wraps });
    if (cell.note) h += 1 + measure(pdf, cell.note, column.width, { size: 7 });
    return h;
  };
  headerRow();
  for (const row of spec.rows) {
    const height = Math.max(...row.map((cell, i) => cellHeight(cell, spec.columns[i]!))) + 5;
    if (y + height > bottom()) {
      pdf.addPage();
      y = PAGE_MARGIN;
      headerRow();
    }
    for (const [i, cell] of row.entries()) {
      const column = spec.columns[i]!;
      const h = box(pdf, cell.text, xs[i]!, y, column.width, { size: 8.5, bold: cell.bold, align: column.align, shrink: !column.wraps });
      if (cell.note) box(pdf, cell.note, xs[i]!, y + h + 1, column.width, { size: 7, color: GREY, align: column.align });
    }
    y += height;
  }
  if (spec.rows.length === 0) y += box(pdf, spec.emptyText, PAGE_MARGIN, y, contentWidth, { size: 9 }) + 4;

  // Totals, right-aligned under the table: labels wrap in their own box, never into the amounts.
  const totalsX = 290;
  const amountWidth = 100;
  const totalsLabelWidth = CONTENT_RIGHT - totalsX - amountWidth - CELL_GAP;
  const labelHeight = (t: PdfTotal) => measure(pdf, t.label, totalsLabelWidth, { size: 9.5, bold: t.bold }) + (t.note ? 1 + measure(pdf, t.note, totalsLabelWidth, { size: 7 }) : 0);
  const totalHeight = (t: PdfTotal) => Math.max(labelHeight(t), measure(pdf, t.amount, amountWidth, { size: 9.5, bold: t.bold, shrink: true })) + 3;
  const totalsHeight = spec.totals.reduce((sum, t) => sum + totalHeight(t), 12);
  if (y + totalsHeight > bottom()) {
    pdf.addPage();
    y = PAGE_MARGIN;
  }
  y += 4;
  pdf.moveTo(totalsX, y).lineTo(CONTENT_RIGHT, y).lineWidth(0.5).strokeColor('#999999').stroke();
  y += 6;
  for (const t of spec.totals) {
    const height = totalHeight(t);
    const h = box(pdf, t.label, totalsX, y, totalsLabelWidth, { size: 9.5, bold: t.bold, align: 'right' });
    if (t.note) box(pdf, t.note, totalsX, y + h + 1, totalsLabelWidth, { size: 7, color: GREY, align: 'right' });
    box(pdf, t.amount, CONTENT_RIGHT - amountWidth, y, amountWidth, { size: 9.5, bold: t.bold, align: 'right', shrink: true });
    y += height;
  }

  // Notes: payment terms, carried credits, warnings; each a paragraph of measured height.
  y += 10;
  const paragraphs = [...spec.notes.map((text) => ({ text, warning: false })), ...(spec.warning ? [{ text: spec.warning, warning: true }] : [])];
  for (const p of paragraphs) {
    const height = measure(pdf, p.text, contentWidth, { size: 8.5, bold: p.warning }) + 4;
    if (y + height > bottom()) {
      pdf.addPage();
      y = PAGE_MARGIN;
    }
    box(pdf, p.text, PAGE_MARGIN, y, contentWidth, { size: 8.5, bold: p.warning, color: p.warning ? '#aa0000' : undefined });
    y += height;
  }

  // Footer on every page, inside the bottom margin (pdfkit would start a new page for text below
  // it, so the margin is lifted while the footer is drawn).
  const range = pdf.bufferedPageRange();
  for (let i = range.start; i < range.start + range.count; i++) {
    pdf.switchToPage(i);
    const margin = pdf.page.margins.bottom;
    pdf.page.margins.bottom = 0;
    const footerY = pdf.page.height - PAGE_MARGIN - FOOTER_HEIGHT + 10;
    const pageText = `Page ${i - range.start + 1} of ${range.count}`;
    const pageWidth = 60;
    pdf.font('Helvetica').fillColor('#777777');
    pdf.fontSize(fittingSize(pdf, pageText, pageWidth, 6.5)).text(pageText, CONTENT_RIGHT - pageWidth, footerY, { width: pageWidth, align: 'right', lineBreak: false });
    const footerWidth = contentWidth - pageWidth - CELL_GAP;
    for (const [n, line] of spec.footer.entries()) {
      pdf.fontSize(fittingSize(pdf, line, footerWidth, 6.5)).text(line, PAGE_MARGIN, footerY + n * FOOTER_LINE_HEIGHT, { width: footerWidth, lineBreak: false });
    }
    pdf.page.margins.bottom = margin;
  }
  pdf.fillColor('#000000');
  pdf.end();
  return done;
}

/** Columns of a line table (invoices and credit notes): 495 pt in all with the 6 pt gaps. */
export const LINE_COLUMNS: PdfColumn[] = [
  { title: '#', width: 16, align: 'left' },
  { title: 'Description', width: 150, align: 'left', wraps: true },
  { title: 'GPU-hours', width: 56, align: 'right' },
  { title: 'Unit price', width: 52, align: 'right' },
  { title: 'Net', width: 62, align: 'right' },
  { title: 'Tax', width: 56, align: 'right' },
  { title: 'Total', width: 67, align: 'right' },
];

function lineNote(doc: InvoiceDocument, line: InvoiceLine): string | undefined {
  const notes: string[] = [];
  if (line.servicePeriod !== doc.period || line.kind === 'adjustment') notes.push(`Service period ${humanPeriod(line.servicePeriod, doc.tenant.billingTimeZone)}`);
  if (line.kind === 'adjustment' && (line.referenceNumber || line.reference)) notes.push(`corrects invoice ${line.referenceNumber ?? line.reference}`);
  if ((line.kind === 'sla-credit' || line.kind === 'carried-credit') && line.reference) notes.push(`credit ${line.reference}`);
  return notes.length ? notes.join(' · ') : undefined;
}

/** A PDF a customer could receive. Deterministic: creation date and ids come from the invoice. */
export function invoicePdf(doc: InvoiceDocument, presentation: DocumentPresentation = DEFAULT_PRESENTATION): Promise<Buffer> {
  const zone = doc.tenant.billingTimeZone;
  const money = (amount: string) => groupedNumber(amount, doc.currency);
  const taxes = lineTaxes(doc);
  const issuedMs = doc.finalizedAt ? Date.parse(doc.finalizedAt) : null;
  const meta: Array<[string, string]> = [
    ['Invoice number', doc.number ?? 'not yet numbered (draft)'],
    ['Issue date', issuedMs === null ? 'not issued (draft)' : humanDate(issuedMs, zone)],
    ...(issuedMs === null ? [] : ([['Due date', humanDatePlusDays(issuedMs, presentation.paymentTermsDays, zone)]] as Array<[string, string]>)),
    ['Service period', humanPeriod(doc.period, zone)],
    ...(doc.replaces ? ([['Replaces invoice', `${doc.replaces.number ?? doc.replaces.invoiceId} (void)`]] as Array<[string, string]>) : []),
    ['Currency', doc.currency],
  ];
  const rows: PdfCell[][] = doc.lines.map((line, i) => {
    const tax = addAmounts(
      taxes[i]!.map((t) => t.amount),
      doc.currency,
    );
    const quantity = lineQuantity(line);
    return [
      { text: String(line.line) },
      { text: line.description, note: lineNote(doc, line) },
      { text: quantity === null ? '' : groupedNumber(quantity, doc.currency) },
      { text: line.unitPrice === null ? '' : money(unitPriceFixed(line.unitPrice, doc.currency)) },
      { text: money(line.amount) },
      { text: money(tax), note: taxes[i]!.length === 1 ? percent(taxes[i]![0]!.rate, doc.currency) : undefined },
      { text: money(addAmounts([line.amount, tax], doc.currency)) },
    ];
  });
  const totals: PdfTotal[] = [{ label: 'Subtotal', amount: money(doc.subtotal) }];
  for (const t of doc.taxes) totals.push({ label: `${t.name} ${percent(t.rate, doc.currency)} on ${money(t.taxableAmount)}`, amount: money(t.amount) });
  totals.push({ label: 'Total', amount: money(doc.total), bold: true });
  for (const p of doc.prepaidCredits) totals.push({ label: 'Prepaid credit applied', note: `grant ${p.grantId}`, amount: money(negate(p.amount)) });
  totals.push({ label: `Amount due (${doc.currency})`, amount: money(doc.amountDue), bold: true });
  const notes: string[] = [];
  if (issuedMs !== null) {
    notes.push(
      presentation.paymentTermsDays === 0
        ? `Payment terms: due on receipt. Please quote invoice number ${doc.number} with your payment.`
        : `Payment terms: net ${presentation.paymentTermsDays} days, due by ${humanDatePlusDays(issuedMs, presentation.paymentTermsDays, zone)}. Please quote invoice number ${doc.number} with your payment.`,
    );
  }
  notes.push(`Dates are in ${zone}. Quantities are GPU-hours to six decimals; tax is shown per line and sums to the tax of each rate.`);
  for (const c of doc.creditsCarriedForward ?? []) notes.push(`SLA credit for ${humanPeriod(c.servicePeriod, zone)} (${c.reference}) carried forward to your next invoice: ${money(c.amount)} ${doc.currency}.`);
  const sha = documentSha256(doc);
  return renderPdf({
    title: doc.number ? `Invoice ${doc.number}` : `Draft invoice ${doc.period}`,
    heading: doc.status === 'draft' ? 'DRAFT INVOICE' : 'INVOICE',
    author: doc.issuer,
    subject: `${doc.tenant.name} ${doc.period}`,
    keywords: `invoice ${doc.invoiceId} ${sha}`,
    stamp: new Date(doc.finalizedAt ?? doc.periodEnd),
    seller: presentation.seller,
    buyer: buyerLines(doc.tenant, doc.buyer),
    meta,
    columns: LINE_COLUMNS,
    rows,
    emptyText: 'No billable usage in this period.',
    totals,
    notes,
    ...(doc.validationErrors.length ? { warning: `Not billable yet: ${doc.validationErrors.length} usage record(s) without a price.` } : {}),
    footer: [`${doc.number ? `Invoice ${doc.number}` : 'Draft invoice'} · id ${doc.invoiceId} · event cutoff ${doc.cutoffSequence}`, `Document SHA-256 ${sha}`],
  });
}
