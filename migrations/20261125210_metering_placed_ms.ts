import type { Kysely } from 'kysely';

// Metering: keep each allocation's placement time, so node-reported times are clamped into the lease.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('metering_allocations').addColumn('placed_ms', 'bigint').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('metering_allocations').dropColumn('placed_ms').execute();
}
