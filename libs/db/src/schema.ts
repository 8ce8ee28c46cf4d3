import type { ColumnType, Generated, Kysely, Transaction } from 'kysely';
import type { BillingLedgerTables, BillingWebhookTables } from './schema-billing';
import type { IntakeTables } from './schema-intake';

/**
 * The tables of `migrations/`, as kysely sees them: one interface per table, columns named as
 * in SQL. Written by hand from the migrations (they are never edited after they land, so a new
 * migration adds or changes an interface here in the same commit).
 *
 * Types follow what `createDatabase` returns: int8 (`bigint`) → number (asserted safe),
 * numeric → string, timestamptz → Date (written as a Date or an ISO string).
 * Columns with a server default are `Generated` (optional on insert).
 *
 * Every table of the migrations: the checkpoints of every projection, metering and reliability
 * here, billing in schema-billing.ts, intake (tenants, API keys, jobs, sub-tasks, idempotency
 * keys, leases) in schema-intake.ts.
 */
export type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface ProjectionCheckpointsTable {
  projection: string;
  last_sequence: Generated<number>;
  status: Generated<'running' | 'stalled' | 'rebuilding'>;
  error: string | null;
  stalled_sequence: number | null;
  updated_at: Generated<Date>;
}

// ---- metering (20261125200, 20261125210, 20261203200, 20261203201, 20261203202) ----

export interface MeteringAllocationsTable {
  allocation_key: string;
  kind: string;
  tenant_id: string | null;
  project_id: string | null;
  job_id: string;
  subtask_id: string;
  attempt: number;
  lease_id: string;
  allocation_id: string;
  node_id: string | null;
  gpu_model: string | null;
  gpus: number | null;
  capacity_type: string | null;
  lease_epoch: number | null;
  placed_event_id: string | null;
  placed_sequence: number | null;
  placed_ms: number | null;
  start_ms: number | null;
  start_epoch: number | null;
  start_event_id: string | null;
  start_sequence: number | null;
  end_ms: number | null;
  end_epoch: number | null;
  end_event_id: string | null;
  end_sequence: number | null;
  end_reason: string | null;
  interrupted: boolean;
  stale_reports: number;
  closed_event_id: string | null;
  closed_sequence: number | null;
  gpu_ms: number | null;
  late: Generated<boolean>;
  late_received_ms: number | null;
}

export interface MeteringUsageHourlyTable {
  tenant_id: string;
  project_id: string;
  job_id: string;
  subtask_id: string;
  attempt: number;
  lease_id: string;
  allocation_id: string;
  gpu_model: string;
  capacity_type: string;
  hour_start: Timestamp;
  gpu_ms: number;
  interrupted_gpu_ms: number;
}

export interface MeteringJobObservationsTable {
  job_id: string;
  tenant_id: string;
  project_id: string;
  outcome: string;
  gpu_ms_observed: number;
  completed_at: Timestamp;
  event_id: string;
  sequence: number;
}

export interface MeteringAppliedEventsTable {
  event_id: string;
  sequence: number;
}

export interface MeteringRejectedEventsTable {
  event_id: string;
  sequence: number;
  type: string;
  tenant_id: string | null;
  reason: string;
}

export interface MeteringStateTable {
  id: number;
  event_time_max_ms: number;
}

/** Each node's current agent epoch (the highest registered or recovered): only a registration raising it ends what the node ran. */
export interface MeteringNodeEpochsTable {
  node_id: string;
  agent_epoch: number;
}

export interface MeteringExternalEventReceiptsTable {
  tenant_id: string;
  source: string;
  ce_id: string;
  event_id: string;
  payload_sha256: string;
  received_at: Timestamp;
}

// ---- reliability (20261125400) ----

export interface ReliabilitySlaJobsTable {
  job_id: string;
  tenant_id: string;
  project_id: string;
  capacity_type: string;
  submitted_at_ms: number;
  outcome: string | null;
  completed_at_ms: number | null;
  platform_fault: Generated<boolean>;
  sequence: number;
}

