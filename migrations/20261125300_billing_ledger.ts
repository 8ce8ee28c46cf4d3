import { sql, type Kysely } from 'kysely';

/**
 * Billing: the projection's tables (folded from the domain stream; a rebuild creates suffixed
 * copies with `CREATE TABLE … (LIKE … INCLUDING ALL)`), and the finance action log, which is a
 * source of truth of its own (paid, void, credit notes, prepaid grants, tax rates) until those
 * actions become catalogue events. Millisecond instants are bigint epoch ms; money is text
 * decimal strings written by decimal.js, never floats.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('billing_tenants')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('billing_time_zone', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull().unique())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('billing_price_books')
    .addColumn('price_book_id', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('effective_from_ms', 'bigint', (c) => c.notNull())
    .addColumn('prices', 'jsonb', (c) => c.notNull())
    .addColumn('published_by', 'text', (c) => c.notNull())
    .addColumn('published_at', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull().unique())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('billing_price_books_pk', ['price_book_id', 'version'])
    .execute();

  await db.schema
    .createTable('billing_usage')
    .addColumn('event_id', 'text', (c) => c.primaryKey())
    .addColumn('usage_id', 'text', (c) => c.notNull().unique())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text')
    .addColumn('subtask_id', 'text')
    .addColumn('attempt', 'integer')
    .addColumn('lease_id', 'text')
    .addColumn('gpu_model', 'text', (c) => c.notNull())
    .addColumn('capacity_type', 'text', (c) => c.notNull())
    .addColumn('gpus', 'integer', (c) => c.notNull())
    .addColumn('start_ms', 'bigint', (c) => c.notNull())
    .addColumn('end_ms', 'bigint', (c) => c.notNull())
    .addColumn('gpu_ms', 'bigint', (c) => c.notNull())
    .addColumn('interrupted', 'boolean', (c) => c.notNull())
    .addColumn('source_sequences', 'jsonb', (c) => c.notNull())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .addColumn('split', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  await db.schema.createIndex('billing_usage_pending').on('billing_usage').columns(['tenant_id', 'split']).execute();

  // One row per (allocation, billing period) piece, on the invoice that bills it (or in review).
  await db.schema
    .createTable('billing_usage_pieces')
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('piece', 'integer', (c) => c.notNull())
    .addColumn('usage_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('service_period', 'text', (c) => c.notNull())
    .addColumn('invoice_id', 'text')
    .addColumn('gpu_model', 'text', (c) => c.notNull())
    .addColumn('capacity_type', 'text', (c) => c.notNull())
    .addColumn('gpus', 'integer', (c) => c.notNull())
    .addColumn('start_ms', 'bigint', (c) => c.notNull())
    .addColumn('end_ms', 'bigint', (c) => c.notNull())
    .addColumn('allocation_start_ms', 'bigint', (c) => c.notNull())
    .addColumn('allocation_end_ms', 'bigint', (c) => c.notNull())
    .addColumn('interrupted', 'boolean', (c) => c.notNull())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    /** Sequence of the event that put the piece on its current invoice (a finalization may move it). */
    .addColumn('assigned_sequence', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('billing_usage_pieces_pk', ['event_id', 'piece'])
    .execute();
  await db.schema.createIndex('billing_usage_pieces_invoice').on('billing_usage_pieces').columns(['invoice_id', 'assigned_sequence']).execute();

  await db.schema
    .createTable('billing_sla_credits')
    .addColumn('event_id', 'text', (c) => c.primaryKey())
    .addColumn('credit_id', 'text', (c) => c.notNull().unique())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('period', 'text', (c) => c.notNull())
    .addColumn('metric', 'text', (c) => c.notNull())
    .addColumn('measured', 'text', (c) => c.notNull())
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('credit_percent', 'integer', (c) => c.notNull())
    .addColumn('invoice_id', 'text')
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .addColumn('assigned_sequence', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('billing_invoices')
    .addColumn('invoice_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('period', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('issuer', 'text')
    .addColumn('number', 'text')
    .addColumn('number_sequence', 'integer')
    .addColumn('cutoff_sequence', 'bigint')
    .addColumn('finalized_sequence', 'bigint')
    .addColumn('finalized_event_id', 'text')
    .addColumn('finalized_at', 'text')
    .addColumn('price_book_version', 'integer')
    .addColumn('sha256', 'text')
    .addColumn('document', 'text')
    .addColumn('total', 'text')
    .addColumn('actor', 'text')
    .addColumn('reason', 'text')
    .addUniqueConstraint('billing_invoices_tenant_period', ['tenant_id', 'period'])
    .addUniqueConstraint('billing_invoices_number', ['issuer', 'number_sequence'])
    .execute();

  await db.schema
    .createTable('billing_review_queue')
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('piece', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('reference_id', 'text', (c) => c.notNull())
    .addColumn('service_period', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('billing_review_queue_pk', ['event_id', 'piece'])
    .execute();

  await db.schema
    .createTable('billing_grant_usage')
    .addColumn('invoice_id', 'text', (c) => c.notNull())
    .addColumn('grant_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('amount', 'text', (c) => c.notNull())
    .addColumn('finalized_sequence', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('billing_grant_usage_pk', ['invoice_id', 'grant_id'])
    .execute();

  // The finance action log: append-only, audited (actor, reason, time), never rebuilt.
  await db.schema
    .createTable('billing_finance_actions')
    .addColumn('action_id', 'text', (c) => c.primaryKey())
    .addColumn('position', 'bigserial', (c) => c.notNull().unique())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('invoice_id', 'text')
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('at_ms', 'bigint', (c) => c.notNull())
    .addColumn('number_sequence', 'integer')
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .execute();
  await sql`CREATE UNIQUE INDEX billing_finance_actions_credit_note_number ON billing_finance_actions (number_sequence) WHERE kind = 'CreditNoteIssued'`.execute(db);
  await sql`CREATE UNIQUE INDEX billing_finance_actions_settlement ON billing_finance_actions (invoice_id) WHERE kind IN ('InvoicePaid', 'InvoiceVoided')`.execute(db);
  await db.schema.createIndex('billing_finance_actions_tenant').on('billing_finance_actions').columns(['tenant_id', 'kind']).execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['billing_finance_actions', 'billing_grant_usage', 'billing_review_queue', 'billing_invoices', 'billing_sla_credits', 'billing_usage_pieces', 'billing_usage', 'billing_price_books', 'billing_tenants']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
