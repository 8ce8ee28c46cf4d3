import { allocateTaxToLines, fixedUnits, formatMinor, minorUnits, Money, offsetAt, periodBounds } from '@fastgpu/money';
import type { BillingOptions } from '../billing.config';
import { DOCUMENT_SCHEMA, quantityFixed, type BuyerProfile, type InvoiceDocument, type InvoiceLine, type LineTax } from './invoice-document';

/**
 * How invoice and credit-note documents are written for people and spreadsheets, shared by their
 * CSV (invoice-csv.ts) and PDF (invoice-pdf.ts, pdf-layout.ts) exports: fixed-point fields, each
 * line's tax (allocated by libs/money's largest-remainder rule, so the lines' taxes sum to the
 * invoice's tax of each rate), the seller and payment terms from the configuration, the buyer's
 * lines, grouped amounts in the currency's locale, percentages, and dates in the tenant's zone.
 * Exact: amounts are regrouped from their fixed-point strings, never floats.
 */
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

// Built on first use: Intl's region names page in ICU data an idle billing process does not need (docs/benchmarks.md, service-rss).
let regionNames: Intl.DisplayNames | undefined;

/** An ISO 3166-1 alpha-2 code as the country's English name ("DE" → "Germany"); the code when unknown. */
export function countryName(code: string): string {
  return (regionNames ??= new Intl.DisplayNames(['en'], { type: 'region', fallback: 'code' })).of(code) ?? code;
}

/**
 * The "Bill to" block of a PDF: the buyer's legal name, address, country and tax id when the
 * document holds a billing profile, else the tenant's name; then the customer id.
 */
export function buyerLines(tenant: { tenantId: string; name: string }, buyer: BuyerProfile | undefined): string[] {
  if (!buyer) return [tenant.name, `Customer ID ${tenant.tenantId}`];
  return [buyer.legalName, ...buyer.addressLines, countryName(buyer.country), ...(buyer.taxId ? [`Tax ID: ${buyer.taxId}`] : []), `Customer ID ${tenant.tenantId}`];
}

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

/** A line's GPU-hours with six decimals (null for lines without a quantity). */
export function lineQuantity(line: InvoiceLine): string | null {
  return line.quantityGpuMs === null ? null : quantityFixed(line.quantityGpuMs);
}
