import { type Kysely } from 'kysely';

/**
 * Billing accrual at period close (docs/billing.md, "Accrual at period close"): the allocations the
 * ledger knows to be running (from the same events metering folds), the cuts that period closes
 * made of them, and on each usage record the range those cuts already billed, so its stop bills
 * only the remainder. Projection tables like the others: a rebuild creates suffixed copies.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('billing_open_allocations')
    .addColumn('allocation_key', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text')
    .addColumn('project_id', 'text')
    .addColumn('gpu_model', 'text')
    .addColumn('capacity_type', 'text')
    .addColumn('gpus', 'integer')
    .addColumn('node_id', 'text')
    .addColumn('lease_epoch', 'integer')
    .addColumn('placed_ms', 'bigint')
    .addColumn('start_ms', 'bigint')
    .addColumn('start_epoch', 'integer')
    .addColumn('start_sequence', 'bigint')
    .addColumn('end_epoch', 'integer')
    .addColumn('ended', 'boolean', (c) => c.notNull())
    .addColumn('accrued_from_ms', 'bigint')
    .addColumn('accrued_until_ms', 'bigint')
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('billing_open_allocations_tenant').on('billing_open_allocations').columns(['tenant_id', 'ended']).execute();
  await db.schema.createIndex('billing_open_allocations_node').on('billing_open_allocations').columns(['node_id', 'ended']).execute();

  // One row per cut of an allocation by a period close; its pieces are in billing_usage_pieces
  // under the cut's id (event_id = usage_id = accrual_id).
  await db.schema
    .createTable('billing_accruals')
    .addColumn('accrual_id', 'text', (c) => c.primaryKey())
    .addColumn('allocation_key', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('period', 'text', (c) => c.notNull())
    .addColumn('close_event_id', 'text', (c) => c.notNull())
    .addColumn('gpu_model', 'text', (c) => c.notNull())
    .addColumn('capacity_type', 'text', (c) => c.notNull())
    .addColumn('gpus', 'integer', (c) => c.notNull())
    .addColumn('start_ms', 'bigint', (c) => c.notNull())
    .addColumn('end_ms', 'bigint', (c) => c.notNull())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('billing_accruals_allocation').on('billing_accruals').column('allocation_key').execute();

  await db.schema.alterTable('billing_usage').addColumn('accrued_from_ms', 'bigint').execute();
  await db.schema.alterTable('billing_usage').addColumn('accrued_until_ms', 'bigint').execute();
  await db.schema.alterTable('billing_usage').addColumn('allocation_key', 'text').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_usage').dropColumn('allocation_key').execute();
  await db.schema.alterTable('billing_usage').dropColumn('accrued_until_ms').execute();
  await db.schema.alterTable('billing_usage').dropColumn('accrued_from_ms').execute();
  await db.schema.dropTable('billing_accruals').execute();
  await db.schema.dropTable('billing_open_allocations').execute();
}
