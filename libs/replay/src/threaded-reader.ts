import { Worker } from 'node:worker_threads';
import { Headers, type EventType, type StoredEvent } from '@fastgpu/contracts';
import { judgeMessage, mustStopAt, type Bus } from '@fastgpu/messaging';

/** Numbers per message in RawBatch.meta (stream-reader.worker.mjs writes them). */
export const META_STRIDE = 5;

/**
 * A batch of raw messages read by the reader thread (stream-reader.worker.mjs): bodies packed in
 * one buffer, META_STRIDE numbers per message in `meta`: sequence, stream time ms, body start,
 * body end, and the type header as an index into `types` (-1: no header).
 */
export interface RawBatch {
  /** The last stream sequence the batch covers (messages the thread left out included). */
  lastSequence: number;
  count: number;
  bodies: Uint8Array;
  meta: Float64Array;
  subjects: string[];
  /** The types the reader was asked to keep: what the type indexes in `meta` refer to. */
  types: readonly string[];
}

/** The type header of the `index`-th message of a batch, if it has one. */
export function typeAt(batch: RawBatch, index: number): string | undefined {
  const at = batch.meta[index * META_STRIDE + 4]!;
  return at >= 0 ? batch.types[at] : undefined;
}

/** The stream sequence of the `index`-th message of a batch. */
export function sequenceAt(batch: RawBatch, index: number): number {
  return batch.meta[index * META_STRIDE]!;
}

/** Batches the reader thread may read ahead of the one being decoded: bounds memory. */
export const READER_BATCHES_AHEAD = 3;
/**
 * Messages the reader thread's consumer pulls at once. Larger than the main-thread reads': the
 * thread holds nothing else, and fewer pull requests cost nats-server less (~0.8 s of its CPU
 * per 1M events at 5,000 instead of 1,000).
 */
export const READER_PULL_MESSAGES_MAX = 5000;
/** Young generation of the reader thread's heap. */
export const READER_YOUNG_GENERATION_MB = 8;
/** Longest wait, after the last batch, for the reader thread to delete its consumer and report the end. */
export const READER_CLEANUP_WAIT_MS = 5_000;
/** Messages decoded between two chances for I/O callbacks (the batch in flight's database answers) to run. */
export const DECODE_YIELD_EVERY_MESSAGES = 250;

const readerUrl = new URL('./stream-reader.worker.mjs', import.meta.url);

export interface ThreadedReadOptions {
  bus: Bus;
  fromSequence: number;
  toSequence: number;
  batchMax: number;
  /** Messages the reader's consumer pulls at once. */
  pullMax: number;
  /** Messages whose type header names another type are left out by the reader thread. */
  wanted: ReadonlySet<EventType>;
  idleTimeoutMs?: number;
  /** How long each pull waits on the server (default 30 s); a consumer silent past it is replaced. */
  pullExpiresMs?: number;
  /**
   * Called with each batch in stream order; call `release` once it is decoded, which lets the
   * reader send one more batch and hands the batch's buffers back to it for reuse (the batch
   * reads as empty from then on). Resolves before the next batch is handed over.
   */
  onBatch(batch: RawBatch, release: () => void): Promise<void>;
}

/**
 * Reads [fromSequence, toSequence] of the events stream on a worker thread, so the NATS client's
 * protocol work runs beside the caller's decoding, folding and writing instead of between them.
 * Returns once the batch holding `toSequence` is handled; fails when the reader does.
 *
 * A benchmark-driven fast path: its plain reference, to read first, is `readRangeOnMainThread`
 * (plain-reader.ts), with the same options and batches; range-readers.spec.ts proves both give
 * the same events. It exists for `npm run bench -- metering`, line "replay into Postgres (npm run
 * replay -- usage)" and its replay/raw ratio (target >= 0.5): on one thread the client's protocol
 * parsing ran between the decode and the database writes. Replays use it by default
 * (`RebuildOptions.reader` / `PipelinedReplayOptions.reader` choose).
 */
