import type { ColumnType, Generated } from 'kysely';
import type { Timestamp } from './schema';

/**
 * Intake's tables as kysely sees them (schema.ts has the conventions: int8 → number, numeric →
 * string, timestamptz → Date). Written by hand from migrations 20261125000 (tenants, API keys),
 * 20261125001 (jobs, sub-tasks, idempotency keys), 20261125100 (leases) and 20261203100
 * (idempotency scopes). A jsonb column reads back as parsed JSON and is written as a JSON text
 * (or a value `pg` serialises).
 */
type Json = ColumnType<unknown, unknown, unknown>;

export interface TenantsTable {
  tenant_id: string;
  name: string;
  billing_time_zone: string;
  currency: string;
  created_at: Timestamp;
  sequence: number;
}

export interface ApiKeysTable {
  key_id: string;
  tenant_id: string | null;
  role: string;
  secret_hash: string;
  label: string | null;
  issued_at: Timestamp;
  revoked_at: Timestamp | null;
}

export interface JobsTable {
  job_id: string;
  tenant_id: string;
  project_id: string;
  name: string | null;
  spec: Json;
  state: string;
  outcome_reason: string | null;
  submitted_at: Timestamp;
  completed_at: Timestamp | null;
  gpu_ms_observed: number | null;
  last_sequence: number;
}

export interface SubtasksTable {
  subtask_id: string;
  job_id: string;
  tenant_id: string;
  index: number;
  gpus: number;
  runtime_ms: number;
  state: string;
  attempt: Generated<number>;
  lease_epoch: number | null;
  node_id: string | null;
  gpu_model: string | null;
  placed_at: Timestamp | null;
  started_at: Timestamp | null;
  ended_at: Timestamp | null;
  exit_code: number | null;
  reason: string | null;
}

export interface IdempotencyKeysTable {
  tenant_id: string;
  scope: Generated<string>;
  key: string;
  request_hash: string;
  resource_id: string;
  created_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface LeasesTable {
  lease_id: string;
  tenant_id: string;
  project_id: string;
  gpu_models: Json;
  gpus: number;
  capacity_type: string;
  priority_class: string;
  state: string;
  node_id: string | null;
  gpu_model: string | null;
  gpu_indices: Json;
  lease_epoch: number | null;
  requested_at: Timestamp;
  granted_at: Timestamp | null;
  release_requested_at: Timestamp | null;
  released_at: Timestamp | null;
  release_reason: string | null;
  last_sequence: number;
}

export interface IntakeTables {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  jobs: JobsTable;
  subtasks: SubtasksTable;
  idempotency_keys: IdempotencyKeysTable;
  leases: LeasesTable;
}
