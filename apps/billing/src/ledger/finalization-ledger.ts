import type { StoredEvent } from '@fastgpu/contracts';
import { canonicalJson, documentSha256 } from '../invoices/invoice-document';
import { buildFinalizedInvoice } from '../invoices/invoice-builder';
import { parseInvoiceNumber } from './invoice-ids';
import type { LedgerContext } from './ledger-context';
import { reviewedPiece } from './usage-ledger';

/**
 * `InvoiceFinalized` freezes an invoice: pieces put on it after the event's cutoff move on as late
 * usage, the document is rebuilt from exactly what the cutoff covers, and its SHA-256 must equal
 * the event's. A mismatch throws, and the runner stalls there rather than skip money. With
 * `issuerCheck`, the number must be the issuer's next (gapless).
 */
export async function applyInvoiceFinalized(ledger: LedgerContext, { event, sequence }: StoredEvent<'InvoiceFinalized'>, issuerCheck: boolean): Promise<void> {
  const d = event.data;
  const row = await ledger.store.invoice(d.invoiceId);
  if (!row) throw new Error(`InvoiceFinalized ${event.id}: invoice ${d.invoiceId} is unknown`);
  if (row.status !== 'draft') {
    // A second finalization of one invoice cannot be applied: the first one stands (same in every rebuild).
    ledger.repeated(row.finalized_event_id === event.id, row.invoice_id, row.tenant_id, `finalization of ${row.invoice_id} (first: ${row.number}, event ${row.finalized_event_id})`);
    return;
  }
  const { issuer, sequence: numberSequence } = parseInvoiceNumber(d.number);
  if (issuerCheck) {
    const last = await ledger.lastNumberOf(issuer);
    if (numberSequence !== last + 1) throw new Error(`InvoiceFinalized ${event.id}: number ${d.number} is not the next of issuer ${issuer} (last ${last}); numbers must be gapless`);
  }
  // What arrived after the cutoff is late for this invoice: it moves on as adjustments.
  const late = await ledger.trx.selectFrom(ledger.t('billing_usage_pieces')).selectAll().where('invoice_id', '=', row.invoice_id).where('assigned_sequence', '>', d.cutoffSequence).execute();
  const lateCredits = await ledger.trx.selectFrom(ledger.t('billing_sla_credits')).selectAll().where('invoice_id', '=', row.invoice_id).where('assigned_sequence', '>', d.cutoffSequence).execute();

  const finalizedAtMs = Date.parse(d.finalizedAt);
  const inputs = await ledger.store.inputs(row, { cutoff: d.cutoffSequence, atMs: finalizedAtMs, issuer, finalization: { number: d.number, finalizedAt: d.finalizedAt } });
  // In the document layout its hash was taken of (invoices finalized before layout 2 keep layout 1).
  const built = buildFinalizedInvoice(inputs, d.sha256);
  const sha256 = documentSha256(built.document);
  if (sha256 !== d.sha256) {
    throw new Error(`InvoiceFinalized ${event.id}: invoice ${d.invoiceId} rebuilt to SHA-256 ${sha256}, the event says ${d.sha256}`);
  }
  if (built.document.validationErrors.length) throw new Error(`InvoiceFinalized ${event.id}: invoice ${d.invoiceId} has validation errors`);
  await ledger.trx
    .updateTable(ledger.t('billing_invoices'))
    .set({
      status: 'finalized',
      issuer,
      number: d.number,
      number_sequence: numberSequence,
      cutoff_sequence: d.cutoffSequence,
      finalized_sequence: sequence,
      finalized_event_id: event.id,
      finalized_at: d.finalizedAt,
      price_book_version: d.priceBookVersion,
      sha256,
      document: canonicalJson(built.document),
      total: built.document.total,
      actor: d.actor,
      reason: d.reason,
    })
    .where('invoice_id', '=', row.invoice_id)
    .execute();
  ledger.invoicesChanged();
  if (issuerCheck) ledger.numberTaken(issuer, numberSequence);
  ledger.audit('applied', row.invoice_id, row.tenant_id, `finalized as ${d.number}`);
  for (const p of built.document.prepaidCredits) {
    await ledger.trx
      .insertInto(ledger.t('billing_grant_usage'))
      .values({ invoice_id: row.invoice_id, grant_id: p.grantId, tenant_id: row.tenant_id, amount: p.amount, finalized_sequence: sequence })
      .execute();
  }
  // Late pieces move with their rated parts.
  await ledger.flushParts();
  for (const piece of late) {
    const target = await ledger.target(row.tenant_id, piece.service_period, true);
    if ('review' in target) {
      await ledger.trx.deleteFrom(ledger.t('billing_usage_pieces')).where('event_id', '=', piece.event_id).where('piece', '=', piece.piece).execute();
      await ledger.trx.deleteFrom(ledger.t('billing_rated_parts')).where('event_id', '=', piece.event_id).where('piece', '=', piece.piece).execute();
      await ledger.review(piece.event_id, piece.piece, 'usage', row.tenant_id, piece.usage_id, piece.service_period, target.review, sequence, reviewedPiece(piece));
      continue;
    }
    await ledger.trx
      .updateTable(ledger.t('billing_usage_pieces'))
      .set({ invoice_id: target.invoiceId, assigned_sequence: sequence })
      .where('event_id', '=', piece.event_id)
      .where('piece', '=', piece.piece)
      .execute();
    await ledger.trx.updateTable(ledger.t('billing_rated_parts')).set({ invoice_id: target.invoiceId }).where('event_id', '=', piece.event_id).where('piece', '=', piece.piece).execute();
  }
  for (const credit of lateCredits) {
    const target = await ledger.target(row.tenant_id, credit.period);
    if ('review' in target) {
      await ledger.trx.deleteFrom(ledger.t('billing_sla_credits')).where('event_id', '=', credit.event_id).execute();
      await ledger.review(credit.event_id, 0, 'sla-credit', row.tenant_id, credit.credit_id, credit.period, target.review, sequence);
      continue;
    }
    await ledger.trx.updateTable(ledger.t('billing_sla_credits')).set({ invoice_id: target.invoiceId, assigned_sequence: sequence }).where('event_id', '=', credit.event_id).execute();
  }
}
