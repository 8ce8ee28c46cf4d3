import type { ColumnType, Generated } from 'kysely';
import type { CheckpointTables, Timestamp } from './schema';

/**
 * Billing's tables as kysely sees them (schema.ts has the conventions: int8 → number, numeric →
 * string, timestamptz → Date). Written by hand from the billing migrations: 20261125300 (ledger),
 * 20261125301 (rated parts), 20261125350 (finance actions), 20261125351 (grant release),
 * 20261203300 (accrual), 20261203301 (lifecycle), 20261203302 (audit), 20261203303 (review
 * decisions), 20261203400 (webhooks). A jsonb column reads back as parsed JSON and is written as a
 * JSON text.
 */
type Json<T> = ColumnType<T, string, string>;

export interface BillingTenantsTable {
  tenant_id: string;
  name: string;
  currency: string;
  billing_time_zone: string;
  event_id: string;
  sequence: number;
}

export interface BillingPriceBooksTable {
  price_book_id: string;
  version: number;
  currency: string;
  effective_from_ms: number;
  prices: Json<unknown>;
  published_by: string;
  published_at: string;
  event_id: string;
  sequence: number;
}

export interface BillingUsageTable {
  event_id: string;
  usage_id: string;
  tenant_id: string;
  project_id: string;
  job_id: string | null;
  subtask_id: string | null;
  attempt: number | null;
  lease_id: string | null;
  gpu_model: string;
  capacity_type: string;
  gpus: number;
  start_ms: number;
  end_ms: number;
  gpu_ms: number;
  interrupted: boolean;
  source_sequences: Json<number[]>;
  sequence: number;
  split: Generated<boolean>;
  accrued_from_ms: number | null;
  accrued_until_ms: number | null;
  allocation_key: string | null;
}

export interface BillingUsagePiecesTable {
  event_id: string;
  piece: number;
  usage_id: string;
  tenant_id: string;
  service_period: string;
  invoice_id: string | null;
  gpu_model: string;
  capacity_type: string;
  gpus: number;
  start_ms: number;
  end_ms: number;
  allocation_start_ms: number;
  allocation_end_ms: number;
  interrupted: boolean;
  sequence: number;
  assigned_sequence: number;
}

export interface BillingSlaCreditsTable {
  event_id: string;
  credit_id: string;
  tenant_id: string;
  period: string;
  metric: string;
  measured: string;
  target: string;
  credit_percent: number;
  invoice_id: string | null;
  sequence: number;
  assigned_sequence: number;
}

export interface BillingInvoicesTable {
  invoice_id: string;
  tenant_id: string;
  period: string;
  status: 'draft' | 'finalized';
  issuer: string | null;
  number: string | null;
  number_sequence: number | null;
  cutoff_sequence: number | null;
  finalized_sequence: number | null;
  finalized_event_id: string | null;
  finalized_at: string | null;
  price_book_version: number | null;
  sha256: string | null;
  document: string | null;
  total: string | null;
  actor: string | null;
  reason: string | null;
  replaces_invoice_id: string | null;
  replaced_by_invoice_id: string | null;
  replaced_sequence: number | null;
}

export interface BillingReviewQueueTable {
  event_id: string;
  piece: number;
  kind: string;
  tenant_id: string;
  reference_id: string;
  service_period: string;
  reason: string;
  sequence: number;
  gpu_model: string | null;
  capacity_type: string | null;
  gpus: number | null;
  start_ms: number | null;
  end_ms: number | null;
  allocation_start_ms: number | null;
  allocation_end_ms: number | null;
  interrupted: boolean | null;
  resolution: string | null;
  resolved_invoice_id: string | null;
  resolved_event_id: string | null;
  resolved_sequence: number | null;
}

export interface BillingGrantUsageTable {
  invoice_id: string;
  grant_id: string;
  tenant_id: string;
  amount: string;
  finalized_sequence: number;
  released_sequence: number | null;
}

