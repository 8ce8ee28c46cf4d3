import type { Selectable } from 'kysely';
import { canonicalJson, type StoredEvent } from '@fastgpu/contracts';
import type { BillingAuditTable } from '@fastgpu/db';
import type { ProjectionTransaction } from '@fastgpu/messaging';
import type { TableName } from './billing-tables';

/**
 * The audit trail of the billing ledger (`billing_audit`): for every billing event it reads, what
 * became of it for each invoice it touched. Folded from the log in the same transaction as the
 * effect itself, so it is exact (a crash repeats or skips nothing) and a rebuild gives the same rows.
 *
 * - `applied`: the event put something on the invoice (usage, an accrual, a credit, a finalization,
 *   a finance or lifecycle action), or — without an invoice — was taken as is.
 * - `duplicate`: an id seen before with the same payload (the bus's dedupe window had passed):
 *   nothing counted twice.
 * - `conflict`: an id seen before with another payload: the first stands, this one is not applied.
 * - `review`: sent to the review queue, with the reason.
 * - `late`: usage that arrived after its period's invoice was finalized: an adjustment on a later
 *   invoice, or (invoice empty) the review queue.
 */
export const AuditOutcome = { applied: 'applied', duplicate: 'duplicate', conflict: 'conflict', review: 'review', late: 'late' } as const;
export type AuditOutcome = (typeof AuditOutcome)[keyof typeof AuditOutcome];

export interface AuditEntry {
  outcome: AuditOutcome;
  invoiceId: string | null;
  tenantId: string | null;
  detail: string | null;
}

/** The events the audit trail records (allocation events only feed accrual and are not billing facts). */
export const AUDITED_TYPES: ReadonlySet<string> = new Set([
  'TenantCreated',
  'PriceBookPublished',
  'UsageRecorded',
  'LateUsageRecorded',
  'SlaCreditIssued',
  'InvoiceFinalized',
  'InvoicePaid',
  'InvoiceVoided',
  'CreditNoteIssued',
  'CreditGranted',
  'TaxRatesSet',
  'BillingPeriodClosed',
  'InvoiceDraftDeleted',
  'InvoiceReissued',
  'LateUsageBilled',
  'LateUsageDismissed',
  'TenantBillingProfileSet',
]);

/** A row of `billing_audit` (libs/db schema-billing.ts). */
export type AuditRow = Selectable<BillingAuditTable>;

/** Audit rows written per statement (7 parameters a row, far below PostgreSQL's 65,535). */
export const AUDIT_ROWS_PER_INSERT = 1000;

/** The audit rows of one event: one per (invoice, outcome), the first detail kept; `applied` when nothing was said. */
export function auditRowsOf(stored: StoredEvent, entries: readonly AuditEntry[]): AuditRow[] {
  const { event, sequence } = stored;
  if (!AUDITED_TYPES.has(event.type)) return [];
  const eventTenant = (event.data as { tenantId?: unknown }).tenantId;
  const tenantOfEvent = typeof eventTenant === 'string' ? eventTenant : null;
  const list: readonly AuditEntry[] = entries.length ? entries : [{ outcome: 'applied', invoiceId: null, tenantId: tenantOfEvent, detail: null }];
  const rows = new Map<string, AuditRow>();
  for (const entry of list) {
    const key = `${entry.invoiceId ?? ''}\u0000${entry.outcome}`;
    if (!rows.has(key)) rows.set(key, { sequence, invoice_id: entry.invoiceId ?? '', outcome: entry.outcome, event_id: event.id, type: event.type, tenant_id: entry.tenantId ?? tenantOfEvent, detail: entry.detail });
  }
  return [...rows.values()];
}

/**
 * Writes audit rows (of one event or of a whole batch: the ledger never reads its own audit trail,
 * so a batch's rows are written once, at its end, in the transaction that applies it).
 */
export async function writeAuditRows(trx: ProjectionTransaction, t: TableName, rows: readonly AuditRow[]): Promise<void> {
  for (let start = 0; start < rows.length; start += AUDIT_ROWS_PER_INSERT) {
    await trx
      .insertInto(t('billing_audit'))
      .values(rows.slice(start, start + AUDIT_ROWS_PER_INSERT))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

/**
 * Whether two JSON values are equal whatever their key order (jsonb reorders keys): their
 * canonical JSON (libs/contracts) is the same. The payloads compared are event data, which holds
 * safe integers only (amounts are decimal strings).
 */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}
