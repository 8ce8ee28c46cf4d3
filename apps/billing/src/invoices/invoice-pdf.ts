import { documentSha256, type InvoiceDocument, type InvoiceLine } from './invoice-document';
import { addAmounts, buyerLines, DEFAULT_PRESENTATION, groupedNumber, humanDate, humanDatePlusDays, humanPeriod, lineQuantity, lineTaxes, negate, percent, unitPriceFixed, type DocumentPresentation } from './document-format';
import { LINE_COLUMNS, renderPdf, type PdfCell, type PdfTotal } from './pdf-layout';

/**
 * An invoice as a PDF a customer would accept, laid out by pdf-layout.ts (nothing overprints):
 * seller and buyer, number, issue and due dates, the service period as days in the tenant's zone,
 * a line table with tax per line, totals with each tax as a percentage, grouped amounts.
 */
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
