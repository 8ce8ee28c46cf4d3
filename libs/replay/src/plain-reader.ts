import { DeliverPolicy } from '@nats-io/jetstream';
import { headerType, lastSequence } from '@fastgpu/messaging';
import { META_STRIDE, type RawBatch, type ThreadedReadOptions } from './threaded-reader';

/** What a replay reads a range of the events stream with: the plain reader below, or the reader thread. */
export type RangeReadOptions = ThreadedReadOptions;
export type RangeReader = (options: RangeReadOptions) => Promise<void>;

/** Longest the plain reader waits for the next message by default before it reports the range as stuck. */
export const PLAIN_READ_IDLE_TIMEOUT_MS_DEFAULT = 60_000;

/**
 * The reference range reader: [fromSequence, toSequence] of the events stream read on this
 * thread through the client's ordered consumer, with the client's header map deciding which
 * messages are left out (a type header naming a type the projection does not read) — the rule
 * the live runner applies. It hands over the same `RawBatch`es as `readRangeOnThread`
 * (threaded-reader.ts), the benchmark-driven twin that moves the client's protocol work to a
 * worker thread; range-readers.spec.ts proves both give the same events for any range.
 *
 * A batch ends when it holds `batchMax` messages, at the range's end, or at a message with nothing
 * pending after it; a range whose last sequences were deleted ends there when they were stored
 * before the read began (also when the whole range was deleted). No message for `idleTimeoutMs`
 * fails the read.
 */
export async function readRangeOnMainThread(options: RangeReadOptions): Promise<void> {
  const { bus, fromSequence, toSequence } = options;
  if (fromSequence > toSequence) return;
  const stream = bus.topology.streams.events;
  const types = [...options.wanted];
  const typeIndex = new Map<string, number>(types.map((type, index) => [type, index]));
  const idleTimeoutMs = options.idleTimeoutMs ?? PLAIN_READ_IDLE_TIMEOUT_MS_DEFAULT;
  // Read before the consumer starts: every sequence up to it was stored by then, so one that is
  // not pending after a delivery was deleted (a later publish cannot be mistaken for it).
  const lastAtStart = await lastSequence(bus, stream);
  // Nothing stored from the range's start on (all of it deleted), yet its end was stored: no
  // delivery would come to end it, so it ends here, with an empty batch at its end.
  // (The server's message get by sequence with next_by_subj answers the first message stored at or after it.)
  const firstStoredFrom = { seq: fromSequence, next_by_subj: '>' };
  if (lastAtStart >= toSequence && (await bus.jsm.streams.getMessage(stream, firstStoredFrom)) === null) {
    return options.onBatch({ lastSequence: toSequence, count: 0, bodies: new Uint8Array(0), meta: new Float64Array(0), subjects: [], types }, () => undefined);
  }
  const consumer = await bus.js.consumers.get(stream, fromSequence > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSequence } : { deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume({ max_messages: options.pullMax, ...(options.pullExpiresMs === undefined ? {} : { expires: options.pullExpiresMs }) });
  const iterator = messages[Symbol.asyncIterator]();

  let bodies: Uint8Array[] = [];
  let meta: number[] = [];
  let subjects: string[] = [];
  const flush = async (lastSequenceCovered: number) => {
    const packed = new Uint8Array(bodies.reduce((total, body) => total + body.length, 0));
    const metaArray = new Float64Array(meta);
    let offset = 0;
    bodies.forEach((body, i) => {
      packed.set(body, offset);
      metaArray[i * META_STRIDE + 2] = offset;
      metaArray[i * META_STRIDE + 3] = offset + body.length;
      offset += body.length;
    });
    const batch: RawBatch = { lastSequence: lastSequenceCovered, count: bodies.length, bodies: packed, meta: metaArray, subjects, types };
    bodies = [];
    meta = [];
    subjects = [];
    await options.onBatch(batch, () => undefined);
  };

  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<'idle'>((resolve) => (timer = setTimeout(() => resolve('idle'), idleTimeoutMs)));
      const next = await Promise.race([iterator.next(), idle]);
      clearTimeout(timer);
      if (next === 'idle') throw new Error(`the stream reader had no message for ${idleTimeoutMs} ms before sequence ${toSequence}`);
      if (next.done) throw new Error(`the stream reader ended before sequence ${toSequence}`);
      const m = next.value;
      // Past the range's end (its last sequences were deleted): the range is complete without it.
      if (m.seq > toSequence) return await flush(toSequence);
      const type = headerType(m.headers);
      const index = type === undefined ? -1 : typeIndex.get(type);
      if (index !== undefined) {
        // sequence, stream time ms, body start and end (set by flush), type index
        meta.push(m.seq, m.time.getTime(), 0, 0, index);
        bodies.push(m.data);
        subjects.push(m.subject);
      }
      if (m.seq >= toSequence) return await flush(m.seq);
      if (m.info.pending === 0) {
        // Nothing stored after this message: the rest of the range was deleted, or is still to come.
        if (lastAtStart >= toSequence) return await flush(toSequence);
        await flush(m.seq);
      } else if (bodies.length >= options.batchMax) {
        await flush(m.seq);
      }
    }
  } finally {
    // Ends the iteration first: close() waits for an iterator nobody pulls from any more.
    await iterator.return?.();
    await messages.close();
  }
}
