import { sql, type Kysely } from 'kysely';

/**
 * Billing webhooks: endpoints (per tenant or global, registered by finance), the deliveries the
 * live webhook projection enqueues (one per webhook message and endpoint, keyed so a replay
 * enqueues nothing twice) and the attempts of each delivery (the delivery log). None of these is
 * a projection a rebuild re-creates: they record side effects, which only the live path has.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('billing_webhook_endpoints')
    .addColumn('endpoint_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text')
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('event_types', 'jsonb', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('enabled', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('from_sequence', 'bigint', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('disabled_at', 'timestamptz')
    .execute();
  await db.schema
    .createTable('billing_webhook_deliveries')
    .addColumn('delivery_id', 'text', (c) => c.primaryKey())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('endpoint_id', 'text', (c) => c.notNull().references('billing_webhook_endpoints.endpoint_id'))
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('event_sequence', 'bigint', (c) => c.notNull())
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text')
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_status_code', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('delivered_at', 'timestamptz')
    .addUniqueConstraint('billing_webhook_deliveries_message_endpoint', ['message_id', 'endpoint_id'])
    .execute();
  await sql`CREATE INDEX billing_webhook_deliveries_due ON billing_webhook_deliveries (next_attempt_at) WHERE status = 'pending'`.execute(db);
  await db.schema
    .createTable('billing_webhook_attempts')
    .addColumn('delivery_id', 'text', (c) => c.notNull().references('billing_webhook_deliveries.delivery_id'))
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('error', 'text')
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('manual', 'boolean', (c) => c.notNull().defaultTo(false))
    .addPrimaryKeyConstraint('billing_webhook_attempts_pk', ['delivery_id', 'attempt'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['billing_webhook_attempts', 'billing_webhook_deliveries', 'billing_webhook_endpoints']) await db.schema.dropTable(table).execute();
}
