import { sql, type Transaction } from 'kysely';
import type { CheckpointDatabase, Queryable } from './schema';

/**
 * Projection checkpoints live in `projection_checkpoints` and are moved in the same
 * transaction as the projection's rows, so a crash repeats or skips nothing.
 */
export interface CheckpointRow {
  projection: string;
  last_sequence: number;
  status: 'running' | 'stalled' | 'rebuilding';
  error: string | null;
  stalled_sequence: number | null;
  updated_at: Date;
}

type Tx = Transaction<CheckpointDatabase>;

/** Locks and reads the checkpoint row for update, creating it at 0 when absent. */
export async function lockCheckpoint(trx: Tx, projection: string): Promise<number> {
  await trx
    .insertInto('projection_checkpoints')
    .values({ projection, last_sequence: 0, status: 'running' })
    .onConflict((oc) => oc.column('projection').doNothing())
    .execute();
  const row = await trx.selectFrom('projection_checkpoints').select('last_sequence').where('projection', '=', projection).forUpdate().executeTakeFirstOrThrow();
  return Number(row.last_sequence);
}

export async function advanceCheckpoint(trx: Tx, projection: string, sequence: number): Promise<void> {
  await trx
    .updateTable('projection_checkpoints')
    .set({ last_sequence: sequence, status: 'running', error: null, stalled_sequence: null, updated_at: sql`now()` })
    .where('projection', '=', projection)
    .execute();
}

export async function readCheckpoint(db: Queryable<CheckpointDatabase>, projection: string): Promise<CheckpointRow | undefined> {
  return await db.selectFrom('projection_checkpoints').selectAll().where('projection', '=', projection).executeTakeFirst();
}

export async function markStalled(db: Queryable<CheckpointDatabase>, projection: string, sequence: number, error: string): Promise<void> {
  await db
    .insertInto('projection_checkpoints')
    .values({ projection, last_sequence: 0, status: 'stalled', error, stalled_sequence: sequence })
    .onConflict((oc) => oc.column('projection').doUpdateSet({ status: 'stalled', error, stalled_sequence: sequence, updated_at: sql`now()` }))
    .execute();
}
