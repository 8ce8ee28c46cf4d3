import { createInbox, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { Headers, type DomainEvent } from '@fastgpu/contracts';
import { EventLogUnavailableError } from '@fastgpu/messaging';

/** Longest wait for the PubAcks of one batch. */
export const BATCH_ACK_TIMEOUT_MS = 10_000;

interface PubAckBody {
  error?: { description?: string };
  duplicate?: boolean;
}

export interface BatchPublishResult {
  stored: number;
  duplicates: number;
}

/**
 * The bytes `encodeEvent` writes (UTF-8 of the event's JSON, lone surrogates as U+FFFD), through
 * Buffer.from: small buffers are cut from a shared pool, about half the cost of TextEncoder per
 * event (tested equal to encodeEvent).
 */
export function eventBytes(event: DomainEvent): Uint8Array {
  return Buffer.from(JSON.stringify(event), 'utf8');
}

/** How long a batch's unacknowledged events are sent again while JetStream does not answer (same ids). */
export const BATCH_RETRY_MS = 15_000;

interface AttemptResult {
  /** Indexes (into the attempt's events) that were stored or found duplicate. */
  acknowledged: Set<number>;
  duplicates: number;
  /** Set when the server refused an event itself: not worth sending again. */
  refused?: Error;
  /** Set when some PubAcks did not come (no stream leader, timeout): worth sending again. */
  unanswered?: Error;
}

function attempt(nc: NatsConnection, events: readonly DomainEvent[], timeoutMs: number): Promise<AttemptResult> {
  const inbox = createInbox();
  const acknowledged = new Set<number>();
  let duplicates = 0;
  return new Promise<AttemptResult>((resolve) => {
    const finish = (result: Partial<AttemptResult>) => {
      clearTimeout(timer);
      sub.unsubscribe();
      resolve({ acknowledged, duplicates, ...result });
    };
    const timer = setTimeout(() => finish({ unanswered: new Error(`${events.length - acknowledged.size} of ${events.length} publishes were not acknowledged within ${timeoutMs} ms`) }), timeoutMs);
    const sub = nc.subscribe(`${inbox}.*`, {
      callback: (error, msg) => {
        const index = Number(msg?.subject.slice(inbox.length + 1));
        let ack: PubAckBody | undefined;
        try {
          ack = error ? undefined : msg.json<PubAckBody>();
        } catch {
          ack = undefined;
        }
        // No body: a 503 status (no responders: the stream has no leader now) or a lost reply.
        if (!ack) return finish({ unanswered: new Error(`publish not stored: ${error?.message ?? 'no PubAck'}`) });
        if (ack.error) {
          const description = ack.error.description ?? 'refused';
          const unavailable = /temporarily unavailable|no suitable peers|insufficient resources|cluster not available/i.test(description);
          return finish(unavailable ? { unanswered: new Error(`publish not stored: ${description}`) } : { refused: new Error(`publish not stored: ${description}`) });
        }
        if (acknowledged.has(index)) return;
        acknowledged.add(index);
        if (ack.duplicate) duplicates++;
        if (acknowledged.size === events.length) finish({});
      },
    });
    events.forEach((event, index) => {
      // A fresh header set: append writes what set would (set first deletes, scanning the keys).
      const h = natsHeaders();
      h.append(Headers.messageId, event.id);
      h.append(Headers.eventType, event.type);
      h.append(Headers.schemaVersion, String(event.schemaversion));
      if (event.tenantid) h.append(Headers.tenantId, event.tenantid);
      if (event.traceparent) h.append(Headers.traceparent, event.traceparent);
      nc.publish(event.subject, eventBytes(event), { reply: `${inbox}.${index}`, headers: h });
    });
  });
}

/**
 * A benchmark-driven second publisher; its plain reference is `EventPublisher.publish`
 * (libs/messaging publisher.ts), and ack-counting-publisher.spec.ts proves the two store the same
 * subjects, bodies and headers, once per id. It exists for `npm run bench -- metering`, line
 * "external ingestion: POST /v1/events" against "raw JetStream publish of the same events" (one
 * request per event cost most of the door's CPU), and for the UsageRecorded events the usage
 * projection publishes per batch during a replay.
 *
 * Publishes a batch of domain events to JetStream as core publishes with one reply inbox and
 * counts the PubAcks, instead of one request per event: the bus still stores each event once
 * (`Nats-Msg-Id` = event id) and answers each with a PubAck, which is checked. Resolves when
 * every event is stored (or was a duplicate). Events whose PubAck did not come (no stream leader
 * during an election, a timeout, a reconnect) are sent again with the same ids, with backoff, for
 * up to `retryMs`; then it rejects with EventLogUnavailableError. An event the server refuses
 * rejects at once.
 */
export async function publishBatch(nc: NatsConnection, events: readonly DomainEvent[], retryMs = BATCH_RETRY_MS): Promise<BatchPublishResult> {
  if (!events.length) return { stored: 0, duplicates: 0 };
  const deadline = Date.now() + retryMs;
  let remaining = events;
  let duplicates = 0;
  let delayMs = 50;
  for (let attempts = 1; ; attempts++) {
    const result = await attempt(nc, remaining, Math.max(250, Math.min(BATCH_ACK_TIMEOUT_MS, deadline - Date.now())));
    duplicates += result.duplicates;
    if (result.refused) throw result.refused;
    remaining = remaining.filter((_, index) => !result.acknowledged.has(index));
    if (!remaining.length) return { stored: events.length - duplicates, duplicates };
    if (Date.now() + delayMs >= deadline) throw new EventLogUnavailableError(`${remaining.length} of ${events.length} events not acknowledged after ${attempts} attempt(s) in ${retryMs} ms: ${result.unanswered?.message ?? 'no PubAck'}`);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    delayMs = Math.min(delayMs * 2, 1000);
  }
}
