import { sql } from 'kysely';
import type { EventData } from '@fastgpu/contracts';
import type { BillingStore } from '../ledger/billing.store';

/**
 * Finance actions are catalogue events (libs/contracts): `InvoicePaid`, `InvoiceVoided`,
 * `CreditNoteIssued` on the invoice's subject, `CreditGranted` and `TaxRatesSet` on the billing
 * tenant subject, each audited with its actor (API key id) and reason. The billing ledger folds
 * them into `billing_finance_actions` (see finance-actions.projection.ts), a projection table like
 * the others: a rebuild from the log re-creates it. This module reads it, always through the
 * store's table names, so the same reads work on live and rebuilt tables.
 */
export const FINANCE_ACTION_TYPES = ['InvoicePaid', 'InvoiceVoided', 'CreditNoteIssued', 'CreditGranted', 'TaxRatesSet'] as const;
export type FinanceActionKind = (typeof FINANCE_ACTION_TYPES)[number];
export type FinanceAction<K extends FinanceActionKind = FinanceActionKind> = EventData<K>;

export interface FinanceActionRow {
  event_id: string;
  action_id: string;
  sequence: number;
  kind: FinanceActionKind;
  tenant_id: string;
  invoice_id: string | null;
  actor: string;
  reason: string;
  at_ms: number;
  issuer: string | null;
  number_sequence: number | null;
  payload: Record<string, unknown>;
}

/** The actions recorded against one invoice, in log order. */
export async function actionsForInvoice(store: BillingStore, invoiceId: string): Promise<FinanceActionRow[]> {
  return (await store.db.selectFrom(store.table('billing_finance_actions')).selectAll().where('invoice_id', '=', invoiceId).orderBy('sequence').execute()) as FinanceActionRow[];
}

export async function financeAction(store: BillingStore, eventId: string): Promise<FinanceActionRow | undefined> {
  return (await store.db.selectFrom(store.table('billing_finance_actions')).selectAll().where('event_id', '=', eventId).executeTakeFirst()) as FinanceActionRow | undefined;
}

/** Last credit-note number taken by an issuer (credit notes are numbered gapless per issuer). */
export async function lastCreditNoteSequence(store: BillingStore, issuer: string): Promise<number> {
  const row = await store.db
    .selectFrom(store.table('billing_finance_actions'))
    .select(sql<number | null>`max(number_sequence)`.as('last'))
    .where('kind', '=', 'CreditNoteIssued')
    .where('issuer', '=', issuer)
    .executeTakeFirst();
  return Number(row?.last ?? 0);
}

/** `CN-<issuer>-<sequence>` → its parts. */
export function parseCreditNoteNumber(number: string): { issuer: string; sequence: number } | null {
  const m = /^CN-(.+)-(\d{6,})$/.exec(number);
  return m ? { issuer: m[1]!, sequence: Number(m[2]) } : null;
}
