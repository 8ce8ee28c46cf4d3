import { type Kysely } from 'kysely';

/**
 * Billing review queue decisions (docs/billing.md, "Late usage in the review queue"): an item of
 * usage keeps the piece it would bill (GPU model, capacity, GPUs, interval and its allocation), so
 * finance can bill it onto an open invoice (`LateUsageBilled`) or dismiss it (`LateUsageDismissed`);
 * the decision is recorded on the item. Items queued before this migration have no piece stored:
 * a usage item's piece is then recomputed from its usage record.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  let table = db.schema.alterTable('billing_review_queue');
  for (const [name, type] of [
    ['gpu_model', 'text'],
    ['capacity_type', 'text'],
    ['gpus', 'integer'],
    ['start_ms', 'bigint'],
    ['end_ms', 'bigint'],
    ['allocation_start_ms', 'bigint'],
    ['allocation_end_ms', 'bigint'],
    ['interrupted', 'boolean'],
    ['resolution', 'text'],
    ['resolved_invoice_id', 'text'],
    ['resolved_event_id', 'text'],
    ['resolved_sequence', 'bigint'],
  ] as const) {
    await table.addColumn(name, type).execute();
    table = db.schema.alterTable('billing_review_queue');
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const name of ['gpu_model', 'capacity_type', 'gpus', 'start_ms', 'end_ms', 'allocation_start_ms', 'allocation_end_ms', 'interrupted', 'resolution', 'resolved_invoice_id', 'resolved_event_id', 'resolved_sequence']) {
    await db.schema.alterTable('billing_review_queue').dropColumn(name).execute();
  }
}
