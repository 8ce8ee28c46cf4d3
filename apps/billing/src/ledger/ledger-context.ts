import type { Transaction } from 'kysely';
import type { BillingDatabase } from '@fastgpu/db';
import type { BillingStore } from './billing.store';
import type { PieceRow, TableName } from './billing-tables';
import type { AuditOutcome } from './billing-audit';

/** Where something of a service period goes: onto an invoice, or to the review queue with a reason. */
export type Target = { invoiceId: string } | { review: string };

/** What the ledger's event handlers share within one projection transaction (the LedgerWriter, ledger-writer.ts). */
export interface LedgerContext {
  /** The projection's transaction, over billing's typed tables (libs/db schema-billing.ts). */
  readonly trx: Transaction<BillingDatabase>;
  readonly t: TableName;
  readonly store: BillingStore;
  review(eventId: string, piece: number, kind: string, tenantId: string, referenceId: string, servicePeriod: string, reason: string, sequence: number, usage?: Pick<PieceRow, 'gpu_model' | 'capacity_type' | 'gpus' | 'start_ms' | 'end_ms' | 'allocation_start_ms' | 'allocation_end_ms' | 'interrupted'>): Promise<void>;
  /** Rates pieces and holds their parts for the batch (written by `flushParts` or at the batch's end). */
  writeParts(pieces: readonly PieceRow[], currency: string): Promise<void>;
  /** Writes the rated parts held so far: before any statement that reads or changes rated parts. */
  flushParts(): Promise<void>;
  /** Says an invoice row was inserted, updated or deleted (what the batch remembered of current invoices is stale). */
  invoicesChanged(): void;
  /**
   * The invoice that bills something of `servicePeriod` for a tenant (created as a draft when
   * absent; a later draft when the period is finalized), or the review queue when none is open
   * within LATE_PERIODS_MAX periods. `usage` notes late usage in the audit trail.
   */
  target(tenantId: string, servicePeriod: string, usage?: boolean): Promise<Target>;
  /** Records a repeated id: the same payload is a duplicate, another payload a conflict (the first stands). */
  repeated(same: boolean, invoiceId: string | null, tenantId: string | null, what: string): void;
  /** The issuer's last invoice number taken, as of the events applied so far. */
  lastNumberOf(issuer: string): Promise<number>;
  /** A finalization took the issuer's next number. */
  numberTaken(issuer: string, numberSequence: number): void;
  /** Notes what the event being applied did to an invoice (or, with null, to no invoice) for the audit trail. */
  audit(outcome: AuditOutcome, invoiceId: string | null, tenantId: string | null, detail?: string | null): void;
}
