import { sql } from 'kysely';
import type { StoredEvent } from '@fastgpu/contracts';
import { lockCheckpoint, type AnyDatabase } from '@fastgpu/db';
import type { Bus, Projection, ProjectionContext } from '@fastgpu/messaging';
import { decodeRawBatch, READER_PULL_MESSAGES_MAX, readRangeOnThread } from './threaded-reader';

/** Longest wait between retries of a rebuild batch that failed to apply. */
export const REPLAY_RETRY_DELAY_MS_MAX = 30_000;
/** Longest the alignment read may go without a message before it is reported as stuck. */
export const ALIGN_READ_IDLE_TIMEOUT_MS = 60_000;

export interface PipelinedReplayOptions {
  bus: Bus;
  db: AnyDatabase;
  projection: Projection;
  checkpointName: string;
  context: ProjectionContext;
  fromSequence: number;
  toSequence: number;
  batchMax: number;
  /** After each committed batch: its last sequence and how many events it applied. */
  onApplied(lastSequence: number, eventsApplied: number): void;
  /** After each failed attempt (the batch is retried with backoff); throwing gives up. */
  onFailed(error: Error): void;
}

/**
 * Replays [fromSequence, toSequence] into a projection, each batch in one transaction with its
 * checkpoint (so a kill -9 resumes after the last commit), pipelined: the next batch is read (on
 * a worker thread) and decoded while Postgres applies the current one, one batch in flight. A
 * batch that fails is retried with backoff, never skipped. Returns the last applied sequence.
 */
export async function replayPipelined(options: PipelinedReplayOptions): Promise<number> {
  const { db, projection, checkpointName, context, toSequence } = options;
  let lastApplied = options.fromSequence - 1;
  let applying: Promise<void> = Promise.resolve();
  let gaveUp: unknown;

  const applyBatch = async (events: StoredEvent[], lastSequence: number): Promise<void> => {
    for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, REPLAY_RETRY_DELAY_MS_MAX)) {
      try {
        let applied = 0;
        await db.transaction().execute(async (trx) => {
          const checkpoint = await lockCheckpoint(trx, checkpointName);
          const fresh = events.filter((e) => e.sequence > checkpoint);
          if (fresh.length) await projection.apply(trx, fresh, context);
          applied = fresh.length;
          if (lastSequence > checkpoint) {
            await trx
              .updateTable('projection_checkpoints')
              .set({ last_sequence: lastSequence, status: 'rebuilding', error: null, stalled_sequence: null, updated_at: sql`now()` })
              .where('projection', '=', checkpointName)
              .execute();
          }
        });
        lastApplied = lastSequence;
        options.onApplied(lastSequence, applied);
        return;
      } catch (error) {
        options.onFailed(error as Error);
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
  };

  // The reader thread reads ahead (a few batches at most) while this thread decodes the previous
  // batch and Postgres applies the one before: three stages at once, one batch in flight each.
  await readRangeOnThread({
    bus: options.bus,
    fromSequence: options.fromSequence,
    toSequence,
    batchMax: options.batchMax,
    pullMax: READER_PULL_MESSAGES_MAX,
    wanted: projection.types,
    onBatch: async (batch, release) => {
      const events = await decodeRawBatch(batch, projection.types);
      release();
      await applying;
      if (gaveUp) throw gaveUp;
      applying = applyBatch(events, batch.lastSequence).catch((error: unknown) => {
        gaveUp = error;
      });
      // The last batch must be committed before the range counts as read.
      if (batch.lastSequence >= toSequence) await applying;
      if (gaveUp) throw gaveUp;
    },
  });
  await applying;
  if (gaveUp) throw gaveUp;
  return lastApplied;
}
