import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import { encodeEvent, Headers, makeEvent, subjectFor, type DomainEvent, type EventData, type EventMeta, type EventType, type Topology } from '@fastgpu/contracts';
import { currentTraceparent, injectTraceContext } from '@fastgpu/telemetry';

/** How long a publish is retried by default while JetStream does not answer (FASTGPU_PUBLISH_RETRY_MS). */
export const PUBLISH_RETRY_MS_DEFAULT = 15_000;
/** One attempt waits this long for its acknowledgement before the next is sent (same message id). */
export const PUBLISH_ATTEMPT_TIMEOUT_MS = 4_000;
/** What a client is asked to wait before retrying a request refused while the log is unavailable (seconds). */
export const EVENT_LOG_RETRY_AFTER_SECONDS = 5;

export interface PublisherOptions {
  /** Retry budget in ms while JetStream does not answer (0: one attempt). */
  retryMs?: number;
  /** Per-attempt acknowledgement timeout in ms. */
  attemptTimeoutMs?: number;
}

/**
 * The event log would not take a write within the retry budget: no stream leader (an election,
 * no quorum), JetStream not answering, or the connection down. The write may or may not be
 * stored; a retry of the same request republishes the same ids and stores each event once. An API
 * answers 503 with Retry-After (libs/http).
 */
export class EventLogUnavailableError extends Error {
  readonly retryAfterSeconds = EVENT_LOG_RETRY_AFTER_SECONDS;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventLogUnavailableError';
  }
}

export function isEventLogUnavailable(error: unknown): error is EventLogUnavailableError {
  return error instanceof EventLogUnavailableError || (error as { name?: unknown } | null)?.name === 'EventLogUnavailableError';
}

/**
 * Whether a failed publish may be sent again as is: nothing answered (timeout, no responders:
 * no stream leader yet), JetStream said it is unavailable (503), or the connection is between a
 * disconnect and its reconnect. A refusal of the message itself (wrong last sequence, too big,
 * no stream for the subject) is not.
 */
export function isRetryablePublishError(error: unknown): boolean {
  const e = error as { name?: unknown; message?: unknown; status?: unknown; cause?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  const name = String(e.name ?? '');
  const message = String(e.message ?? '');
  if (name === 'TimeoutError' || name === 'NoResponders' || name === 'JetStreamNotEnabled') return true;
  if (name === 'JetStreamApiError' && e.status === 503) return true;
  if (name === 'RequestError' && /timeout|no responders|disconnect/i.test(message)) return true;
  if (/temporarily unavailable|no suitable peers|insufficient resources|stream leader|cluster not available/i.test(message)) return true;
  return e.cause !== undefined && e.cause !== error && isRetryablePublishError(e.cause);
}

export interface PublishOptions {
  /** Optimistic concurrency on the event's subject (exact-subject header, nats-server 2.9+). */
  expectedLastSubjectSequence?: number;
}

export interface Published {
  sequence: number;
  duplicate: boolean;
}

/** Largest number of publishes awaited together; bounds memory and server pressure. */
export const PUBLISH_IN_FLIGHT_MAX = 1000;

function headersFor(event: DomainEvent): MsgHdrs {
  const h = natsHeaders();
  h.set(Headers.eventType, event.type);
  h.set(Headers.schemaVersion, String(event.schemaversion));
  if (event.tenantid) h.set(Headers.tenantId, event.tenantid);
  injectTraceContext(h);
  if (!h.has(Headers.traceparent) && event.traceparent) h.set(Headers.traceparent, event.traceparent);
  return h;
}

/**
 * Publishes domain events with `Nats-Msg-Id` = event id, so a retried publish is dropped by
 * the bus inside its duplicate window (consumers dedupe permanently by the same id).
 *
 * While JetStream does not answer (a stream leader killed and its replacement being elected, no
 * quorum, a reconnect) a publish is sent again with the same message id, with backoff, for up to
 * `retryMs`; then it fails with EventLogUnavailableError. An acknowledgement lost to a leader
 * change is therefore harmless: the retry is acknowledged as a duplicate with the first sequence.
 */
export class EventPublisher {
  private readonly retryMs: number;
  private readonly attemptTimeoutMs: number;

  constructor(
    private readonly js: JetStreamClient,
    readonly topology: Topology,
    private readonly source: string,
    options: PublisherOptions = {},
  ) {
    this.retryMs = options.retryMs ?? PUBLISH_RETRY_MS_DEFAULT;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? PUBLISH_ATTEMPT_TIMEOUT_MS;
  }

  /** Builds an envelope for `type` on the subject the catalogue assigns it. */
  build<T extends EventType>(type: T, data: EventData<T>, meta: Omit<EventMeta, 'source'> & { source?: string }): DomainEvent<T> {
    return makeEvent(type, data, { ...meta, traceparent: meta.traceparent ?? currentTraceparent(), source: meta.source ?? this.source }, subjectFor(this.topology, type, data));
  }

  async publish(event: DomainEvent, options: PublishOptions = {}): Promise<Published> {
    const data = encodeEvent(event);
    const headers = headersFor(event);
    const deadline = Date.now() + this.retryMs;
    let delayMs = 50;
    for (let attempt = 1; ; attempt++) {
      try {
        const ack: PubAck = await this.js.publish(event.subject, data, {
          msgID: event.id,
          headers,
          timeout: Math.max(250, Math.min(this.attemptTimeoutMs, deadline - Date.now())),
          ...(options.expectedLastSubjectSequence !== undefined ? { expect: { lastSubjectSequence: options.expectedLastSubjectSequence } } : {}),
        });
        return { sequence: ack.seq, duplicate: ack.duplicate };
      } catch (error) {
        if (!isRetryablePublishError(error)) throw error;
        if (Date.now() + delayMs >= deadline) {
          throw new EventLogUnavailableError(`the event log did not acknowledge event ${event.id} on ${event.subject} after ${attempt} attempt(s) in ${this.retryMs} ms: ${(error as Error).message}`, { cause: error });
        }
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        delayMs = Math.min(delayMs * 2, 1000);
      }
    }
  }

  /** Publishes in order of acceptance with at most PUBLISH_IN_FLIGHT_MAX awaiting acks. */
  async publishAll(events: readonly DomainEvent[]): Promise<Published[]> {
    const results = new Array<Published>(events.length);
    for (let start = 0; start < events.length; start += PUBLISH_IN_FLIGHT_MAX) {
      const slice = events.slice(start, start + PUBLISH_IN_FLIGHT_MAX);
      const acks = await Promise.all(slice.map((event) => this.publish(event)));
      acks.forEach((ack, i) => (results[start + i] = ack));
    }
    return results;
  }
}

/**
 * True when JetStream refused a publish because the subject was not at the expected sequence
 * (API error 10071, by its code rather than its text). libs/eventsourcing re-exports it for
 * command handlers.
 */
export function isStreamVersionConflict(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamWrongLastSequence;
}
