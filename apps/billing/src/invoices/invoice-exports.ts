import PDFDocument from 'pdfkit';
import { canonicalJson, documentSha256, type InvoiceDocument } from './invoice-document';

/**
 * Exports of one invoice document (and of a whole period), all rendered from the same document:
 * canonical JSON, CSV with fixed-point decimal strings whose rows add up exactly (lines → subtotal,
 * subtotal + taxes → total, total + prepaid credits → amount due; credits carried forward to the
 * next invoice follow, outside the sums), and a PDF whose creation date
 * and metadata come from the invoice, so the same document always gives the same bytes.
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
] as const;

function csvField(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function negate(amount: string): string {
  if (/^0(\.0+)?$/.test(amount)) return amount;
  return amount.startsWith('-') ? amount.slice(1) : `-${amount}`;
}

/** The CSV rows of one invoice (without header). */
export function invoiceCsvRows(doc: InvoiceDocument): string[] {
  const head = [doc.invoiceId, doc.number, doc.tenant.tenantId, doc.period, doc.currency];
  const rows: Array<Array<string | number | null>> = [];
  for (const l of doc.lines) {
    rows.push([...head, l.line, l.kind, l.description, l.servicePeriod, l.gpuModel, l.capacityType, l.priceBookId, l.priceBookVersion, l.tier, l.quantityGpuHours, l.unitPrice, l.amount]);
  }
  const summary = (kind: string, description: string, amount: string) => rows.push([...head, null, kind, description, null, null, null, null, null, null, null, null, amount]);
  summary('subtotal', 'Subtotal (sum of lines)', doc.subtotal);
  for (const t of doc.taxes) summary('tax', `${t.name} ${t.rate} on ${t.taxableAmount}`, t.amount);
  summary('total', 'Total (subtotal + taxes)', doc.total);
  for (const p of doc.prepaidCredits) summary('prepaid-credit', `Prepaid credit ${p.grantId}`, negate(p.amount));
  summary('amount-due', 'Amount due (total − prepaid credits)', doc.amountDue);
  // Not part of the sums: what the tenant is still owed, carried to its next invoice.
  for (const c of doc.creditsCarriedForward ?? []) summary('credit-carried-forward', `SLA credit ${c.reference} for ${c.servicePeriod} (from ${c.originNumber ?? c.originInvoiceId}) carried forward to the next invoice`, c.amount);
  return rows.map((r) => r.map(csvField).join(','));
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

const PAGE_MARGIN = 50;
const COLUMNS = { line: 50, description: 75, quantity: 330, unitPrice: 410, amount: 480, right: 545 } as const;

/** A PDF a customer could receive. Deterministic: creation date and ids come from the invoice. */
export function invoicePdf(doc: InvoiceDocument): Promise<Buffer> {
  const stamp = new Date(doc.finalizedAt ?? doc.periodEnd);
  const title = doc.number ? `Invoice ${doc.number}` : `Draft invoice ${doc.period}`;
  const pdf = new PDFDocument({
    size: 'A4',
    margin: PAGE_MARGIN,
    compress: true,
    info: {
      Title: title,
      Author: doc.issuer,
      Subject: `${doc.tenant.name} ${doc.period}`,
      Keywords: `invoice ${doc.invoiceId} ${documentSha256(doc)}`,
      Creator: 'FastGPU billing',
      Producer: 'FastGPU billing',
      CreationDate: stamp,
      ModDate: stamp,
    },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pdf.on('data', (chunk: Buffer) => chunks.push(chunk));
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
  });

  const bottom = () => pdf.page.height - PAGE_MARGIN - 40;
  pdf.font('Helvetica-Bold').fontSize(20).text('FastGPU', PAGE_MARGIN, PAGE_MARGIN);
  pdf.font('Helvetica').fontSize(10).fillColor('#555555').text(`GPU compute services · issuer ${doc.issuer}`, PAGE_MARGIN, pdf.y);
  pdf.fillColor('#000000').font('Helvetica-Bold').fontSize(16).text(doc.status === 'draft' ? 'DRAFT INVOICE' : 'INVOICE', 350, PAGE_MARGIN, { width: 195, align: 'right' });
  pdf.font('Helvetica').fontSize(10);
  const meta: Array<[string, string]> = [
    ['Number', doc.number ?? '(not yet numbered)'],
    ['Period', `${doc.period} (${doc.tenant.billingTimeZone})`],
    ['Service from', doc.periodStart],
    ['Service to', doc.periodEnd],
    ['Issued', doc.finalizedAt ?? 'draft'],
    ['Currency', doc.currency],
  ];
  let y = PAGE_MARGIN + 24;
  for (const [label, value] of meta) {
    pdf.text(`${label}: ${value}`, 300, y, { width: 245, align: 'right' });
    y += 14;
  }
  pdf.font('Helvetica-Bold').text('Bill to', PAGE_MARGIN, PAGE_MARGIN + 60);
  pdf.font('Helvetica').text(doc.tenant.name, PAGE_MARGIN, pdf.y).text(`Tenant ${doc.tenant.tenantId}`, PAGE_MARGIN, pdf.y);

  y = Math.max(y, pdf.y) + 20;
  const header = () => {
    pdf.font('Helvetica-Bold').fontSize(9);
    pdf.text('#', COLUMNS.line, y).text('Description', COLUMNS.description, y).text('GPU-hours', COLUMNS.quantity, y, { width: 70, align: 'right' });
    pdf.text('Unit price', COLUMNS.unitPrice, y, { width: 65, align: 'right' }).text('Amount', COLUMNS.amount, y, { width: COLUMNS.right - COLUMNS.amount, align: 'right' });
    y += 14;
    pdf.moveTo(PAGE_MARGIN, y - 3).lineTo(COLUMNS.right, y - 3).strokeColor('#999999').stroke();
    pdf.font('Helvetica').fontSize(9);
  };
  header();
  for (const line of doc.lines) {
    const descriptionWidth = COLUMNS.quantity - COLUMNS.description - 10;
    const text = line.kind === 'adjustment' || line.servicePeriod === doc.period ? line.description : `${line.description} [service period ${line.servicePeriod}]`;
    const height = Math.max(pdf.heightOfString(text, { width: descriptionWidth }), 11) + 4;
    if (y + height > bottom()) {
      pdf.addPage();
      y = PAGE_MARGIN;
      header();
    }
    pdf.text(String(line.line), COLUMNS.line, y).text(text, COLUMNS.description, y, { width: descriptionWidth });
    pdf.text(line.quantityGpuHours ?? '', COLUMNS.quantity, y, { width: 70, align: 'right' }).text(line.unitPrice ?? '', COLUMNS.unitPrice, y, { width: 65, align: 'right' });
    pdf.text(line.amount, COLUMNS.amount, y, { width: COLUMNS.right - COLUMNS.amount, align: 'right' });
    y += height;
  }
  if (doc.lines.length === 0) {
    pdf.text('No billable usage in this period.', COLUMNS.description, y);
    y += 14;
  }

  const totals: Array<[string, string, boolean]> = [['Subtotal', doc.subtotal, false]];
  for (const t of doc.taxes) totals.push([`${t.name} (${t.rate} of ${t.taxableAmount})`, t.amount, false]);
  totals.push(['Total', doc.total, true]);
  for (const p of doc.prepaidCredits) totals.push([`Prepaid credit ${p.grantId}`, negate(p.amount), false]);
  totals.push([`Amount due (${doc.currency})`, doc.amountDue, true]);
  if (y + totals.length * 14 + 60 > bottom()) {
    pdf.addPage();
    y = PAGE_MARGIN;
  }
  y += 6;
  pdf.moveTo(300, y).lineTo(COLUMNS.right, y).strokeColor('#999999').stroke();
  y += 6;
  for (const [label, amount, bold] of totals) {
    pdf.font(bold ? 'Helvetica-Bold' : 'Helvetica').fontSize(10);
    pdf.text(label, 260, y, { width: 210, align: 'right' }).text(amount, COLUMNS.amount - 10, y, { width: COLUMNS.right - COLUMNS.amount + 10, align: 'right' });
    y += 14;
  }
  for (const c of doc.creditsCarriedForward ?? []) {
    pdf.font('Helvetica').fontSize(9).text(`SLA credit for ${c.servicePeriod} (${c.reference}) carried forward to your next invoice: ${c.amount} ${doc.currency}`, PAGE_MARGIN, y + 4, { width: COLUMNS.right - PAGE_MARGIN });
    y = pdf.y;
  }
  if (doc.validationErrors.length) {
    y += 10;
    pdf.font('Helvetica-Bold').fillColor('#aa0000').text(`Not billable yet: ${doc.validationErrors.length} usage record(s) without a price`, PAGE_MARGIN, y);
    pdf.fillColor('#000000');
  }
  pdf.font('Helvetica').fontSize(7).fillColor('#777777');
  pdf.text(`Document SHA-256 ${documentSha256(doc)} · event cutoff sequence ${doc.cutoffSequence} · ${doc.invoiceId}`, PAGE_MARGIN, pdf.page.height - PAGE_MARGIN - 20, {
    width: COLUMNS.right - PAGE_MARGIN,
    lineBreak: false,
  });
  pdf.end();
  return done;
}
