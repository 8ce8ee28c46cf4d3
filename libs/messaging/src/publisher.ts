import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { encodeEvent, Headers, makeEvent, subjectFor, type DomainEvent, type EventData, type EventMeta, type EventType, type Topology } from '@fastgpu/contracts';
import { currentTraceparent, injectTraceContext } from '@fastgpu/telemetry';

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
 */
export class EventPublisher {
  constructor(
    private readonly js: JetStreamClient,
    readonly topology: Topology,
    private readonly source: string,
  ) {}

  /** Builds an envelope for `type` on the subject the catalogue assigns it. */
  build<T extends EventType>(type: T, data: EventData<T>, meta: Omit<EventMeta, 'source'> & { source?: string }): DomainEvent<T> {
    return makeEvent(type, data, { ...meta, traceparent: meta.traceparent ?? currentTraceparent(), source: meta.source ?? this.source }, subjectFor(this.topology, type, data));
  }

  async publish(event: DomainEvent, options: PublishOptions = {}): Promise<Published> {
    const ack: PubAck = await this.js.publish(event.subject, encodeEvent(event), {
      msgID: event.id,
      headers: headersFor(event),
      ...(options.expectedLastSubjectSequence !== undefined ? { expect: { lastSubjectSequence: options.expectedLastSubjectSequence } } : {}),
    });
    return { sequence: ack.seq, duplicate: ack.duplicate };
  }

  /** Publishes in order of acceptance with at most PUBLISH_IN_FLIGHT_MAX awaiting acks. */
  async publishAll(events: readonly DomainEvent[]): Promise<Published[]> {
    const results: Published[] = new Array(events.length);
    for (let start = 0; start < events.length; start += PUBLISH_IN_FLIGHT_MAX) {
      const slice = events.slice(start, start + PUBLISH_IN_FLIGHT_MAX);
      const acks = await Promise.all(slice.map((event) => this.publish(event)));
      acks.forEach((ack, i) => (results[start + i] = ack));
    }
    return results;
  }
}

/** True when a publish failed because the expected subject sequence did not match. */
export function isWrongLastSequence(error: unknown): boolean {
  return /wrong last sequence/i.test((error as Error)?.message ?? '');
}
