import { sql, type Selectable } from 'kysely';
import type { BillingFinanceActionsTable } from '@fastgpu/db';
import { money } from '@fastgpu/money';
import type { EventData } from '@fastgpu/contracts';
import type { BillingStore } from '../ledger/billing.store';
import type { LifecycleActionKind } from '../ledger/invoice-lifecycle';

/**
 * Finance actions are catalogue events (libs/contracts): `InvoicePaid`, `InvoiceVoided`,
 * `CreditNoteIssued` on the invoice's subject, `CreditGranted`, `TaxRatesSet` and
 * `TenantBillingProfileSet` on the billing tenant subject, each audited with its actor (API key id)
 * and reason. The billing ledger folds
 * them into `billing_finance_actions` (see finance-actions.projection.ts), a projection table like
 * the others: a rebuild from the log re-creates it. This module reads it, always through the
 * store's table names, so the same reads work on live and rebuilt tables.
 */
export const FINANCE_ACTION_TYPES = ['InvoicePaid', 'InvoiceVoided', 'CreditNoteIssued', 'CreditGranted', 'TaxRatesSet', 'TenantBillingProfileSet'] as const;
export type FinanceActionKind = (typeof FINANCE_ACTION_TYPES)[number];
export type FinanceAction<K extends FinanceActionKind = FinanceActionKind> = EventData<K>;

/**
 * A row of `billing_finance_actions`: the schema's row (libs/db schema-billing.ts), its `kind` narrowed
 * to a finance action or a lifecycle action recorded with them (a draft deleted, an invoice reissued).
 */
export type FinanceActionRow = Omit<Selectable<BillingFinanceActionsTable>, 'kind'> & { kind: FinanceActionKind | LifecycleActionKind };

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

/**
 * The Idempotency-Key rule of every finance route: a key names one request. The same key with the
 * same request answers the original result; the same key with another request is refused (409),
 * never answered with the original as if it were the new one. `requested` lists the fields of the
 * action the request decides (amounts compared as decimals, instants as instants).
 */
export function requestDiffers(existing: Record<string, unknown>, requested: Record<string, unknown>): string | null {
  for (const [field, value] of Object.entries(requested)) {
    if (!sameValue(existing[field], value)) return field;
  }
  return null;
}

function sameValue(stored: unknown, requested: unknown): boolean {
  if ((stored === undefined || stored === null) && (requested === undefined || requested === null)) return true;
  if (typeof stored === 'string' && typeof requested === 'string') {
    if (DECIMAL.test(stored) && DECIMAL.test(requested)) return money(stored).eq(money(requested));
    if (INSTANT.test(stored) && INSTANT.test(requested)) return Date.parse(stored) === Date.parse(requested);
    return stored === requested;
  }
  if (Array.isArray(stored) && Array.isArray(requested)) return stored.length === requested.length && stored.every((s, i) => sameValue(s, requested[i]));
  if (stored && requested && typeof stored === 'object' && typeof requested === 'object') {
    const keys = new Set([...Object.keys(stored), ...Object.keys(requested)]);
    return [...keys].every((k) => sameValue((stored as Record<string, unknown>)[k], (requested as Record<string, unknown>)[k]));
  }
  return stored === requested;
}

const DECIMAL = /^\d+(\.\d+)?$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