export interface ReliabilitySlaAttemptsTable {
  subtask_id: string;
  attempt: number;
  job_id: string;
  tenant_id: string;
  node_id: string;
  gpus: number;
  capacity_type: string;
  lease_epoch: number;
  placed_at_ms: number;
  queue_wait_ms: number | null;
  started_at_ms: number | null;
  ended_at_ms: number | null;
  end_kind: string | null;
  revoked_reason: string | null;
  interruption_cause: string | null;
  interrupted_at_ms: number | null;
  resumed_at_ms: number | null;
  resumed_by: string | null;
  sequence: number;
}

export interface ReliabilitySlaNodesTable {
  node_id: string;
  gpu_model: string;
  gpu_count: number;
  registered_at_ms: number;
  reports_rejected: Generated<number>;
  heartbeats_rejected: Generated<number>;
}

export interface ReliabilitySlaIncidentsTable {
  incident_id: string;
  node_id: string;
  kind: string;
  started_at_ms: number;
  detected_at_ms: number | null;
  ended_at_ms: number | null;
  reason: string;
  automatic: boolean;
  sequence: number;
}

export interface ReliabilitySlaCreditsTable {
  credit_id: string;
  tenant_id: string;
  period: string;
  metric: string;
  measured: string;
  target: string;
  credit_percent: number;
  report_hash: string;
  window_end_sequence: number;
  issued_at_ms: number;
  sequence: number;
}

export interface ReliabilitySliMinutesTable {
  sli: string;
  minute_ms: number;
  total: number;
  good: number;
}

export interface ReliabilitySlaReportSnapshotsTable {
  tenant_id: string;
  period: string;
  window_end_sequence: number;
  report_hash: string;
  report_json: string;
  created_at: Generated<Date>;
  credits_published_at: Timestamp | null;
}

export interface ReliabilityApiRequestsTable {
  tenant_id: string;
  minute_ms: number;
  total: number;
  errors: number;
}

export interface CheckpointTables {
  projection_checkpoints: ProjectionCheckpointsTable;
}

export interface MeteringTables {
  metering_allocations: MeteringAllocationsTable;
  metering_usage_hourly: MeteringUsageHourlyTable;
  metering_job_observations: MeteringJobObservationsTable;
  metering_applied_events: MeteringAppliedEventsTable;
  metering_rejected_events: MeteringRejectedEventsTable;
  metering_state: MeteringStateTable;
  metering_node_epochs: MeteringNodeEpochsTable;
  metering_external_event_receipts: MeteringExternalEventReceiptsTable;
}

export interface ReliabilityTables {
  reliability_sla_jobs: ReliabilitySlaJobsTable;
  reliability_sla_attempts: ReliabilitySlaAttemptsTable;
  reliability_sla_nodes: ReliabilitySlaNodesTable;
  reliability_sla_incidents: ReliabilitySlaIncidentsTable;
  reliability_sla_credits: ReliabilitySlaCreditsTable;
  reliability_sli_minutes: ReliabilitySliMinutesTable;
  reliability_sla_report_snapshots: ReliabilitySlaReportSnapshotsTable;
  reliability_api_requests: ReliabilityApiRequestsTable;
}

/** Every table. A service narrows to its own tables (`Kysely<MeteringDatabase>`). */
export interface Database extends CheckpointTables, IntakeTables, MeteringTables, ReliabilityTables, BillingLedgerTables, BillingWebhookTables {}

export type CheckpointDatabase = CheckpointTables;
export type MeteringDatabase = CheckpointTables & MeteringTables;
export type ReliabilityDatabase = CheckpointTables & ReliabilityTables;

/** A handle or a transaction on some tables: what a repository method that may join a transaction takes. */
export type Queryable<Tables> = Kysely<Tables> | Transaction<Tables>;
