import { createInbox, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { Headers, type DomainEvent } from '@fastgpu/contracts';

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

/**
 * Publishes a batch of domain events to JetStream as core publishes with one reply inbox and
 * counts the PubAcks, instead of one request per event: the bus still stores each event once
 * (`Nats-Msg-Id` = event id) and answers each with a PubAck, which is checked. Resolves when
 * every event is stored (or was a duplicate); rejects on any error or after the timeout.
 * It sets the same headers as EventPublisher (type, schema version, tenant, trace context).
 */
export async function publishBatch(nc: NatsConnection, events: readonly DomainEvent[]): Promise<BatchPublishResult> {
  if (!events.length) return { stored: 0, duplicates: 0 };
  const inbox = createInbox();
  return new Promise<BatchPublishResult>((resolve, reject) => {
    let waiting = events.length;
    let duplicates = 0;
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`${waiting} of ${events.length} publishes were not acknowledged within ${BATCH_ACK_TIMEOUT_MS} ms`));
    }, BATCH_ACK_TIMEOUT_MS);
    const sub = nc.subscribe(`${inbox}.*`, {
      max: events.length,
      callback: (error, msg) => {
        let ack: PubAckBody | undefined;
        try {
          ack = error ? undefined : msg.json<PubAckBody>();
        } catch {
          ack = undefined;
        }
        if (!ack || ack.error) {
          clearTimeout(timer);
          sub.unsubscribe();
          reject(new Error(`publish not stored: ${error?.message ?? ack?.error?.description ?? 'no PubAck'}`));
          return;
        }
        if (ack.duplicate) duplicates++;
        if (--waiting === 0) {
          clearTimeout(timer);
          resolve({ stored: events.length - duplicates, duplicates });
        }
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