export async function readRangeOnThread(options: ThreadedReadOptions): Promise<void> {
  const { bus, fromSequence, toSequence } = options;
  if (fromSequence > toSequence) return;
  const types = [...options.wanted];
  const worker = new Worker(readerUrl, {
    // The reader's garbage is short-lived message wrappers: a small young generation is enough,
    // whatever semi-space the process was started with (it would apply to every thread's heap).
    resourceLimits: { maxYoungGenerationSizeMb: READER_YOUNG_GENERATION_MB },
    workerData: {
      natsUrl: bus.natsUrl,
      stream: bus.topology.streams.events,
      fromSequence,
      toSequence,
      batchMax: options.batchMax,
      pullMax: options.pullMax,
      typeHeader: Headers.eventType,
      wantedTypes: types,
      idleTimeoutMs: options.idleTimeoutMs,
      pullExpiresMs: options.pullExpiresMs,
      batchesAhead: READER_BATCHES_AHEAD,
    },
  });
  const queue: RawBatch[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  worker.on('message', (message: { kind: 'batch'; lastSequence: number; count: number; bodies: ArrayBuffer; meta: ArrayBuffer; subjects: string[] } | { kind: 'end' } | { kind: 'error'; message: string }) => {
    if (message.kind === 'batch') {
      queue.push({ lastSequence: message.lastSequence, count: message.count, bodies: new Uint8Array(message.bodies), meta: new Float64Array(message.meta), subjects: message.subjects, types });
    } else if (message.kind === 'end') {
      ended = true;
    } else {
      failure ??= new Error(message.message);
    }
    wake?.();
  });
  worker.on('error', (error) => {
    failure ??= error;
    wake?.();
  });
  let exited = false;
  worker.on('exit', (code) => {
    exited = true;
    if (!ended) failure ??= new Error(`the stream reader thread stopped (exit code ${code}) before sequence ${toSequence}`);
    wake?.();
  });
  try {
    for (;;) {
      while (queue.length === 0 && failure === undefined && !ended) await new Promise<void>((resolve) => (wake = resolve));
      const batch = queue.shift();
      if (batch) {
        let released = false;
        await options.onBatch(batch, () => {
          if (released) return;
          released = true;
          // The buffers go back to the reader for reuse: the batch's bytes are unreadable from here on.
          const { buffer: bodies } = batch.bodies;
          const { buffer: meta } = batch.meta;
          worker.postMessage({ kind: 'credit', bodies, meta }, [bodies as ArrayBuffer, meta as ArrayBuffer]);
        });
        if (batch.lastSequence >= toSequence) {
          // The thread deletes its consumer before it reports the end; a slow server only delays
          // that (the consumer also expires on its own).
          let waited = false;
          const givenUp = setTimeout(() => {
            waited = true;
            wake?.();
          }, READER_CLEANUP_WAIT_MS);
          while (!ended && failure === undefined && !exited && !waited) await new Promise<void>((resolve) => (wake = resolve));
          clearTimeout(givenUp);
          return;
        }
        continue;
      }
      if (failure) throw failure;
      throw new Error(`the stream reader ended before sequence ${toSequence}`);
    }
  } finally {
    worker.postMessage({ kind: 'stop' });
    await worker.terminate();
  }
}

/**
 * A replay cannot go past this event: it names the sequence, the event (when it can be read) and
 * the reason, for the operator (`npm run replay` exits with code 3 and prints it).
 */
export class EventNotAppliedError extends Error {
  constructor(
    readonly sequence: number,
    readonly reason: string,
    readonly kind: 'undecodable' | 'unappliable',
    readonly eventId?: string,
    readonly eventType?: string,
  ) {
    const named = [eventId && `event ${eventId}`, eventType].filter(Boolean).join(', ');
    super(`cannot apply sequence ${sequence}${named ? ` (${named})` : ''}, ${kind}: ${reason}`);
    this.name = 'EventNotAppliedError';
  }
}

/**
 * Decodes a raw batch by the live runner's rule (`judgeMessage`), yielding to I/O now and then so
 * the batch in flight keeps talking to the database. A message that does not decode is left out
 * (the live runner dead-letters it).
 */
export async function decodeRawBatch(batch: RawBatch, wanted: ReadonlySet<EventType>): Promise<StoredEvent[]> {
  return (await decodeRawBatchUntilStop(batch, wanted, false)).events;
}

/**
 * `decodeRawBatch` for a projection that may stop on undecodable events (money): with
 * `stopsOnUndecodable`, decoding ends at the first message that does not decode and that it may
 * read, returned as `stop` with the events before it, so a replay applies those and stops there,
 * as the live runner does.
 */
export async function decodeRawBatchUntilStop(batch: RawBatch, wanted: ReadonlySet<EventType>, stopsOnUndecodable: boolean): Promise<{ events: StoredEvent[]; stop?: EventNotAppliedError }> {
  const events: StoredEvent[] = [];
  const { bodies, meta, subjects } = batch;
  for (let i = 0; i < batch.count; i++) {
    if (i > 0 && i % DECODE_YIELD_EVERY_MESSAGES === 0) await new Promise((resolve) => setImmediate(resolve));
    const at = i * META_STRIDE;
    const verdict = judgeMessage(bodies.subarray(meta[at + 2], meta[at + 3]), typeAt(batch, i), wanted);
    if (verdict.kind === 'event') events.push({ sequence: meta[at]!, subject: subjects[i]!, event: verdict.event, receivedAtMs: meta[at + 1]! });
    else if (verdict.kind === 'reject' && stopsOnUndecodable && mustStopAt(verdict, wanted)) {
      return { events, stop: new EventNotAppliedError(meta[at]!, verdict.reason, 'undecodable', verdict.eventId, verdict.type) };
    }
  }
  return { events };
}
