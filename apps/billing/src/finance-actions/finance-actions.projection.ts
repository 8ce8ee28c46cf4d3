import type { StoredEvent } from '@fastgpu/contracts';
import type { ProjectionTransaction } from '@fastgpu/messaging';
import { BillingRejection, creditedTotal, decideCreditNote, decidePay, decideVoid, type InvoiceFacts } from '../invoices/invoice.decider';
import type { BillingStore } from '../ledger/billing.store';
import type { InvoiceRow, TableName } from '../ledger/billing-tables';
import { sameJson } from '../ledger/billing-audit';
import { actionsForInvoice, lastCreditNoteSequence, parseCreditNoteNumber, type FinanceActionKind, type FinanceActionRow } from './finance-actions';

/**
 * The fold of finance-action events into `billing_finance_actions`. The billing service only
 * publishes an action after deciding it against the invoice's state, guarded by the invoice
 * subject's expected last sequence; the fold checks the same rules again, against the state the
 * log gives at that event, so every rebuild keeps exactly the same actions. An action the log's
 * state forbids (a second settlement, a credit beyond the invoice, a credit-note number out of
 * order, an action on an unknown or draft invoice) is not recorded: it goes to the review queue
 * with its reason, and the first action stands, as for a second InvoiceFinalized. A void returns
 * the prepaid credit the invoice used (`billing_grant_usage.released_sequence`).
 */
type FinanceStored = StoredEvent<FinanceActionKind>;

/** Pure: why the log's state at this event forbids it, or null when it applies. */
export function judgeFinanceAction(
  event: { type: FinanceActionKind; data: Record<string, unknown> },
  invoice: InvoiceRow | undefined,
  actions: readonly Pick<FinanceActionRow, 'kind' | 'payload'>[],
  lastCreditNote: number,
): string | null {
  // Tenant settings: nothing in the log's state forbids them.
  if (event.type === 'CreditGranted' || event.type === 'TaxRatesSet' || event.type === 'TenantBillingProfileSet') return null;
  if (!invoice) return `invoice ${String(event.data.invoiceId)} is unknown`;
  if (invoice.tenant_id !== event.data.tenantId) return `invoice ${invoice.invoice_id} belongs to tenant ${invoice.tenant_id}, not ${String(event.data.tenantId)}`;
  const facts: InvoiceFacts = {
    status: invoice.status,
    settlement: actions.some((a) => a.kind === 'InvoiceVoided') ? 'void' : actions.some((a) => a.kind === 'InvoicePaid') ? 'paid' : null,
    validationErrors: 0,
    total: invoice.total ?? '0',
    credited: creditedTotal(actions.filter((a) => a.kind === 'CreditNoteIssued').map((a) => String(a.payload.amount))),
    lineCount: 0,
  };
  try {
    if (event.type === 'InvoicePaid') decidePay(facts);
    else if (event.type === 'InvoiceVoided') {
      decideVoid(facts);
      if (event.data.number !== invoice.number) return `void names number ${String(event.data.number)}, the invoice is ${invoice.number}`;
    } else {
      decideCreditNote(facts, String(event.data.amount));
      const number = parseCreditNoteNumber(String(event.data.number));
      if (!number || number.issuer !== invoice.issuer) return `credit note number ${String(event.data.number)} is not CN-${invoice.issuer}-<sequence>`;
      if (number.sequence !== lastCreditNote + 1) return `credit note number ${String(event.data.number)} is not the next of issuer ${number.issuer} (last ${lastCreditNote}); numbers must be gapless`;
    }
  } catch (error) {
    if (error instanceof BillingRejection) return error.message;
    throw error;
  }
  return null;
}

