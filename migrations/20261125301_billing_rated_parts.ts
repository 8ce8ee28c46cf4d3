import type { Kysely } from 'kysely';

/**
 * Billing: each usage piece on an invoice, split at price-version changes and with its
 * increment and minimum applied by libs/money, as it stands under the price versions known so far.
 * A period run sums these in SQL per line instead of reading every piece; a new price version
 * re-rates the pieces of draft invoices it reaches. Rows without a price keep a null version.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('billing_rated_parts')
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('piece', 'integer', (c) => c.notNull())
    .addColumn('part', 'integer', (c) => c.notNull())
    .addColumn('invoice_id', 'text', (c) => c.notNull())
    .addColumn('service_period', 'text', (c) => c.notNull())
    .addColumn('gpu_model', 'text', (c) => c.notNull())
    .addColumn('capacity_type', 'text', (c) => c.notNull())
    .addColumn('interrupted', 'boolean', (c) => c.notNull())
    .addColumn('price_book_id', 'text')
    .addColumn('version', 'integer')
    .addColumn('start_ms', 'bigint', (c) => c.notNull())
    .addColumn('billed_gpu_ms', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('billing_rated_parts_pk', ['event_id', 'piece', 'part'])
    .execute();
  await db.schema.createIndex('billing_rated_parts_invoice').on('billing_rated_parts').column('invoice_id').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('billing_rated_parts').ifExists().execute();
}
