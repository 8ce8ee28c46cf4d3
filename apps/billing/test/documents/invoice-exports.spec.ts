/**
 * Proves, on a real nats-server and Postgres, that an invoice's exports are what a finance team
 * and a customer need: every line carries its tax (each rate allocated to the lines by largest
 * remainder, summing exactly to the invoice's tax of that rate) in JSON, CSV and PDF; the CSV has
 * fixed decimals per column (quantity 6, amounts the currency's minor digits); a usage line that
 * rounds to zero at a non-zero price is left out while a price of zero on purpose stays; and the
 * PDF — read back with poppler-utils, every page rendered to PNG and every word's box compared —
 * prints nothing over anything else, shows dates in the tenant's zone with an inclusive last day,
 * tax percentages, amounts grouped in the currency's locale, the seller and buyer details and the
 * payment terms, over several pages when the lines need them.
 *
 * Needs poppler-utils (pdftoppm, pdftotext): apt-get install -y poppler-utils.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import PDFDocument from 'pdfkit';
import { money, sumMoney } from '@fastgpu/money';
import { invoiceIdFor } from '../../src/ledger/invoice-ids';
import type { InvoiceDocument } from '../../src/invoices/invoice-document';
import { ACME, DocumentsHarness, FINANCE, layoutProblems, readPdf, requirePoppler, SELLER } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

let h: DocumentsHarness;

/** The UTC month `back` months before now, as a period, and an instant on its `day` at `hour` UTC. */
function monthBack(back: number): { period: string; at(day: number, hour?: number): string } {
  const now = new Date();
  const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1));
  const period = `${first.getUTCFullYear()}-${String(first.getUTCMonth() + 1).padStart(2, '0')}`;
  return { period, at: (day, hour = 12) => new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), day, hour)).toISOString() };
}
const plus = (instant: string, ms: number) => new Date(Date.parse(instant) + ms).toISOString();

/** Dates as a reader in the zone would write them, by Intl (an implementation independent of the renderer's). */
function intlDate(instantMs: number, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone, day: 'numeric', month: 'long', year: 'numeric' }).format(new Date(instantMs));
}

const past = monthBack(2);
const acmeInvoice = invoiceIdFor('acme', past.period);
const initechInvoice = invoiceIdFor('initech', past.period);
const globexInvoice = invoiceIdFor('globex', past.period);
const MODELS = 60;

beforeAll(async () => {
  await requirePoppler();
  h = await DocumentsHarness.start();
  await h.tenant('acme', 'Acme Corporation', 'America/New_York', 'USD');
  await h.tenant('initech', 'Initech GmbH', 'Europe/Berlin', 'EUR');
  await h.tenant('globex', 'Globex KK', 'Asia/Tokyo', 'JPY');
  const price = (gpuModel: string, pricePerGpuHour: string) => ({ gpuModel, capacityType: 'on-demand', pricePerGpuHour });
  await h.priceBook({ priceBookId: 'standard', currency: 'USD', effectiveFrom: '2020-01-01T00:00:00.000Z', prices: [price('a100', '2.00'), price('h100', '3.333'), price('l4', '0.01'), price('t4', '0')] });
  await h.priceBook({ priceBookId: 'europe', currency: 'EUR', effectiveFrom: '2020-01-01T00:00:00.000Z', prices: [price('a100', '1.75')] });
  await h.priceBook({ priceBookId: 'japan', currency: 'JPY', effectiveFrom: '2020-01-01T00:00:00.000Z', prices: Array.from({ length: MODELS }, (_, i) => price(`m${i}`, String(100 + i * 7))) });
  await h.taxRates('acme', [
    { name: 'VAT', rate: '0.2' },
    { name: 'City tax', rate: '0.0125' },
  ]);
  await h.taxRates('initech', [{ name: 'MwSt', rate: '0.19' }]);
  await h.taxRates('globex', [{ name: 'JCT', rate: '0.1' }]);

  // Acme: 600 GPU-hours of a100 (1,200.00), three h100 allocations, 61 s of l4 at 0.01/GPU-hour
  // (0.00017, rounds to 0.00: left out) and two hours of t4 at a price of zero on purpose (kept).
  await h.usage('acme', 'a1', past.at(2), plus(past.at(2), 75 * HOUR_MS), { gpus: 8 });
  for (const [i, hours] of [1.25, 3.5, 0.75].entries()) await h.usage('acme', `h${i}`, past.at(3 + i), plus(past.at(3 + i), hours * HOUR_MS), { gpuModel: 'h100' });
  await h.usage('acme', 'l1', past.at(9), plus(past.at(9), 61_000), { gpuModel: 'l4' });
  await h.usage('acme', 't1', past.at(10), plus(past.at(10), 2 * HOUR_MS), { gpuModel: 't4' });
  // Initech: 705.6 GPU-hours at 1.75 EUR = 1,234.80 EUR, in three allocations inside the month.
  for (const day of [2, 12, 20]) await h.usage('initech', `e${day}`, past.at(day), plus(past.at(day), 235.2 * HOUR_MS));
  // Globex: one allocation per GPU model, so its invoice runs over several pages.
  for (let i = 0; i < MODELS; i++) await h.usage('globex', `g${i}`, past.at(1 + (i % 25)), plus(past.at(1 + (i % 25)), (1 + i) * HOUR_MS), { gpuModel: `m${i}` });
  await h.settle();
});

