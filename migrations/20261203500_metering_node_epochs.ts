import type { Kysely } from 'kysely';

/**
 * Metering: each node's current agent epoch (the highest registered or recovered), so that only a
 * registration raising it ends what the node ran (libs/contracts `registrationEndsRuns`, the
 * scheduler's rule) and an older one (a zombie or forged registration) changes nothing. Part of
 * the usage projection: rebuilt from the log with it.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('metering_node_epochs')
    .addColumn('node_id', 'text', (c) => c.primaryKey())
    .addColumn('agent_epoch', 'bigint', (c) => c.notNull())
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('metering_node_epochs').ifExists().execute();
}
