import { sql, type Kysely } from 'kysely';

// Reliability: the SLA read model (jobs, sub-task attempts, node incidents, credits, SLI minutes),
// closed monthly report snapshots, and observed API request counts. Instants are epoch ms (bigint).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('reliability_sla_jobs')
    .addColumn('job_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('capacity_type', 'text', (c) => c.notNull())
    .addColumn('submitted_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('outcome', 'text')
    .addColumn('completed_at_ms', 'bigint')
    .addColumn('platform_fault', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('reliability_sla_jobs_tenant_completed').on('reliability_sla_jobs').columns(['tenant_id', 'completed_at_ms']).execute();

  await db.schema
    .createTable('reliability_sla_attempts')
    .addColumn('subtask_id', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('node_id', 'text', (c) => c.notNull())
    .addColumn('gpus', 'integer', (c) => c.notNull())
    .addColumn('capacity_type', 'text', (c) => c.notNull())
    .addColumn('lease_epoch', 'integer', (c) => c.notNull())
    .addColumn('placed_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('queue_wait_ms', 'bigint')
    .addColumn('started_at_ms', 'bigint')
    .addColumn('ended_at_ms', 'bigint')
    .addColumn('end_kind', 'text')
    .addColumn('revoked_reason', 'text')
    .addColumn('interruption_cause', 'text')
    .addColumn('interrupted_at_ms', 'bigint')
    .addColumn('resumed_at_ms', 'bigint')
    .addColumn('resumed_by', 'text')
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('reliability_sla_attempts_pk', ['subtask_id', 'attempt'])
    .execute();
  await db.schema.createIndex('reliability_sla_attempts_tenant_placed').on('reliability_sla_attempts').columns(['tenant_id', 'placed_at_ms']).execute();
  await db.schema.createIndex('reliability_sla_attempts_node_open').on('reliability_sla_attempts').column('node_id').where(sql.ref('ended_at_ms'), 'is', null).execute();
  await db.schema.createIndex('reliability_sla_attempts_job').on('reliability_sla_attempts').column('job_id').execute();

  await db.schema
    .createTable('reliability_sla_nodes')
    .addColumn('node_id', 'text', (c) => c.primaryKey())
    .addColumn('gpu_model', 'text', (c) => c.notNull())
    .addColumn('gpu_count', 'integer', (c) => c.notNull())
    .addColumn('registered_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('reports_rejected', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('heartbeats_rejected', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('reliability_sla_incidents')
    .addColumn('incident_id', 'text', (c) => c.primaryKey())
    .addColumn('node_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('started_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('detected_at_ms', 'bigint')
    .addColumn('ended_at_ms', 'bigint')
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('automatic', 'boolean', (c) => c.notNull())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('reliability_sla_incidents_node').on('reliability_sla_incidents').columns(['node_id', 'started_at_ms']).execute();

  await db.schema
    .createTable('reliability_sla_credits')
    .addColumn('credit_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('period', 'text', (c) => c.notNull())
    .addColumn('metric', 'text', (c) => c.notNull())
    .addColumn('measured', 'text', (c) => c.notNull())
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('credit_percent', 'integer', (c) => c.notNull())
    .addColumn('report_hash', 'text', (c) => c.notNull())
    .addColumn('window_end_sequence', 'bigint', (c) => c.notNull())
    .addColumn('issued_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('reliability_sla_credits_tenant_period').on('reliability_sla_credits').columns(['tenant_id', 'period']).execute();

  await db.schema
    .createTable('reliability_sli_minutes')
    .addColumn('sli', 'text', (c) => c.notNull())
    .addColumn('minute_ms', 'bigint', (c) => c.notNull())
    .addColumn('total', 'bigint', (c) => c.notNull())
    .addColumn('good', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('reliability_sli_minutes_pk', ['sli', 'minute_ms'])
    .execute();

  // Not a projection: the report a month was closed with, as the credit cites it (like an issued invoice).
  await db.schema
    .createTable('reliability_sla_report_snapshots')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('period', 'text', (c) => c.notNull())
    .addColumn('window_end_sequence', 'bigint', (c) => c.notNull())
    .addColumn('report_hash', 'text', (c) => c.notNull())
    .addColumn('report_json', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('credits_published_at', 'timestamptz')
    .addPrimaryKeyConstraint('reliability_sla_report_snapshots_pk', ['tenant_id', 'period'])
    .execute();

  // Not a projection either: API request outcomes are observed by the HTTP layer, not events.
  await db.schema
    .createTable('reliability_api_requests')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('minute_ms', 'bigint', (c) => c.notNull())
    .addColumn('total', 'bigint', (c) => c.notNull())
    .addColumn('errors', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('reliability_api_requests_pk', ['tenant_id', 'minute_ms'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'reliability_api_requests',
    'reliability_sla_report_snapshots',
    'reliability_sli_minutes',
    'reliability_sla_credits',
    'reliability_sla_incidents',
    'reliability_sla_nodes',
    'reliability_sla_attempts',
    'reliability_sla_jobs',
  ]) {
    await db.schema.dropTable(table).execute();
  }
}
