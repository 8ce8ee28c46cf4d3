import { sql, type Kysely } from 'kysely';
import type { StoredEvent } from '@fastgpu/contracts';
import { isTransientDatabaseError, lockCheckpoint, type Database } from '@fastgpu/db';
import type { Bus, Projection, ProjectionContext } from '@fastgpu/messaging';
import type { RangeReader } from './plain-reader';
import { decodeRawBatchUntilStop, EventNotAppliedError, READER_PULL_MESSAGES_MAX, readRangeOnThread } from './threaded-reader';

/** Longest wait between retries of a rebuild batch that failed to apply. */
export const REPLAY_RETRY_DELAY_MS_MAX = 30_000;
/** Longest the alignment read may go without a message before it is reported as stuck. */
export const ALIGN_READ_IDLE_TIMEOUT_MS = 60_000;

export interface PipelinedReplayOptions {
  bus: Bus;
  db: Kysely<Database>;
  projection: Projection;
  checkpointName: string;
  context: ProjectionContext;
  fromSequence: number;
  toSequence: number;
  batchMax: number;
  /** How the log is read (default: the reader thread, readRangeOnThread; the plain reference is readRangeOnMainThread). */
  reader?: RangeReader;
  /** After each committed batch: its last sequence and how many events it applied. */
  onApplied(lastSequence: number, eventsApplied: number): void;
  /**
   * After each failed attempt that may succeed when retried (the database unreachable or busy):
   * the batch is retried with backoff; throwing gives up. A failure no retry can change ends the
   * replay at once with an EventNotAppliedError naming the event.
   */
  onFailed(error: Error): void;
}

/**
 * Replays [fromSequence, toSequence] into a projection, each batch in one transaction with its
 * checkpoint (so a kill -9 resumes after the last commit), pipelined: the next batch is read (on
 * a worker thread) and decoded while Postgres applies the current one, one batch in flight. A
 * batch that fails while the database is unreachable is retried with backoff, never skipped; one
 * that would fail on every retry is applied again one event at a time, and the replay stops at
 * the event that fails (EventNotAppliedError: sequence, event id, type, reason), as it does at an
 * undecodable event of a money projection. Returns the last applied sequence.
 */
export async function replayPipelined(options: PipelinedReplayOptions): Promise<number> {
  const { db, projection, checkpointName, context, toSequence } = options;
  let lastApplied = options.fromSequence - 1;
  let applying: Promise<void> = Promise.resolve();
  let gaveUp: unknown;

  /** Applies `events` and moves the checkpoint to `lastSequence` in one transaction; returns how many were fresh. */
  const commit = async (events: StoredEvent[], lastSequence: number, batchContext: ProjectionContext): Promise<number> => {
    let applied = 0;
    await db.transaction().execute(async (trx) => {
      const checkpoint = await lockCheckpoint(trx, checkpointName);
      const fresh = events.filter((e) => e.sequence > checkpoint);
      if (fresh.length) await projection.apply(trx, fresh, batchContext);
      applied = fresh.length;
      if (lastSequence > checkpoint) {
        await trx
          .updateTable('projection_checkpoints')
          .set({ last_sequence: lastSequence, status: 'rebuilding', error: null, stalled_sequence: null, updated_at: sql`now()` })
          .where('projection', '=', checkpointName)
          .execute();
      }
    });
    return applied;
  };

  /**
   * A batch failed the same way any retry would (not a database outage): applies it again one
   * event per transaction, reading the tables rather than trusting what the failed batch wrote,
   * so every event before the culprit is kept and the culprit is named. Returns normally when
   * every event applied on its own.
   */
  const locate = async (events: StoredEvent[], lastSequence: number, error: unknown): Promise<void> => {
    const careful: ProjectionContext = { ...context, ownsTables: false, bulkCopy: false };
    let applied = 0;
    for (const stored of events) {
      try {
        applied += await commit([stored], stored.sequence, careful);
      } catch (single) {
        if (isTransientDatabaseError(single)) throw single;
        throw new EventNotAppliedError(stored.sequence, (single as Error).message ?? String(single), 'unappliable', stored.event.id, stored.event.type);
      }
    }
    // The batch failed, its events did not: the failure was the batch's (e.g. its size); nothing is skipped.
    if (events.length === 0) throw error;
    applied += await commit([], lastSequence, careful);
    lastApplied = lastSequence;
    options.onApplied(lastSequence, applied);
  };

  const applyBatch = async (events: StoredEvent[], lastSequence: number): Promise<void> => {
    for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, REPLAY_RETRY_DELAY_MS_MAX)) {
      try {
        const applied = await commit(events, lastSequence, context);
        lastApplied = lastSequence;
        options.onApplied(lastSequence, applied);
        return;
      } catch (error) {
        // An event the projection cannot apply fails every retry: stop there and say which.
        if (!isTransientDatabaseError(error)) return locate(events, lastSequence, error);
        options.onFailed(error as Error);
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
  };

  // The reader thread reads ahead (a few batches at most) while this thread decodes the previous
  // batch and Postgres applies the one before: three stages at once, one batch in flight each.
  await (options.reader ?? readRangeOnThread)({
    bus: options.bus,
    fromSequence: options.fromSequence,
    toSequence,
    batchMax: options.batchMax,
    pullMax: READER_PULL_MESSAGES_MAX,
    wanted: projection.types,
    onBatch: async (batch, release) => {
      const { events, stop } = await decodeRawBatchUntilStop(batch, projection.types, projection.stopsOnUndecodable === true);
      release();
      await applying;
      if (gaveUp) throw gaveUp;
      // At an undecodable event of a money projection: what comes before it is applied, then the replay stops there.
      applying = applyBatch(events, stop ? stop.sequence - 1 : batch.lastSequence).catch((error: unknown) => {
        gaveUp = error;
      });
      if (stop) {
        await applying;
        throw gaveUp ?? stop;
      }
      // The last batch must be committed before the range counts as read.
      if (batch.lastSequence >= toSequence) await applying;
      if (gaveUp) throw gaveUp;
    },
  });
  await applying;
  if (gaveUp) throw gaveUp;
  return lastApplied;
}
