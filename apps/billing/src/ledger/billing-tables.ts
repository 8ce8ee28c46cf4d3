import type { Insertable, Selectable } from 'kysely';
import type { BillingDatabase, BillingInvoicesTable, BillingOpenAllocationsTable, BillingSlaCreditsTable, BillingUsagePiecesTable, Queryable } from '@fastgpu/db';
import type { AllocationKind, OpenAllocation } from './accrual';

/**
 * Reads and writes of billing's tables, always through `table(name)`, so that a rebuild runs the
 * same code into fresh suffixed tables, finance actions included (they are folded from their
 * catalogue events like everything else).
 */
export const BILLING_TABLES = [
  'billing_tenants',
  'billing_price_books',
  'billing_usage',
  'billing_usage_pieces',
  'billing_sla_credits',
  'billing_invoices',
  'billing_review_queue',
  'billing_grant_usage',
  'billing_rated_parts',
  'billing_finance_actions',
  'billing_open_allocations',
  'billing_accruals',
  'billing_deleted_invoices',
  'billing_audit',
] as const;
export type BillingTable = (typeof BILLING_TABLES)[number];

/** Billing's tables, typed (libs/db schema-billing.ts): a handle or a transaction. */
export type Db = Queryable<BillingDatabase>;

/**
 * A billing table's name as the code refers to it: the live table, or a rebuild's copy with the
 * same columns under a suffixed name. Typed as the live table's name, which is what its columns are.
 */
export type TableName = <N extends BillingTable>(name: N) => N;

/** The live tables (no suffix), or a rebuild's copies (`<name><suffix>`). */
export function tableNames(suffix = ''): TableName {
  return <N extends BillingTable>(name: N) => `${name}${suffix}` as N;
}

/**
 * Billing's row types are the schema's (libs/db schema-billing.ts), written once there. A reissue's
 * columns (`replaces_invoice_id`, `replaced_by_invoice_id`, `replaced_sequence`) may be left out
 * where a row is built by hand: they are null unless a reissue set them.
 */
export type InvoiceRow = Omit<Selectable<BillingInvoicesTable>, ReissueColumn> & Partial<Pick<Selectable<BillingInvoicesTable>, ReissueColumn>>;
type ReissueColumn = 'replaces_invoice_id' | 'replaced_by_invoice_id' | 'replaced_sequence';

export type PieceRow = Selectable<BillingUsagePiecesTable>;

/** Largest sequence a filter can take: "everything applied so far". */
export const SEQUENCE_MAX = Number.MAX_SAFE_INTEGER;

export type SlaCreditRow = Selectable<BillingSlaCreditsTable>;

export function allocationFromRow(r: Omit<Selectable<BillingOpenAllocationsTable>, 'sequence'>): OpenAllocation {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    allocationKey: r.allocation_key,
    // Written from an AllocationKind (allocationToRow).
    kind: r.kind as AllocationKind,
    tenantId: r.tenant_id,
    projectId: r.project_id,
    gpuModel: r.gpu_model,
    capacityType: r.capacity_type,
    gpus: num(r.gpus),
    nodeId: r.node_id,
    leaseEpoch: num(r.lease_epoch),
    placedMs: num(r.placed_ms),
    startMs: num(r.start_ms),
    startEpoch: num(r.start_epoch),
    startSequence: num(r.start_sequence),
    endEpoch: num(r.end_epoch),
    ended: Boolean(r.ended),
    accruedFromMs: num(r.accrued_from_ms),
    accruedUntilMs: num(r.accrued_until_ms),
  };
}

export function allocationToRow(a: OpenAllocation): Omit<Insertable<BillingOpenAllocationsTable>, 'sequence'> {
  return {
    allocation_key: a.allocationKey,
    kind: a.kind,
    tenant_id: a.tenantId,
    project_id: a.projectId,
    gpu_model: a.gpuModel,
    capacity_type: a.capacityType,
    gpus: a.gpus,
    node_id: a.nodeId,
    lease_epoch: a.leaseEpoch,
    placed_ms: a.placedMs,
    start_ms: a.startMs,
    start_epoch: a.startEpoch,
    start_sequence: a.startSequence,
    end_epoch: a.endEpoch,
    ended: a.ended,
    accrued_from_ms: a.accruedFromMs,
    accrued_until_ms: a.accruedUntilMs,
  };
}
