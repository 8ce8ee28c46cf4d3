import { deriveId, nameId, type StoredEvent } from '@fastgpu/contracts';
import { decideDeleteDraft, decideReissue, BillingRejection, type InvoiceFacts } from '../invoices/invoice.decider';
import { actionsForInvoice } from '../finance-actions/finance-actions';
import type { InvoiceRow, PieceRow } from './billing-tables';
import type { LedgerContext } from './ledger-context';

/**
 * The ledger's side of draft deletion and void-with-reissue (docs/billing.md, "Deleting a draft,
 * reissuing a void invoice"). Each event is judged again against the log's state at that event
 * (only a draft is deleted; only a void, finalized invoice not replaced yet is reissued); one the
 * state forbids is not applied and goes to the review queue, the same in every rebuild. Applied
 * ones are recorded with the finance actions of the invoice (actor, reason, payload), which the
 * status route lists and the Idempotency-Key rule compares a retry with.
 */
export const LIFECYCLE_ACTION_TYPES = ['InvoiceDraftDeleted', 'InvoiceReissued'] as const;
export type LifecycleActionKind = (typeof LIFECYCLE_ACTION_TYPES)[number];

/** The id of the draft that succeeds `invoiceId` for its tenant and period (after a deletion or a reissue). */
export function successorInvoiceId(tenantId: string, period: string, invoiceId: string): string {
  return nameId('invoice', tenantId, period, 'replaces', invoiceId);
}

function facts(row: InvoiceRow, settlement: InvoiceFacts['settlement']): InvoiceFacts {
  return { status: row.status, settlement, validationErrors: 0, total: row.total ?? '0', credited: '0', lineCount: 0 };
}

async function refuse(ledger: LedgerContext, stored: StoredEvent<LifecycleActionKind>, why: string): Promise<void> {
  const d = stored.event.data;
  await ledger.review(stored.event.id, 0, 'finance-action', d.tenantId, d.invoiceId, d.period, `${stored.event.type} not applied: ${why}`, stored.sequence);
}

