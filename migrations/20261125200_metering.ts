import { sql, type Kysely } from 'kysely';

/**
 * Metering: the usage projection's tables (rebuilt together by `npm run replay -- usage`) and
 * the external-ingestion receipts of `POST /v1/events` (not part of the projection).
 * Instants of the fold are epoch milliseconds (bigint); hours are timestamptz for humans.
 * No wall-clock defaults in projection tables: a rebuild must produce identical rows.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // One row per allocation: a sub-task attempt (`s:<subtask>:<attempt>`), a lease (`l:<lease>`) or
  // an external allocation (`x:<tenant>:<allocation>`). Rows are kept after they close: they are
  // the permanent dedupe of the events that set them and the exact intervals for zoned queries.
  await db.schema
    .createTable('metering_allocations')
    .addColumn('allocation_key', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text')
    .addColumn('project_id', 'text')
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('subtask_id', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('lease_id', 'text', (c) => c.notNull())
    .addColumn('allocation_id', 'text', (c) => c.notNull())
    .addColumn('node_id', 'text')
    .addColumn('gpu_model', 'text')
    .addColumn('gpus', 'integer')
    .addColumn('capacity_type', 'text')
    .addColumn('lease_epoch', 'integer')
    .addColumn('placed_event_id', 'text')
    .addColumn('placed_sequence', 'bigint')
    .addColumn('start_ms', 'bigint')
    .addColumn('start_epoch', 'integer')
    .addColumn('start_event_id', 'text')
    .addColumn('start_sequence', 'bigint')
    .addColumn('end_ms', 'bigint')
    .addColumn('end_epoch', 'integer')
    .addColumn('end_event_id', 'text')
    .addColumn('end_sequence', 'bigint')
    .addColumn('end_reason', 'text')
    .addColumn('interrupted', 'boolean', (c) => c.notNull())
    .addColumn('stale_reports', 'integer', (c) => c.notNull())
    .addColumn('closed_event_id', 'text')
    .addColumn('closed_sequence', 'bigint')
    .addColumn('gpu_ms', 'bigint')
    .execute();
  // NodeLost ends every not-yet-ended allocation on a node.
  // Also serves open-allocation accrual (open implies not ended). Few indexes: every one costs
  // the replay a write per changed row.
  await sql`CREATE INDEX metering_allocations_open_node ON metering_allocations (node_id) WHERE end_ms IS NULL`.execute(db);
  // Zoned queries (half-hour offsets) read exact intervals by tenant and start.
  await sql`CREATE INDEX metering_allocations_tenant_start ON metering_allocations (tenant_id, start_ms)`.execute(db);

  // Integer GPU-ms per dimension and UTC hour, split exactly at hour boundaries. Absent
  // dimensions are '' (or attempt 0) so the key has no nulls.
  await db.schema
    .createTable('metering_usage_hourly')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('subtask_id', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('lease_id', 'text', (c) => c.notNull())
    .addColumn('allocation_id', 'text', (c) => c.notNull())
    .addColumn('gpu_model', 'text', (c) => c.notNull())
    .addColumn('capacity_type', 'text', (c) => c.notNull())
    .addColumn('hour_start', 'timestamptz', (c) => c.notNull())
    .addColumn('gpu_ms', 'bigint', (c) => c.notNull())
    .addColumn('interrupted_gpu_ms', 'bigint', (c) => c.notNull())
    // Tenant and hour lead the key, so it also serves the usage API's range reads.
    .addPrimaryKeyConstraint('metering_usage_hourly_pkey', [
      'tenant_id',
      'hour_start',
      'project_id',
      'job_id',
      'subtask_id',
      'attempt',
      'lease_id',
      'allocation_id',
      'gpu_model',
      'capacity_type',
    ])
    .execute();

  // The scheduler's own record per job, for reconciliation.
  await db.schema
    .createTable('metering_job_observations')
    .addColumn('job_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('gpu_ms_observed', 'bigint', (c) => c.notNull())
    .addColumn('completed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .execute();

  // Ids of applied events that touch many rows at once (NodeLost): permanent dedupe for them.
  // Single-allocation events are deduplicated by the allocation row that records their id.
  await db.schema
    .createTable('metering_applied_events')
    .addColumn('event_id', 'text', (c) => c.primaryKey())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .execute();

  // Valid events metering refused with a reason (external events outside the lateness horizon,
  // or naming another tenant than their subject): never applied, never silently dropped.
  await db.schema
    .createTable('metering_rejected_events')
    .addColumn('event_id', 'text', (c) => c.primaryKey())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    .execute();

  // Log time: the latest event time applied; the default cutoff for accruing open allocations.
  await db.schema
    .createTable('metering_state')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('event_time_max_ms', 'bigint', (c) => c.notNull())
    .execute();

  // Receipts of POST /v1/events: one per event id, with a hash of its canonical payload, so a
  // retried request is accepted idempotently and a changed payload under the same id is a 409.
  await db.schema
    .createTable('metering_external_receipts')
    .addColumn('event_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('payload_sha256', 'text', (c) => c.notNull())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull())
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['metering_external_receipts', 'metering_state', 'metering_rejected_events', 'metering_applied_events', 'metering_job_observations', 'metering_usage_hourly', 'metering_allocations']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
