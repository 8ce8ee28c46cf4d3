import { z } from 'zod';
import { sql } from 'kysely';
import { FINANCE_ACTIONS_TABLE, type Db } from '../ledger/billing.store';

/**
 * LOCAL MODULE, pending catalogue events. Finance actions that the event catalogue does not have
 * yet (paid, void, credit notes, prepaid credit grants, tax rates) are kept here as an
 * append-only, audited log in Postgres (`billing_finance_actions`): each entry has its actor,
 * reason and time, and is never updated or deleted. These schemas are the proposed catalogue
 * entries; when the lead adds them to libs/contracts, the same payloads move onto the bus and
 * this table becomes a projection of them. Until then this log is a source of truth of its own
 * (not rebuilt from the stream); invoice finalization itself is the catalogue's InvoiceFinalized.
 */
const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/);
const instant = z.iso.datetime({ offset: false });
const decimal = z.string().regex(/^\d+(\.\d+)?$/);
const audit = { actor: id, reason: z.string().min(1).max(500) };

export const InvoicePaid = z.object({ invoiceId: id, tenantId: id, amount: decimal, currency: z.string().length(3), paymentReference: z.string().max(200).optional(), paidAt: instant, ...audit });
export const InvoiceVoided = z.object({ invoiceId: id, tenantId: id, number: z.string().max(64), voidedAt: instant, ...audit });
export const CreditNoteIssued = z.object({
  creditNoteId: id,
  invoiceId: id,
  tenantId: id,
  number: z.string().max(64),
  amount: decimal,
  currency: z.string().length(3),
  issuedAt: instant,
  ...audit,
});
export const CreditGranted = z.object({
  grantId: id,
  tenantId: id,
  amount: decimal,
  currency: z.string().length(3),
  /** Higher is used first. */
  priority: z.number().int().min(0).max(1000),
  expiresAt: instant.nullable(),
  grantedAt: instant,
  ...audit,
});
export const TaxRatesSet = z.object({
  tenantId: id,
  rates: z.array(z.object({ name: z.string().min(1).max(64), rate: z.string().regex(/^(0(\.\d+)?|1(\.0+)?)$/) })).max(8),
  effectiveAt: instant,
  ...audit,
});

export const financeActionSchemas = { InvoicePaid, InvoiceVoided, CreditNoteIssued, CreditGranted, TaxRatesSet } as const;
export type FinanceActionKind = keyof typeof financeActionSchemas;
export type FinanceAction<K extends FinanceActionKind = FinanceActionKind> = z.infer<(typeof financeActionSchemas)[K]>;

export interface FinanceActionRow {
  action_id: string;
  position: number;
  kind: FinanceActionKind;
  tenant_id: string;
  invoice_id: string | null;
  actor: string;
  reason: string;
  at_ms: number;
  number_sequence: number | null;
  payload: Record<string, unknown>;
}

/** Appends one validated action. The action id is the client's idempotency id: a retry records nothing new. */
export async function recordFinanceAction<K extends FinanceActionKind>(
  db: Db,
  kind: K,
  actionId: string,
  payload: FinanceAction<K>,
  options: { invoiceId?: string; atMs: number; numberSequence?: number },
): Promise<boolean> {
  const data = financeActionSchemas[kind].parse(payload);
  const result = await db
    .insertInto(FINANCE_ACTIONS_TABLE)
    .values({
      action_id: actionId,
      kind,
      tenant_id: data.tenantId,
      invoice_id: options.invoiceId ?? null,
      actor: data.actor,
      reason: data.reason,
      at_ms: options.atMs,
      number_sequence: options.numberSequence ?? null,
      payload: JSON.stringify(data),
    })
    .onConflict((oc) => oc.column('action_id').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function actionsForInvoice(db: Db, invoiceId: string): Promise<FinanceActionRow[]> {
  return (await db.selectFrom(FINANCE_ACTIONS_TABLE).selectAll().where('invoice_id', '=', invoiceId).orderBy('position').execute()) as FinanceActionRow[];
}

export async function lastCreditNoteSequence(db: Db): Promise<number> {
  const row = await db.selectFrom(FINANCE_ACTIONS_TABLE).select(sql<number | null>`max(number_sequence)`.as('last')).where('kind', '=', 'CreditNoteIssued').executeTakeFirst();
  return Number(row?.last ?? 0);
}

/** Serializes writers of gapless numbers (credit notes) inside one transaction. */
export async function lockCreditNoteNumbers(db: Db): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext('fastgpu.billing.credit-notes'))`.execute(db);
}