async function record(ledger: LedgerContext, { event, sequence }: StoredEvent<LifecycleActionKind>, atMs: number): Promise<void> {
  const d = event.data;
  await ledger.trx
    .insertInto(ledger.t('billing_finance_actions'))
    .values({ event_id: event.id, action_id: event.id, sequence, kind: event.type, tenant_id: d.tenantId, invoice_id: d.invoiceId, actor: d.actor, reason: d.reason, at_ms: atMs, issuer: null, number_sequence: null, payload: JSON.stringify(d) })
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/**
 * A draft deleted: it leaves the invoices (no number was used) for `billing_deleted_invoices`,
 * naming its successor. `move`: its pieces and SLA credits go onto the successor draft, created
 * now. `discard`: its pieces are on no invoice any more (kept for the record, never billed); its
 * SLA credits are not usage and still go onto the successor.
 */
export async function applyDraftDeleted(ledger: LedgerContext, stored: StoredEvent<'InvoiceDraftDeleted'>): Promise<void> {
  const { event, sequence } = stored;
  const d = event.data;
  const row = await ledger.store.invoice(d.invoiceId);
  if (!row) return refuse(ledger, stored, `invoice ${d.invoiceId} is unknown (or already deleted)`);
  if (row.tenant_id !== d.tenantId || row.period !== d.period) return refuse(ledger, stored, `invoice ${d.invoiceId} is ${row.tenant_id}'s for ${row.period}`);
  try {
    decideDeleteDraft(facts(row, null));
  } catch (error) {
    if (error instanceof BillingRejection) return refuse(ledger, stored, error.message);
    throw error;
  }
  const successor = d.replacementInvoiceId ?? successorInvoiceId(d.tenantId, d.period, d.invoiceId);
  ledger.invoicesChanged();
  // The draft's rated parts move or go with it.
  await ledger.flushParts();
  await ledger.trx.deleteFrom(ledger.t('billing_invoices')).where('invoice_id', '=', d.invoiceId).execute();
  await ledger.trx
    .insertInto(ledger.t('billing_deleted_invoices'))
    .values({ invoice_id: d.invoiceId, tenant_id: d.tenantId, period: d.period, usage: d.usage, successor_invoice_id: successor, event_id: event.id, sequence, actor: d.actor, reason: d.reason, deleted_at: d.deletedAt })
    .execute();
  const credits = await ledger.trx.selectFrom(ledger.t('billing_sla_credits')).select('event_id').where('invoice_id', '=', d.invoiceId).execute();
  if (d.usage === 'move' || credits.length > 0) {
    await ledger.trx.insertInto(ledger.t('billing_invoices')).values({ invoice_id: successor, tenant_id: d.tenantId, period: d.period, status: 'draft', replaces_invoice_id: d.invoiceId }).execute();
    await ledger.trx.updateTable(ledger.t('billing_sla_credits')).set({ invoice_id: successor, assigned_sequence: sequence }).where('invoice_id', '=', d.invoiceId).execute();
  }
  if (d.usage === 'move') {
    await ledger.trx.updateTable(ledger.t('billing_usage_pieces')).set({ invoice_id: successor, assigned_sequence: sequence }).where('invoice_id', '=', d.invoiceId).execute();
    await ledger.trx.updateTable(ledger.t('billing_rated_parts')).set({ invoice_id: successor }).where('invoice_id', '=', d.invoiceId).execute();
  } else {
    await ledger.trx.deleteFrom(ledger.t('billing_rated_parts')).where('invoice_id', '=', d.invoiceId).execute();
    await ledger.trx.updateTable(ledger.t('billing_usage_pieces')).set({ invoice_id: null, assigned_sequence: sequence }).where('invoice_id', '=', d.invoiceId).execute();
  }
  ledger.audit('applied', d.invoiceId, d.tenantId, `draft deleted, usage ${d.usage === 'move' ? `moved to ${successor}` : 'discarded'}`);
  if (d.usage === 'move' || credits.length > 0) ledger.audit('applied', successor, d.tenantId, `successor of deleted draft ${d.invoiceId}`);
  await record(ledger, stored, Date.parse(d.deletedAt));
}

/**
 * A void invoice reissued: a replacement draft of the same period takes copies of exactly what the
 * void invoice billed (its pieces and SLA credits up to its cutoff), rated again with the price
 * versions in force now, and takes the next number when finalized. The void invoice keeps its
 * number and document; from this event on it no longer counts as billed (its replacement does).
 */
export async function applyReissued(ledger: LedgerContext, stored: StoredEvent<'InvoiceReissued'>): Promise<void> {
  const { event, sequence } = stored;
  const d = event.data;
  const row = await ledger.store.invoice(d.invoiceId);
  if (!row) return refuse(ledger, stored, `invoice ${d.invoiceId} is unknown`);
  if (row.tenant_id !== d.tenantId || row.period !== d.period || row.number !== d.number) return refuse(ledger, stored, `invoice ${d.invoiceId} is ${row.tenant_id}'s ${row.number ?? 'draft'} for ${row.period}`);
  const actions = await actionsForInvoice(ledger.store, d.invoiceId);
  const settlement = actions.some((a) => a.kind === 'InvoiceVoided') ? 'void' : actions.some((a) => a.kind === 'InvoicePaid') ? 'paid' : null;
  try {
    decideReissue({ ...facts(row, settlement), replacedBy: row.replaced_by_invoice_id ?? null });
    if (settlement !== 'void') return refuse(ledger, stored, 'the invoice is not void');
  } catch (error) {
    if (error instanceof BillingRejection) return refuse(ledger, stored, error.message);
    throw error;
  }
  const tenant = await ledger.store.tenant(d.tenantId);
  if (!tenant) throw new Error(`InvoiceReissued ${event.id}: tenant ${d.tenantId} is unknown to billing`);
  const replacement = d.replacementInvoiceId;
  ledger.invoicesChanged();
  await ledger.trx.updateTable(ledger.t('billing_invoices')).set({ replaced_by_invoice_id: replacement, replaced_sequence: sequence }).where('invoice_id', '=', d.invoiceId).execute();
  await ledger.trx.insertInto(ledger.t('billing_invoices')).values({ invoice_id: replacement, tenant_id: d.tenantId, period: d.period, status: 'draft', replaces_invoice_id: d.invoiceId }).execute();
  const copies: PieceRow[] = (await ledger.store.pieces(d.invoiceId, row.cutoff_sequence!)).map((p) => ({
    ...p,
    event_id: deriveId(event.id, `piece:${p.event_id}:${p.piece}`),
    invoice_id: replacement,
    assigned_sequence: sequence,
  }));
  for (const copy of copies) await ledger.trx.insertInto(ledger.t('billing_usage_pieces')).values(copy).execute();
  await ledger.writeParts(copies, tenant.currency);
  for (const credit of await ledger.store.slaCredits(d.invoiceId, row.cutoff_sequence!)) {
    await ledger.trx
      .insertInto(ledger.t('billing_sla_credits'))
      .values({ ...credit, event_id: deriveId(event.id, `credit:${credit.event_id}`), invoice_id: replacement, assigned_sequence: sequence })
      .execute();
  }
  ledger.audit('applied', d.invoiceId, d.tenantId, `reissued as ${replacement}`);
  ledger.audit('applied', replacement, d.tenantId, `replaces ${d.number} (${d.invoiceId})`);
  await record(ledger, stored, Date.parse(d.reissuedAt));
}
