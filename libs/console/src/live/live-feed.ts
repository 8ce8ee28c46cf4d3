import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { headerType, judgeMessage, type Bus } from '@fastgpu/messaging';
import { liveDataFor, liveTypesFor, mayReceive, type LiveViewer } from './live-audience';

/** A comment line every this often keeps proxies and the browser from closing a quiet feed. */
export const LIVE_HEARTBEAT_MS = 15_000;
/**
 * Bytes a feed may have queued on its socket (written, not yet taken by the client). Past this
 * the client is too slow for the log: it is dropped (it reconnects with Last-Event-ID), so a slow
 * reader costs the server at most this much memory, never the log's backlog.
 */
export const LIVE_SOCKET_BUFFER_BYTES_MAX = 1024 * 1024;
/** Messages the feed's consumer pulls ahead of the writer. */
export const LIVE_PULL_MESSAGES_MAX = 256;
/** The server deletes a feed's consumer this long after its reader vanished (a process that died without deleting it). */
export const LIVE_CONSUMER_INACTIVE_MS = 30_000;

/** One message of the live feed, as the `data:` line carries it. */
export interface LiveMessage {
  seq: number;
  type: string;
  time: string;
  tenantId: string | null;
  subject: string;
  data: unknown;
}

/** An SSE message: `id` the stream sequence (what Last-Event-ID resumes after), `event` the type, `data` one JSON line. */
export function liveEventText(message: LiveMessage): string {
  // JSON.stringify escapes CR and LF, the only line ends of SSE: the data is one line.
  return `id: ${message.seq}\nevent: ${message.type}\ndata: ${JSON.stringify(message)}\n\n`;
}

export const LIVE_HEARTBEAT_TEXT = ': heartbeat\n\n';

/** Where a feed writes: the response socket. */
export interface LiveSink {
  /** Queues text on the socket; never waits. */
  write(text: string): void;
  /** Bytes written and not yet taken by the client. */
  readonly bufferedBytes: number;
  /** Ends the response (the client learns the feed ended and may reconnect). */
  end(): void;
}

export type LiveEndReason = 'client-closed' | 'slow-client' | 'consumer-ended' | 'server-stopped';

/**
 * One viewer's live feed: an ephemeral JetStream consumer on the event stream from a sequence,
 * each message judged by the one rule projections use (`judgeMessage`: type header, JSON,
 * envelope, payload) and by the viewer's audience (`mayReceive`), written as SSE. A message that
 * does not decode is skipped here (the consumers that read it dead-letter it). The consumer is
 * deleted when the feed ends, however it ends.
 */
export class LiveFeed {
  private readonly types: ReadonlySet<string>;
  private messages?: ConsumerMessages;
  private consumerName?: string;
  private heartbeat?: NodeJS.Timeout;
  private ended = false;
  /** The response is streaming (run was called): ending the feed ends it. */
  private running = false;
  private endReason?: LiveEndReason;
  private readonly finished: Promise<LiveEndReason>;
  private resolveFinished!: (reason: LiveEndReason) => void;
  /** Events written to the client. */
  sent = 0;

  constructor(
    private readonly bus: Bus,
    private readonly viewer: LiveViewer,
    private readonly sink: LiveSink,
  ) {
    this.types = liveTypesFor(viewer);
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  /** The sequence a feed starts at when the client names none: the next event appended. */
  static async nowSequence(bus: Bus): Promise<number> {
    const info = await bus.jsm.streams.info(bus.topology.streams.events);
    return info.state.last_seq + 1;
  }

  /** Creates the consumer, refusing what the server did not take; nothing is written yet. */
  async open(fromSequence: number): Promise<void> {
    const stream = this.bus.topology.streams.events;
    const info = await this.bus.jsm.consumers.add(stream, {
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSequence),
      inactive_threshold: nanos(LIVE_CONSUMER_INACTIVE_MS),
      mem_storage: true,
      num_replicas: 1,
    });
    this.consumerName = info.name;
    if (info.config.ack_policy !== AckPolicy.None || info.config.deliver_policy !== DeliverPolicy.StartSequence || info.config.opt_start_seq !== Math.max(1, fromSequence)) {
      await this.deleteConsumer();
      throw new Error(`live feed consumer ${info.name} was not created as asked (${JSON.stringify(info.config)})`);
    }
  }

  /** Starts reading and writing (after the response's headers are out). */
  async run(): Promise<void> {
    if (!this.consumerName || this.ended) return;
    this.running = true;
    const consumer = await this.bus.js.consumers.get(this.bus.topology.streams.events, this.consumerName);
    this.messages = await consumer.consume({ max_messages: LIVE_PULL_MESSAGES_MAX });
    this.heartbeat = setInterval(() => this.write(LIVE_HEARTBEAT_TEXT), LIVE_HEARTBEAT_MS);
    this.heartbeat.unref();
    void this.read(this.messages);
  }

  /** Resolves with why the feed ended, once its consumer is gone. */
  get done(): Promise<LiveEndReason> {
    return this.finished;
  }

  private async read(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const m of messages) {
        if (this.ended) break;
        this.deliver(m);
      }
      await this.stop('consumer-ended');
    } catch {
      await this.stop('consumer-ended');
    }
  }

  private deliver(m: JsMsg): void {
    const verdict = judgeMessage(m.data, headerType(m.headers), this.types);
    if (verdict.kind !== 'event') return;
    const event = verdict.event;
    if (!mayReceive(this.viewer, this.types, event)) return;
    this.sent++;
    this.write(liveEventText({ seq: m.seq, type: event.type, time: event.time, tenantId: event.tenantid, subject: m.subject, data: liveDataFor(this.viewer, event) }));
  }

  private write(text: string): void {
    if (this.ended) return;
    if (this.sink.bufferedBytes > LIVE_SOCKET_BUFFER_BYTES_MAX) {
      void this.stop('slow-client');
      return;
    }
    this.sink.write(text);
  }

  /** Ends the feed: stops reading, deletes the consumer, ends the response. Safe to call more than once. */
  async stop(reason: LiveEndReason): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.endReason = reason;
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.messages?.close().catch(() => undefined);
    await this.deleteConsumer();
    if (this.running && reason !== 'client-closed') this.sink.end();
    this.resolveFinished(this.endReason);
  }

  private async deleteConsumer(): Promise<void> {
    if (!this.consumerName) return;
    await this.bus.jsm.consumers.delete(this.bus.topology.streams.events, this.consumerName).catch(() => undefined);
  }
}
