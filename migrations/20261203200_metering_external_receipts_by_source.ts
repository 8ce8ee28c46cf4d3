import { sql, type Kysely } from 'kysely';

/**
 * Metering: receipts of `POST /v1/events` keyed as CloudEvents intends, by (tenant, source, id).
 * The id a client chooses is its own: two tenants (or two sources of one tenant) may use the
 * same id without meeting. `event_id` is the internal event id derived from the three (the
 * `Nats-Msg-Id`); `payload_sha256` is what a retry is compared with (type, source, subject and
 * data, not `time`). The old table keyed by the client's id alone is no longer written.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('metering_external_event_receipts')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('ce_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('payload_sha256', 'text', (c) => c.notNull())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('metering_external_event_receipts_pkey', ['tenant_id', 'source', 'ce_id'])
    .execute();
  await sql`CREATE UNIQUE INDEX metering_external_event_receipts_event_id ON metering_external_event_receipts (event_id)`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('metering_external_event_receipts').ifExists().execute();
}