afterAll(async () => {
  await h?.close();
});

describe('invoice exports', () => {
  let acme: InvoiceDocument;

  it('allocates each tax rate to the lines so the line taxes sum to the invoice tax, in the JSON document', async () => {
    acme = await h.finalize(acmeInvoice);
    expect(acme.schema).toBe('fastgpu.invoice/2');
    expect(acme.lines.map((l) => [l.gpuModel, l.amount])).toEqual([
      ['a100', '1200.00'],
      ['h100', '18.33'], // 5.5 h × 3.333 = 18.3315
      ['t4', '0.00'], // free on purpose: shown
    ]);
    expect(acme.taxes.map((t) => [t.name, t.amount])).toEqual([
      ['VAT', '243.67'], // 1218.33 × 0.2 = 243.666
      ['City tax', '15.23'], // 1218.33 × 0.0125 = 15.229125
    ]);
    for (const [r, tax] of acme.taxes.entries()) {
      expect(sumMoney(acme.lines.map((l) => money(l.taxes![r]!.amount))).eq(tax.amount), tax.name).toBe(true);
    }
    // Largest remainder: VAT parts 240.0000 and 3.6660 → 240.00 and 3.67 (the leftover cent goes to the larger remainder).
    expect(acme.lines.map((l) => l.taxes!.map((t) => t.amount))).toEqual([
      ['240.00', '15.00'],
      ['3.67', '0.23'],
      ['0.00', '0.00'],
    ]);
    expect(acme.lines.map((l) => l.tax)).toEqual(['255.00', '3.90', '0.00']);
    expect(acme.lines.every((l) => /^\d+\.\d{6}$/.test(l.quantityGpuHours!))).toBe(true);
    expect(acme.lines[0]!.quantityGpuHours).toBe('600.000000');
    // The document the API serves is the one the ledger froze.
    expect(await h.document(acmeInvoice, ACME)).toEqual(acme);
  });

  it('writes the CSV with fixed decimals per column and a tax per line that adds up', async () => {
    const csv = await h.call('GET', `/v1/invoices/${acmeInvoice}`, FINANCE, undefined, { accept: 'text/csv' });
    expect(csv.status).toBe(200);
    const [header, ...rows] = csv.text.trimEnd().split('\r\n').map((r) => r.split(','));
    const col = (name: string) => header!.indexOf(name);
    const lines = rows.filter((r) => r[col('row')] !== '');
    expect(lines).toHaveLength(3);
    expect(lines.map((r) => r[col('quantity_gpu_hours')])).toEqual(['600.000000', '5.500000', '2.000000']);
    expect(lines.map((r) => r[col('unit_price')])).toEqual(['2.00', '3.333', '0.00']);
    for (const r of lines) {
      for (const name of ['amount', 'tax', 'amount_with_tax']) expect(r[col(name)], name).toMatch(/^-?\d+\.\d{2}$/);
      expect(money(r[col('amount')]!).plus(r[col('tax')]!).eq(r[col('amount_with_tax')]!)).toBe(true);
    }
    const taxRows = rows.filter((r) => r[col('kind')] === 'tax');
    expect(taxRows.map((r) => r[col('description')])).toEqual(['VAT 20 % on 1218.33', 'City tax 1.25 % on 1218.33']);
    expect(sumMoney(lines.map((r) => money(r[col('tax')]!))).eq(sumMoney(taxRows.map((r) => money(r[col('amount')]!))))).toBe(true);
    expect(lines.some((r) => r[col('gpu_model')] === 'l4')).toBe(false);
  });

  it('prints a PDF a customer accepts: human dates in the tenant zone, percentages, grouped amounts, seller, buyer, terms, nothing overprinted', async () => {
    const pdf = await h.call('GET', `/v1/invoices/${acmeInvoice}`, ACME, undefined, { accept: 'application/pdf' });
    expect(pdf.status).toBe(200);
    const read = await readPdf(pdf.buffer);
    expect(read.pngs).toHaveLength(read.pages.length);
    expect(layoutProblems(read)).toEqual([]);
    const text = read.text.join('\n').replace(/\s+/g, ' ');
    const zone = 'America/New_York';
    const issuedMs = Date.parse(acme.finalizedAt!);
    const [year, month] = past.period.split('-').map(Number) as [number, number];
    const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
    const monthName = new Intl.DateTimeFormat('en-GB', { month: 'long', timeZone: 'UTC' }).format(new Date(Date.UTC(year, month - 1, 15)));
    for (const wanted of [
      SELLER.name,
      '12 rue de la Paix',
      '75002 Paris',
      `Tax ID: ${SELLER.taxId}`,
      'Acme Corporation',
      'Customer ID acme',
      `Invoice number ${acme.number}`,
      `Issue date ${intlDate(issuedMs, zone)}`,
      `Due date ${intlDate(issuedMs + 14 * 86_400_000, zone)}`,
      `Service period 1–${lastDay} ${monthName} ${year}`,
      'VAT 20 % on 1,218.33',
      'City tax 1.25 % on 1,218.33',
      '1,200.00',
      '1,477.23', // total 1218.33 + 243.67 + 15.23
      'Amount due (USD) 1,477.23',
      'Payment terms: net 14 days',
    ]) {
      expect(text, wanted).toContain(wanted);
    }
    expect(text).not.toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:/); // no raw ISO instants
    expect(text).not.toContain('0.2 of'); // rates as percentages, not fractions
  });

  it('groups amounts in the currency locale (EUR: 1.234,80)', async () => {
    const doc = await h.finalize(initechInvoice);
    expect(doc.subtotal).toBe('1234.80');
    const pdf = await h.call('GET', `/v1/invoices/${initechInvoice}`, FINANCE, undefined, { accept: 'application/pdf' });
    const read = await readPdf(pdf.buffer);
    expect(layoutProblems(read)).toEqual([]);
    const text = read.text.join('\n').replace(/\s+/g, ' ');
    expect(text).toContain('1.234,80');
    expect(text).toContain('MwSt 19 % on 1.234,80');
    expect(text).toContain('Amount due (EUR) 1.469,41'); // 1234.80 + 234.612 → 234.61
  });

  it('runs a long invoice over several pages, repeating the table header, with nothing overprinted on any page', async () => {
    const doc = await h.finalize(globexInvoice);
    expect(doc.lines).toHaveLength(MODELS);
    const pdf = await h.call('GET', `/v1/invoices/${globexInvoice}`, FINANCE, undefined, { accept: 'application/pdf' });
    const read = await readPdf(pdf.buffer);
    expect(read.pages.length).toBeGreaterThan(1);
    expect(read.pngs).toHaveLength(read.pages.length);
    expect(layoutProblems(read)).toEqual([]);
    for (const [i, page] of read.text.entries()) {
      expect(page).toContain(`Page ${i + 1} of ${read.pages.length}`);
      expect(page).toMatch(/GPU-hours\s+Unit price\s+Net\s+Tax\s+Total/);
    }
    // JPY has no minor digits: amounts grouped without decimals.
    const total = read.text.join('\n').replace(/\s+/g, ' ');
    expect(total).toContain(`Amount due (JPY) ${Number(doc.amountDue).toLocaleString('en-US')}`);
  });

  it('finds overprinted text when there is some (the check itself can fail)', async () => {
    const pdf = new PDFDocument({ size: 'A4', margin: 50 });
    const chunks: Buffer[] = [];
    const done = new Promise<Buffer>((resolve) => pdf.on('end', () => resolve(Buffer.concat(chunks))));
    pdf.on('data', (c: Buffer) => chunks.push(c));
    pdf.fontSize(10).text('Prepaid credit 0193f0c2-7a1b-7c3d-8e4f-123456789abc', 300, 100, { width: 120 });
    pdf.text('Amount due', 300, 110, { width: 120 });
    pdf.end();
    const problems = layoutProblems(await readPdf(await done));
    expect(problems.length).toBeGreaterThan(0);
  });
});
