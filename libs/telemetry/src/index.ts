import { context, propagation, trace, SpanKind, SpanStatusCode, type Context, type Span, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, SimpleSpanProcessor, type ReadableSpan, type Span as SdkSpan, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

/**
 * Telemetry is started before Nest. Spans are named `<service>.<handler>`; `traceparent`
 * travels in HTTP headers and NATS message headers, so one job is one trace across services.
 */
export interface TelemetryOptions {
  serviceName: string;
  otlpEndpoint?: string;
  /** Extra exporter (tests pass an in-memory exporter). */
  exporter?: SpanExporter;
}

let provider: NodeTracerProvider | undefined;

/**
 * The OTLP exporter's batch processor, with the exporter loaded on start (`await import`): a
 * process without OTEL_EXPORTER_OTLP_ENDPOINT never loads the exporter and its dependencies
 * (protobuf transformer, metrics and logs SDK types), a few MB of an idle service's memory
 * (docs/benchmarks.md, service-rss). Spans that end while it loads wait for it.
 */
class OtlpSpanProcessor implements SpanProcessor {
  private batch?: BatchSpanProcessor;
  private readonly waiting: ReadableSpan[] = [];
  private readonly ready: Promise<void>;

  constructor(url: string) {
    this.ready = import('@opentelemetry/exporter-trace-otlp-http').then(({ OTLPTraceExporter }) => {
      this.batch = new BatchSpanProcessor(new OTLPTraceExporter({ url }));
      for (const span of this.waiting.splice(0)) this.batch.onEnd(span);
    });
  }

  onStart(span: SdkSpan, parentContext: Context): void {
    this.batch?.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    if (this.batch) this.batch.onEnd(span);
    else this.waiting.push(span);
  }

  async forceFlush(): Promise<void> {
    await this.ready;
    await this.batch!.forceFlush();
  }

  async shutdown(): Promise<void> {
    await this.ready;
    await this.batch!.shutdown();
  }
}

export function startTelemetry(options: TelemetryOptions): { shutdown(): Promise<void> } {
  if (provider) return { shutdown: async () => undefined };
  const spanProcessors: SpanProcessor[] = [];
  if (options.otlpEndpoint) spanProcessors.push(new OtlpSpanProcessor(`${options.otlpEndpoint.replace(/\/$/, '')}/v1/traces`));
  if (options.exporter) spanProcessors.push(new SimpleSpanProcessor(options.exporter));
  provider = new NodeTracerProvider({ resource: resourceFromAttributes({ 'service.name': options.serviceName }), spanProcessors });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  const current = provider;
  return {
    shutdown: async () => {
      await current.shutdown();
      provider = undefined;
    },
  };
}

export const tracer = () => trace.getTracer('fastgpu');

/** Minimal header carrier interface that NATS MsgHdrs and plain records both satisfy. */
export interface HeaderCarrier {
  get(key: string): string | undefined | null;
  set(key: string, value: string): void;
}

const carrierGetter: TextMapGetter<HeaderCarrier> = {
  keys: () => ['traceparent', 'tracestate'],
  get: (carrier, key) => carrier.get(key) || undefined,
};
const carrierSetter: TextMapSetter<HeaderCarrier> = { set: (carrier, key, value) => carrier.set(key, value) };

export function injectTraceContext(carrier: HeaderCarrier, ctx: Context = context.active()): void {
  propagation.inject(ctx, carrier, carrierSetter);
}

export function extractTraceContext(carrier: HeaderCarrier | undefined): Context {
  if (!carrier) return context.active();
  return propagation.extract(context.active(), carrier, carrierGetter);
}

/** The W3C traceparent of the active span, if any (for event envelopes). */
export function currentTraceparent(): string | undefined {
  const values: Record<string, string> = {};
  propagation.inject(context.active(), values, { set: (c, k, v) => (c[k] = v) });
  return values.traceparent;
}

/** Runs `fn` in a span named `<service>.<handler>`, child of `parent` (or the active context). */
export async function inSpan<T>(name: string, fn: (span: Span) => Promise<T>, options: { parent?: Context; kind?: SpanKind; attributes?: Record<string, string | number | boolean> } = {}): Promise<T> {
  const parent = options.parent ?? context.active();
  return tracer().startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes }, parent, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span.end();
    }
  });
}

export { SpanKind, context, trace };

/**
 * Records that `name` handled an event, as a span in the event's trace (its envelope's
 * `traceparent`). Projections apply events in batches; this keeps each event's trace whole
 * (HTTP request → intake → … → metering) without one span per batch hiding them.
 */
export function recordEventSpan(name: string, traceparent: string | undefined, attributes: Record<string, string | number | boolean> = {}): void {
  if (!traceparent) return;
  const parent = propagation.extract(context.active(), { traceparent }, { keys: () => ['traceparent'], get: (c, k) => (c as Record<string, string>)[k] });
  tracer().startSpan(name, { kind: SpanKind.CONSUMER, attributes }, parent).end();
}