function rowOf({ event, sequence }: FinanceStored): FinanceActionRow {
  const base = { event_id: event.id, sequence, kind: event.type, actor: event.data.actor, reason: event.data.reason, payload: event.data as unknown as Record<string, unknown> };
  switch (event.type) {
    case 'InvoicePaid': {
      const d = event.data;
      return { ...base, action_id: event.id, tenant_id: d.tenantId, invoice_id: d.invoiceId, at_ms: Date.parse(d.paidAt), issuer: null, number_sequence: null };
    }
    case 'InvoiceVoided': {
      const d = event.data;
      return { ...base, action_id: event.id, tenant_id: d.tenantId, invoice_id: d.invoiceId, at_ms: Date.parse(d.voidedAt), issuer: null, number_sequence: null };
    }
    case 'CreditNoteIssued': {
      const d = event.data;
      const number = parseCreditNoteNumber(d.number);
      return { ...base, action_id: d.creditNoteId, tenant_id: d.tenantId, invoice_id: d.invoiceId, at_ms: Date.parse(d.issuedAt), issuer: number?.issuer ?? null, number_sequence: number?.sequence ?? null };
    }
    case 'CreditGranted': {
      const d = event.data;
      return { ...base, action_id: d.grantId, tenant_id: d.tenantId, invoice_id: null, at_ms: Date.parse(d.grantedAt), issuer: null, number_sequence: null };
    }
    case 'TaxRatesSet': {
      const d = event.data;
      return { ...base, action_id: event.id, tenant_id: d.tenantId, invoice_id: null, at_ms: Date.parse(d.effectiveAt), issuer: null, number_sequence: null };
    }
    case 'TenantBillingProfileSet': {
      const d = event.data;
      return { ...base, action_id: event.id, tenant_id: d.tenantId, invoice_id: null, at_ms: Date.parse(d.setAt), issuer: null, number_sequence: null };
    }
    default: {
      const unreachable: never = event;
      throw new Error(`not a finance action: ${String((unreachable as { type: unknown }).type)}`);
    }
  }
}

/** What became of a finance-action event, for the audit trail. */
export interface FinanceActionOutcome {
  outcome: 'applied' | 'duplicate' | 'conflict' | 'review';
  detail: string | null;
}

/**
 * Applies one finance-action event: recorded once (by event id and action id), or sent to review.
 * An id seen before is a duplicate when its payload is the same, a conflict (not applied) otherwise.
 */
export async function applyFinanceAction(trx: ProjectionTransaction, t: TableName, store: BillingStore, stored: FinanceStored): Promise<FinanceActionOutcome> {
  const row = rowOf(stored);
  const seen = await trx
    .selectFrom(t('billing_finance_actions'))
    .select(['event_id', 'sequence', 'payload'])
    .where((eb) => eb.or([eb('event_id', '=', row.event_id), eb('action_id', '=', row.action_id)]))
    .executeTakeFirst();
  if (seen) {
    const same = seen.event_id === row.event_id || sameJson(typeof seen.payload === 'string' ? JSON.parse(seen.payload) : seen.payload, row.payload);
    const what = `${row.kind} ${row.action_id} (first: event ${seen.event_id}, sequence ${seen.sequence})`;
    return same ? { outcome: 'duplicate', detail: `${what} seen before` } : { outcome: 'conflict', detail: `${what} seen before with another payload; the first stands` };
  }
  const invoice = row.invoice_id ? await store.invoice(row.invoice_id) : undefined;
  const actions = row.invoice_id ? await actionsForInvoice(store, row.invoice_id) : [];
  const issuer = row.kind === 'CreditNoteIssued' ? (row.issuer ?? invoice?.issuer ?? null) : null;
  const lastCreditNote = issuer ? await lastCreditNoteSequence(store, issuer) : 0;
  const refusal = judgeFinanceAction(stored.event, invoice, actions, lastCreditNote);
  if (refusal) {
    await trx
      .insertInto(t('billing_review_queue'))
      .values({
        event_id: row.event_id,
        piece: 0,
        kind: 'finance-action',
        tenant_id: row.tenant_id,
        reference_id: row.invoice_id ?? row.action_id,
        service_period: invoice?.period ?? '',
        reason: `${row.kind} not applied: ${refusal}`,
        sequence: row.sequence,
      })
      .onConflict((oc) => oc.columns(['event_id', 'piece']).doNothing())
      .execute();
    return { outcome: 'review', detail: refusal };
  }
  await trx
    .insertInto(t('billing_finance_actions'))
    .values({ ...row, payload: JSON.stringify(row.payload) })
    .execute();
  // A void returns the prepaid credit the invoice used, from this event on.
  if (row.kind === 'InvoiceVoided') {
    await trx.updateTable(t('billing_grant_usage')).set({ released_sequence: row.sequence }).where('invoice_id', '=', row.invoice_id).where('released_sequence', 'is', null).execute();
  }
  return { outcome: 'applied', detail: null };
}
