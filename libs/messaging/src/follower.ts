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

/** How often a follower checks that it is not stuck behind the stream (see StreamFollower). */
export const FOLLOW_WATCH_MS = 2000;

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
 *
 * On a cluster, an ordered consumer lives on one server (it has one replica); when that server
 * dies the client library waits for heartbeats and consumer info that never come (30 s and more
 * per try). So a watchdog compares, every FOLLOW_WATCH_MS while nothing is being delivered or
 * applied, what was delivered with the stream's last sequence: behind on two checks in a row, the
 * follower drops its consumer and opens a new one just after the last message it delivered
 * (a follower with a subject filter is not watched: the stream's last sequence says nothing of it).
 */
export class StreamFollower {
  private messages?: ConsumerMessages;
  private stopped = false;
  private loop?: Promise<void>;
  private readonly queue: JsMsg[] = [];
  private readerEnded = false;
  private wakeApplier?: () => void;
  private wakeReader?: () => void;
  /** The next stream sequence to deliver: a reopened consumer starts here. */
  private nextSequence: number;
  private applying = false;
  private deliveredSinceCheck = false;
  private behindChecks = 0;
  private watch?: NodeJS.Timeout;
  private checking = false;
  /** Consumers dropped by the watchdog and opened again. */
  reopened = 0;

  constructor(
    private readonly bus: Bus,
    private readonly options: FollowOptions,
  ) {
    this.nextSequence = Math.max(1, options.fromSequence);
  }

  private async open(): Promise<ConsumerMessages> {
    const { stream, filterSubject } = this.options;
    const fromSequence = this.nextSequence;
    const consumer = await this.bus.js.consumers.get(stream, {
      ...(fromSequence > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSequence } : { deliver_policy: DeliverPolicy.All }),
      ...(filterSubject ? { filter_subjects: filterSubject } : {}),
    });
    return consumer.consume({ max_messages: READ_BUFFER_MESSAGES_MAX });
  }

  async start(): Promise<void> {
    // The first consumer's failure (no such stream) is the caller's; later ones are retried.
    const first = await this.open();
    this.messages = first;
    const reading = this.read(first);
    const applying = this.apply();
    // The applier's failure (an onBatch that throws) stops the reader too, as a broken loop did before.
    this.loop = Promise.all([reading, applying.catch(async (error: unknown) => {
      this.stopped = true;
      await this.messages?.close().catch(() => undefined);
      this.wakeReader?.();
      throw error;
    })]).then(() => undefined);
    if (!this.options.filterSubject) {
      this.watch = setInterval(() => void this.check(), FOLLOW_WATCH_MS);
      this.watch.unref?.();
    }
  }

  /** Moves delivered messages into the queue, waiting while it holds READ_BUFFER_MESSAGES_MAX; reopens a dropped consumer. */
  private async read(first: ConsumerMessages): Promise<void> {
    let messages: ConsumerMessages | undefined = first;
    let delayMs = 200;
    try {
      while (!this.stopped) {
        if (!messages) {
          try {
            messages = await this.open();
            this.messages = messages;
            delayMs = 200;
          } catch {
            // No stream leader or meta leader yet (an election): try again shortly.
            await new Promise((resolve) => setTimeout(resolve, delayMs));
            delayMs = Math.min(delayMs * 2, 5000);
            continue;
          }
          if (this.stopped) break;
        }
        try {
          for await (const m of messages) {
            if (this.stopped) break;
            // A reopened consumer starts at nextSequence; anything older was delivered already.
            if (m.seq < this.nextSequence) continue;
            this.nextSequence = m.seq + 1;
            this.deliveredSinceCheck = true;
            this.queue.push(m);
            this.wakeApplier?.();
            while (this.queue.length >= READ_BUFFER_MESSAGES_MAX && !this.stopped) await new Promise<void>((resolve) => (this.wakeReader = resolve));
          }
        } catch {
          // The library gave up on this consumer; open another below.
        }
        messages = undefined;
      }
    } finally {
      this.readerEnded = true;
      this.wakeApplier?.();
    }
  }

  /** The watchdog: reopens the consumer when the stream holds more than was delivered and nothing moves. */
  private async check(): Promise<void> {
    if (this.stopped || this.checking) return;
    if (this.deliveredSinceCheck || this.applying || this.queue.length > 0) {
      this.deliveredSinceCheck = false;
      this.behindChecks = 0;
      return;
    }
    this.checking = true;
    try {
      const info = await this.bus.jsm.streams.info(this.options.stream);
      if (info.state.last_seq >= this.nextSequence && !this.deliveredSinceCheck) {
        if (++this.behindChecks >= 2) {
          this.behindChecks = 0;
          this.reopened++;
          // Ends the reader's iteration over it; the reader opens a new consumer at nextSequence.
          await this.messages?.close().catch(() => undefined);
        }
      } else {
        this.behindChecks = 0;
      }
    } catch {
      // The stream's state is not to be had now (an election): judge again next time.
    } finally {
      this.checking = false;
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
      this.applying = true;
      try {
        await this.options.onBatch(batch);
      } finally {
        this.applying = false;
      }
    }
  }

  /** Resolves when the follower stopped (after stop()). */
  get done(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.watch) clearInterval(this.watch);
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
