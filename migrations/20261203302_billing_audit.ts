import { type Kysely } from 'kysely';

/**
 * Billing's audit trail (docs/billing.md, "Audit trail and metrics"): per event the ledger read,
 * what became of it for each invoice it touched — applied, a duplicate, a conflict (an id seen
 * before with another payload), sent to review, or late usage. Folded from the log like every
 * billing table, so a rebuild gives the same rows; the audit routes and the billing metrics read it.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('billing_audit')
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .addColumn('invoice_id', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text')
    .addColumn('detail', 'text')
    .addPrimaryKeyConstraint('billing_audit_pk', ['sequence', 'invoice_id', 'outcome'])
    .execute();
  await db.schema.createIndex('billing_audit_invoice').on('billing_audit').columns(['invoice_id', 'sequence']).execute();
  await db.schema.createIndex('billing_audit_tenant').on('billing_audit').columns(['tenant_id', 'sequence']).execute();
  await db.schema.createIndex('billing_audit_outcome').on('billing_audit').columns(['outcome', 'type']).execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('billing_audit').execute();
}
