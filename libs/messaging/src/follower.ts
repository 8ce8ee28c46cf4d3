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
   * Called with consecutive messages in stream order. The next batch is not read until the
   * promise settles (backpressure). A batch is closed when full or when nothing more is buffered.
   */
  onBatch(messages: JsMsg[]): Promise<void>;
}

/**
 * Follows a stream from a sequence with an ordered consumer: no acks, no server-side state to
 * clean up; the caller's own checkpoint is the cursor. Used by projections, replays and the
 * scheduler's in-memory fold.
 */
export class StreamFollower {
  private messages?: ConsumerMessages;
  private stopped = false;
  private loop?: Promise<void>;

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
    this.messages = await consumer.consume({ max_messages: READ_BUFFER_MESSAGES_MAX });
    this.loop = this.run(this.messages);
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    const batchMax = this.options.batchMax ?? READ_BATCH_MESSAGES_MAX;
    let batch: JsMsg[] = [];
    for await (const m of messages) {
      if (this.stopped) break;
      batch.push(m);
      // Close the batch when it is full or when nothing more is buffered client-side. While a
      // batch is being applied new messages queue up, so under load batches grow by themselves
      // (one transaction for many events) and when idle a lone message goes through at once.
      // The server's pending count is not used: it is 0 for every live message.
      if (batch.length >= batchMax || messages.getPending() === 0 || m.info.pending === 0 && messages.getPending() <= 1) {
        const full = batch;
        batch = [];
        await this.options.onBatch(full);
      }
    }
  }

  /** Resolves when the follower stopped (after stop()). */
  get done(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
  }
}

/** The last sequence currently in a stream (0 when empty). */
export async function lastSequence(bus: Bus, stream: string): Promise<number> {
  const info = await bus.jsm.streams.info(stream);
  return info.state.last_seq;
}

