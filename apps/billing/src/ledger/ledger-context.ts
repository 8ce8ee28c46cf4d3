import type { ProjectionTransaction } from '@fastgpu/messaging';
import type { BillingStore, BillingTable, PieceRow } from './billing.store';
import type { AuditOutcome } from './billing-audit';

/** What the ledger's event handlers share within one projection transaction (the LedgerWriter). */
export interface LedgerContext {
  readonly trx: ProjectionTransaction;
  readonly t: (name: BillingTable) => string;
  readonly store: BillingStore;
  review(eventId: string, piece: number, kind: string, tenantId: string, referenceId: string, servicePeriod: string, reason: string, sequence: number, usage?: Pick<PieceRow, 'gpu_model' | 'capacity_type' | 'gpus' | 'start_ms' | 'end_ms' | 'allocation_start_ms' | 'allocation_end_ms' | 'interrupted'>): Promise<void>;
  /** Rates pieces and holds their parts for the batch (written by `flushParts` or at the batch's end). */
  writeParts(pieces: readonly PieceRow[], currency: string): Promise<void>;
  /** Writes the rated parts held so far: before any statement that reads or changes rated parts. */
  flushParts(): Promise<void>;
  /** Says an invoice row was inserted, updated or deleted (what the batch remembered of current invoices is stale). */
  invoicesChanged(): void;
  /** Notes what the event being applied did to an invoice (or, with null, to no invoice) for the audit trail. */
  audit(outcome: AuditOutcome, invoiceId: string | null, tenantId: string | null, detail?: string | null): void;
}