export interface BillingRatedPartsTable {
  event_id: string;
  piece: number;
  part: number;
  invoice_id: string;
  service_period: string;
  gpu_model: string;
  capacity_type: string;
  interrupted: boolean;
  price_book_id: string | null;
  version: number | null;
  start_ms: number;
  billed_gpu_ms: number;
}

export interface BillingFinanceActionsTable {
  event_id: string;
  action_id: string;
  sequence: number;
  kind: string;
  tenant_id: string;
  invoice_id: string | null;
  actor: string;
  reason: string;
  at_ms: number;
  issuer: string | null;
  number_sequence: number | null;
  payload: Json<Record<string, unknown>>;
}

export interface BillingOpenAllocationsTable {
  allocation_key: string;
  kind: string;
  tenant_id: string | null;
  project_id: string | null;
  gpu_model: string | null;
  capacity_type: string | null;
  gpus: number | null;
  node_id: string | null;
  lease_epoch: number | null;
  placed_ms: number | null;
  start_ms: number | null;
  start_epoch: number | null;
  start_sequence: number | null;
  end_epoch: number | null;
  ended: boolean;
  accrued_from_ms: number | null;
  accrued_until_ms: number | null;
  sequence: number;
}

export interface BillingAccrualsTable {
  accrual_id: string;
  allocation_key: string;
  tenant_id: string;
  period: string;
  close_event_id: string;
  gpu_model: string;
  capacity_type: string;
  gpus: number;
  start_ms: number;
  end_ms: number;
  sequence: number;
}

export interface BillingDeletedInvoicesTable {
  invoice_id: string;
  tenant_id: string;
  period: string;
  usage: string;
  successor_invoice_id: string;
  event_id: string;
  sequence: number;
  actor: string;
  reason: string;
  deleted_at: string;
}

export interface BillingAuditTable {
  sequence: number;
  invoice_id: string;
  outcome: string;
  event_id: string;
  type: string;
  tenant_id: string | null;
  detail: string | null;
}

export interface BillingWebhookEndpointsTable {
  endpoint_id: string;
  tenant_id: string | null;
  url: string;
  secret: string;
  event_types: Json<string[]>;
  description: Generated<string>;
  enabled: Generated<boolean>;
  from_sequence: number;
  created_by: string;
  created_at: Timestamp;
  disabled_at: Timestamp | null;
}

export interface BillingWebhookDeliveriesTable {
  delivery_id: string;
  message_id: string;
  endpoint_id: string;
  event_id: string;
  event_sequence: number;
  event_type: string;
  tenant_id: string | null;
  payload: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: Generated<number>;
  next_attempt_at: Timestamp;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Timestamp;
  delivered_at: Timestamp | null;
}

export interface BillingWebhookAttemptsTable {
  delivery_id: string;
  attempt: number;
  at: Timestamp;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  manual: Generated<boolean>;
}

/** The ledger's tables: a projection, rebuilt into suffixed copies with the same columns. */
export interface BillingLedgerTables {
  billing_tenants: BillingTenantsTable;
  billing_price_books: BillingPriceBooksTable;
  billing_usage: BillingUsageTable;
  billing_usage_pieces: BillingUsagePiecesTable;
  billing_sla_credits: BillingSlaCreditsTable;
  billing_invoices: BillingInvoicesTable;
  billing_review_queue: BillingReviewQueueTable;
  billing_grant_usage: BillingGrantUsageTable;
  billing_rated_parts: BillingRatedPartsTable;
  billing_finance_actions: BillingFinanceActionsTable;
  billing_open_allocations: BillingOpenAllocationsTable;
  billing_accruals: BillingAccrualsTable;
  billing_deleted_invoices: BillingDeletedInvoicesTable;
  billing_audit: BillingAuditTable;
}

/** Webhook endpoints, deliveries and attempts: operational tables, not projections. */
export interface BillingWebhookTables {
  billing_webhook_endpoints: BillingWebhookEndpointsTable;
  billing_webhook_deliveries: BillingWebhookDeliveriesTable;
  billing_webhook_attempts: BillingWebhookAttemptsTable;
}

export type BillingDatabase = CheckpointTables & BillingLedgerTables & BillingWebhookTables;
