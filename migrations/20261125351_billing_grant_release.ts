import type { Kysely } from 'kysely';

/**
 * Billing: voiding an invoice returns the prepaid credit it used. The use stays recorded (an
 * invoice finalized in between still rebuilds with the balance it saw); `released_sequence` is the
 * stream sequence of the InvoiceVoided from which the amount is available again.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_grant_usage').addColumn('released_sequence', 'bigint').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_grant_usage').dropColumn('released_sequence').execute();
}
