import type PDFDocumentClass from 'pdfkit';
import type { DocumentPresentation } from './document-format';

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
