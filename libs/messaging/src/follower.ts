import { DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { Bus } from './bus';

/** Messages buffered by an ordered consumer at once; bounds memory while reading the log. */
export const READ_BUFFER_MESSAGES_MAX = 5000;
/** Messages handed to a batch callback at most. */
export const READ_BATCH_MESSAGES_MAX = 1000;

export interface FollowOptions {
  stream: string;
  /** First stream sequence to deliver (1 = the whole log). */
  fromSequence: number;
  filterSubject?: string;
  batchMax?: number;
  /**
   * Called with consecutive messages in stream order. The next batch is not handed over until
   * the promise settles (backpressure). A batch is everything delivered and not yet handed over,
   * up to `batchMax`: it never waits for a message that has not arrived.
   */
  onBatch(messages: JsMsg[]): Promise<void>;
}

/**
 * Follows a stream from a sequence with an ordered consumer: no acks, no server-side state to
 * clean up; the caller's own checkpoint is the cursor. Used by projections, replays and the
 * scheduler's in-memory fold.
 *
 * Two loops share one queue that this class counts itself: the reader moves every delivered
 * message into the queue as it arrives; the applier hands the whole queue (up to `batchMax`) to
 * `onBatch` whenever it is free. So a batch ends on what was actually delivered, never on the
 * client library's pending estimate: that count includes its own queued pull requests as if
 * they were messages, so after a burst the last events waited for the next one to arrive (issue
 * 16: billing 406 events behind for minutes on a quiet stream, `invoices verify` hanging).
 * Under load, messages queue up while a batch is applied, so batches grow by themselves; when
 * idle, a lone message goes through at once.
 */
export class StreamFollower {
  private messages?: ConsumerMessages;
  private stopped = false;
  private loop?: Promise<void>;
  private readonly queue: JsMsg[] = [];
  private readerEnded = false;
  private wakeApplier?: () => void;
  private wakeReader?: () => void;

  constructor(
    private readonly bus: Bus,
    private readonly options: FollowOptions,
  ) {}

  async start(): Promise<void> {
    const { stream, fromSequence, filterSubject } = this.options;
    const consumer = await this.bus.js.consumers.get(stream, {
      ...(fromSequence > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSequence } : { deliver_policy: DeliverPolicy.All }),
      ...(filterSubject ? { filter_subjects: filterSubject } : {}),
    });
    const messages = await consumer.consume({ max_messages: READ_BUFFER_MESSAGES_MAX });
    this.messages = messages;
    const reading = this.read(messages);
    const applying = this.apply();
    // The applier's failure (an onBatch that throws) stops the reader too, as a broken loop did before.
    this.loop = Promise.all([reading, applying.catch(async (error: unknown) => {
      this.stopped = true;
      await messages.close().catch(() => undefined);
      this.wakeReader?.();
      throw error;
    })]).then(() => undefined);
  }

  /** Moves delivered messages into the queue, waiting while it holds READ_BUFFER_MESSAGES_MAX. */
  private async read(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const m of messages) {
        if (this.stopped) break;
        this.queue.push(m);
        this.wakeApplier?.();
        while (this.queue.length >= READ_BUFFER_MESSAGES_MAX && !this.stopped) await new Promise<void>((resolve) => (this.wakeReader = resolve));
      }
    } finally {
      this.readerEnded = true;
      this.wakeApplier?.();
    }
  }

  /** Hands the queue over in batches, one at a time. */
  private async apply(): Promise<void> {
    const batchMax = this.options.batchMax ?? READ_BATCH_MESSAGES_MAX;
    for (;;) {
      if (this.queue.length === 0 && !this.stopped && !this.readerEnded) {
        await new Promise<void>((resolve) => (this.wakeApplier = resolve));
        // Woken by the first message of a delivery: the rest of it is already parsed and reaches
        // the queue within this turn of the event loop, so the batch takes it along.
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (this.stopped) return;
      if (this.queue.length === 0) {
        if (this.readerEnded) return;
        continue;
      }
      const batch = this.queue.splice(0, batchMax);
      this.wakeReader?.();
      await this.options.onBatch(batch);
    }
  }

  /** Resolves when the follower stopped (after stop()). */
  get done(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeApplier?.();
    this.wakeReader?.();
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
  }
}

/** The last sequence currently in a stream (0 when empty). */
export async function lastSequence(bus: Bus, stream: string): Promise<number> {
  const info = await bus.jsm.streams.info(stream);
  return info.state.last_seq;
}
