import type { Kysely } from 'kysely';

// Scheduler / intake leases: the read model behind GET /v1/leases/{id} (interactive GPU leases).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('leases')
    .addColumn('lease_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('gpu_models', 'jsonb', (c) => c.notNull())
    .addColumn('gpus', 'integer', (c) => c.notNull())
    .addColumn('capacity_type', 'text', (c) => c.notNull())
    .addColumn('priority_class', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('node_id', 'text')
    .addColumn('gpu_model', 'text')
    .addColumn('gpu_indices', 'jsonb')
    .addColumn('lease_epoch', 'integer')
    .addColumn('requested_at', 'timestamptz', (c) => c.notNull())
    .addColumn('granted_at', 'timestamptz')
    .addColumn('release_requested_at', 'timestamptz')
    .addColumn('released_at', 'timestamptz')
    .addColumn('release_reason', 'text')
    .addColumn('last_sequence', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('leases_tenant_requested').on('leases').columns(['tenant_id', 'requested_at']).execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('leases').execute();
}
