import { createInbox, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { encodeEvent, Headers, type DomainEvent } from '@fastgpu/contracts';

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
      const h = natsHeaders();
      h.set(Headers.messageId, event.id);
      h.set(Headers.eventType, event.type);
      h.set(Headers.schemaVersion, String(event.schemaversion));
      if (event.tenantid) h.set(Headers.tenantId, event.tenantid);
      if (event.traceparent) h.set(Headers.traceparent, event.traceparent);
      nc.publish(event.subject, encodeEvent(event), { reply: `${inbox}.${index}`, headers: h });
    });
  });
}
