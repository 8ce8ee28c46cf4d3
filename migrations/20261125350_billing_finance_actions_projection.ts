import { sql, type Kysely } from 'kysely';

/**
 * Billing: finance actions (InvoicePaid, InvoiceVoided, CreditNoteIssued, CreditGranted,
 * TaxRatesSet) are catalogue events now, and `billing_finance_actions` becomes a projection of
 * them: keyed by event id, ordered by stream sequence (no local serial), so a rebuild from the log
 * creates identical rows in a suffixed copy. The former local log is kept, renamed to
 * `billing_finance_actions_local` with its constraints, and is read by nothing: its rows were
 * never on the bus and a migration cannot publish them.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE billing_finance_actions RENAME TO billing_finance_actions_local`.execute(db);
  await sql`ALTER TABLE billing_finance_actions_local RENAME CONSTRAINT billing_finance_actions_pkey TO billing_finance_actions_local_pkey`.execute(db);
  await sql`ALTER TABLE billing_finance_actions_local RENAME CONSTRAINT billing_finance_actions_position_key TO billing_finance_actions_local_position_key`.execute(db);
  await sql`ALTER INDEX billing_finance_actions_credit_note_number RENAME TO billing_finance_actions_local_credit_note_number`.execute(db);
  await sql`ALTER INDEX billing_finance_actions_settlement RENAME TO billing_finance_actions_local_settlement`.execute(db);
  await sql`ALTER INDEX billing_finance_actions_tenant RENAME TO billing_finance_actions_local_tenant`.execute(db);

  await db.schema
    .createTable('billing_finance_actions')
    .addColumn('event_id', 'text', (c) => c.primaryKey())
    /** The action's own id: the credit note or grant id, else the event id. */
    .addColumn('action_id', 'text', (c) => c.notNull().unique())
    .addColumn('sequence', 'bigint', (c) => c.notNull().unique())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('invoice_id', 'text')
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('at_ms', 'bigint', (c) => c.notNull())
    .addColumn('issuer', 'text')
    .addColumn('number_sequence', 'integer')
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .execute();
  await sql`CREATE UNIQUE INDEX billing_finance_actions_cn_number ON billing_finance_actions (issuer, number_sequence) WHERE kind = 'CreditNoteIssued'`.execute(db);
  await sql`CREATE UNIQUE INDEX billing_finance_actions_settled ON billing_finance_actions (invoice_id) WHERE kind IN ('InvoicePaid', 'InvoiceVoided')`.execute(db);
  await db.schema.createIndex('billing_finance_actions_by_tenant').on('billing_finance_actions').columns(['tenant_id', 'kind', 'sequence']).execute();
  await db.schema.createIndex('billing_finance_actions_by_invoice').on('billing_finance_actions').columns(['invoice_id', 'sequence']).execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('billing_finance_actions').ifExists().execute();
  await sql`ALTER INDEX billing_finance_actions_local_tenant RENAME TO billing_finance_actions_tenant`.execute(db);
  await sql`ALTER INDEX billing_finance_actions_local_settlement RENAME TO billing_finance_actions_settlement`.execute(db);
  await sql`ALTER INDEX billing_finance_actions_local_credit_note_number RENAME TO billing_finance_actions_credit_note_number`.execute(db);
  await sql`ALTER TABLE billing_finance_actions_local RENAME CONSTRAINT billing_finance_actions_local_position_key TO billing_finance_actions_position_key`.execute(db);
  await sql`ALTER TABLE billing_finance_actions_local RENAME CONSTRAINT billing_finance_actions_local_pkey TO billing_finance_actions_pkey`.execute(db);
  await sql`ALTER TABLE billing_finance_actions_local RENAME TO billing_finance_actions`.execute(db);
}
