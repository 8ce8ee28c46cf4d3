import type { Kysely } from 'kysely';

/**
 * Metering: drops the receipts of `POST /v1/events` keyed by the client's id alone. Since
 * 20261203200 receipts are kept per (tenant, source, id) in metering_external_event_receipts and
 * this table is no longer written or read; the events it stood for are in the log.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('metering_external_receipts').ifExists().execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('metering_external_receipts')
    .ifNotExists()
    .addColumn('event_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('payload_sha256', 'text', (c) => c.notNull())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull())
    .execute();
}
