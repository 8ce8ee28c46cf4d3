import { sql, type Kysely } from 'kysely';

/**
 * Billing: draft deletion and void-with-reissue (docs/billing.md, "Deleting a draft, reissuing a
 * void invoice"). A tenant's period may now have several invoices over time — a void one and the
 * replacement reissued for it — so (tenant, period) is unique only among invoices not replaced.
 * A deleted draft leaves billing_invoices (it never had a number) for billing_deleted_invoices,
 * which names the draft that succeeds it. A replacement carries copies of the SLA credits of the
 * invoice it replaces, so a credit id is no longer unique across invoices.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_invoices').dropConstraint('billing_invoices_tenant_period').execute();
  await db.schema.alterTable('billing_invoices').addColumn('replaces_invoice_id', 'text').execute();
  await db.schema.alterTable('billing_invoices').addColumn('replaced_by_invoice_id', 'text').execute();
  await db.schema.alterTable('billing_invoices').addColumn('replaced_sequence', 'bigint').execute();
  await sql`CREATE UNIQUE INDEX billing_invoices_current ON billing_invoices (tenant_id, period) WHERE replaced_by_invoice_id IS NULL`.execute(db);

  await db.schema
    .createTable('billing_deleted_invoices')
    .addColumn('invoice_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('period', 'text', (c) => c.notNull())
    .addColumn('usage', 'text', (c) => c.notNull())
    .addColumn('successor_invoice_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull().unique())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('deleted_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('billing_deleted_invoices_period').on('billing_deleted_invoices').columns(['tenant_id', 'period', 'sequence']).execute();

  await db.schema.alterTable('billing_sla_credits').dropConstraint('billing_sla_credits_credit_id_key').execute();
  await db.schema.createIndex('billing_sla_credits_credit').on('billing_sla_credits').column('credit_id').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('billing_sla_credits_credit').execute();
  await db.schema.alterTable('billing_sla_credits').addUniqueConstraint('billing_sla_credits_credit_id_key', ['credit_id']).execute();
  await db.schema.dropTable('billing_deleted_invoices').execute();
  await db.schema.dropIndex('billing_invoices_current').execute();
  await db.schema.alterTable('billing_invoices').dropColumn('replaced_sequence').execute();
  await db.schema.alterTable('billing_invoices').dropColumn('replaced_by_invoice_id').execute();
  await db.schema.alterTable('billing_invoices').dropColumn('replaces_invoice_id').execute();
  await db.schema.alterTable('billing_invoices').addUniqueConstraint('billing_invoices_tenant_period', ['tenant_id', 'period']).execute();
}
