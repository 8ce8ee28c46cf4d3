import { Server, ClientProxy, BaseRpcContext, EventPattern, type CustomTransportStrategy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { AckPolicy, DeliverPolicy, type ConsumerConfig, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { isObservable, lastValueFrom } from 'rxjs';
import { decodeEvent, type DecodeResult, type DomainEvent, type EventData, type EventType } from '@fastgpu/contracts';
import { extractTraceContext, inSpan, SpanKind } from '@fastgpu/telemetry';
import type { Bus } from './bus';
import { sendToDeadLetters } from './dead-letters';
import { EventPublisher } from './publisher';

/** Context handed to `@EventPattern` handlers: the raw message and where it sits in the log. */
export class JetStreamContext extends BaseRpcContext<[JsMsg, DomainEvent | undefined]> {
  get message(): JsMsg {
    return this.args[0];
  }
  get sequence(): number {
    return this.args[0].seq;
  }
  get deliveryCount(): number {
    return this.args[0].info.deliveryCount;
  }
  get subject(): string {
    return this.args[0].subject;
  }
}

export interface JetStreamServerOptions {
  bus: Bus;
  /** Service name: spans are `<service>.<event type>`. */
  service: string;
  /** Durable consumer name. */
  durable: string;
  stream?: string;
  filterSubject?: string;
  /** Deliveries before a failing message goes to the dead-letter stream. */
  maxDeliver?: number;
  ackWaitMs?: number;
  /** Decoder for the stream's bodies; defaults to the domain event codec. */
  decode?: (data: Uint8Array) => DecodeResult | { ok: true; event: { type: string; data: unknown } };
  /** Binds only the handlers declared for this transport id (see ServiceTransport). */
  transportId?: symbol;
  /** Where the handler pattern comes from; defaults to the event type. */
  patternOf?(event: { type: string }): string;
}

/** Backoff between redeliveries of a failing message: 0.5 s, 1 s, 2 s … capped at 30 s. */
export function redeliveryDelayMs(deliveryCount: number): number {
  return Math.min(500 * 2 ** Math.max(0, deliveryCount - 1), 30_000);
}

/**
 * A Nest custom transport on a JetStream durable pull consumer, so handlers are ordinary
 * `@EventPattern('<EventType>')` methods. Each message is handled in order, then acked; a
 * handler error naks it with backoff; after `maxDeliver` deliveries, or when the body does
 * not decode, it goes to the dead-letter stream with the reason and the consumer goes on.
 */
export class JetStreamServer extends Server implements CustomTransportStrategy {
  override readonly propagatesEventHandlerErrors = true;
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;
  private closed = false;
  readonly consumerConfig: Partial<ConsumerConfig> & { durable_name: string };

  constructor(private readonly options: JetStreamServerOptions) {
    super();
    if (options.transportId) this.setTransportId(options.transportId);
    this.consumerConfig = {
      durable_name: options.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: options.filterSubject ?? options.bus.topology.subjects.eventsAll,
      max_deliver: options.maxDeliver ?? 5,
      ack_wait: (options.ackWaitMs ?? 30_000) * 1_000_000,
      max_ack_pending: 1000,
    };
  }

  listen(callback: (...optionalParams: unknown[]) => void): void {
    this.start().then(
      () => callback(),
      (error) => callback(error),
    );
  }

  private get stream(): string {
    return this.options.stream ?? this.options.bus.topology.streams.events;
  }

  async start(): Promise<void> {
    const { jsm, js } = this.options.bus;
    const info = await jsm.consumers.add(this.stream, this.consumerConfig);
    // nats-server 2.9 silently drops settings it does not know: assert what it accepted.
    const got = info.config;
    for (const key of ['filter_subject', 'ack_policy', 'max_deliver', 'durable_name'] as const) {
      if (got[key] !== this.consumerConfig[key]) {
        throw new Error(`consumer ${this.options.durable}: server accepted ${key}=${String(got[key])}, wanted ${String(this.consumerConfig[key])}`);
      }
    }
    const consumer = await js.consumers.get(this.stream, this.options.durable);
    this.messages = await consumer.consume({ max_messages: 256 });
    this.loop = (async () => {
      for await (const m of this.messages!) {
        if (this.closed) break;
        await this.handleMessage(m);
      }
    })();
  }

  async handleMessage(m: JsMsg): Promise<void> {
    const decoded = (this.options.decode ?? decodeEvent)(m.data);
    if (!decoded.ok) {
      await this.deadLetter(m, decoded.reason);
      return;
    }
    const event = decoded.event as DomainEvent;
    const pattern = this.options.patternOf ? this.options.patternOf(event) : event.type;
    const handler = this.getHandlerByPattern(pattern);
    if (!handler) {
      m.ack();
      return;
    }
    try {
      await inSpan(
        `${this.options.service}.${pattern}`,
        async () => {
          const result = await handler(event, new JetStreamContext([m, event]));
          if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
        },
        { parent: extractTraceContext(m.headers), kind: SpanKind.CONSUMER, attributes: { 'messaging.system': 'nats', 'messaging.destination.name': m.subject, 'messaging.message.id': event.id ?? '' } },
      );
      m.ack();
    } catch (error) {
      const deliveries = m.info.deliveryCount;
      if (deliveries >= (this.consumerConfig.max_deliver ?? 5)) {
        await this.deadLetter(m, `handler failed after ${deliveries} deliveries: ${(error as Error).message}`);
      } else {
        m.nak(redeliveryDelayMs(deliveries));
      }
    }
  }

  private async deadLetter(m: JsMsg, reason: string): Promise<void> {
    try {
      await sendToDeadLetters(this.options.bus.js, this.options.bus.topology, {
        consumer: this.options.durable,
        originalSubject: m.subject,
        originalStream: this.stream,
        originalSequence: m.seq,
        deliveries: m.info.deliveryCount,
        reason,
        headers: m.headers,
        data: m.data,
      });
      m.ack();
    } catch {
      // The dead-letter publish failed: let the bus redeliver rather than lose the message.
      m.nak(redeliveryDelayMs(m.info.deliveryCount));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
  }

   
  on(): void {
    throw new Error('JetStreamServer does not support event listeners');
  }

  unwrap<T>(): T {
    return this.options.bus as T;
  }
}

/**
 * The client side: `emit(EventType, { data, meta })` publishes a domain event through the
 * EventPublisher (msg id = event id). Request/response is not offered: services talk in events.
 */
export class JetStreamClient extends ClientProxy {
  constructor(private readonly publisher: EventPublisher) {
    super();
  }
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  protected publish(_packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    callback({ err: new Error('JetStreamClient supports events only (emit)'), isDisposed: true });
    return () => undefined;
  }
  protected async dispatchEvent<T = unknown>(packet: ReadPacket<{ data: EventData<EventType>; meta: Parameters<EventPublisher['build']>[2] }>): Promise<T> {
    const type = packet.pattern as EventType;
    const event = this.publisher.build(type, packet.data.data, packet.data.meta);
    return (await this.publisher.publish(event)) as T;
  }
  unwrap<T>(): T {
    return this.publisher as T;
  }
  override on(): void {
    throw new Error('JetStreamClient does not support event listeners');
  }
}

/** Transport ids: with all services in one process, each handler binds to its own service's consumer. */
export const ServiceTransport = {
  intake: Symbol.for('fastgpu.intake'),
  scheduler: Symbol.for('fastgpu.scheduler'),
  metering: Symbol.for('fastgpu.metering'),
  billing: Symbol.for('fastgpu.billing'),
  reliability: Symbol.for('fastgpu.reliability'),
} as const;
export type ServiceName = keyof typeof ServiceTransport;
export const serviceNames = Object.keys(ServiceTransport) as ServiceName[];

/**
 * `@OnEvent('SubtaskPlaced', 'scheduler')`: an `@EventPattern` for a domain event type, bound to
 * one service's durable consumer (or, without a service, to every JetStream server in the app).
 */
export function OnEvent(type: string, service?: ServiceName): MethodDecorator {
  return service ? EventPattern<string>(type, ServiceTransport[service]) : EventPattern<string>(type);
}
