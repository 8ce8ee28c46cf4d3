import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { context, trace, SpanStatusCode, type Span } from '@opentelemetry/api';
import { extractTraceContext, SpanKind, tracer } from '@fastgpu/telemetry';
import type { Runtime } from '@fastgpu/runtime';
import { metricsFor } from './metrics';

const instrumented = new WeakSet<object>();
const SPAN = Symbol('fastgpu.span');
const STARTED = Symbol('fastgpu.startedAt');
type Instrumented = FastifyRequest & { [SPAN]?: Span; [STARTED]?: bigint };

/** Routes that would drown the latency histogram and traces in scrapes and probes. */
const UNTRACED_ROUTES = new Set(['/metrics', '/healthz', '/readyz']);

/** The route template (`/v1/jobs/:id`), never the raw URL, so label cardinality stays bounded. */
function routeOf(request: FastifyRequest): string {
  return request.routeOptions?.url ?? 'unmatched';
}

/**
 * Fastify hooks: each HTTP request is a SERVER span, child of the incoming W3C `traceparent`
 * (so a gateway's trace continues here), made active for the handler, so the events it
 * publishes carry the same trace; its latency goes to `fastgpu_http_request_duration_seconds`.
 * The span is re-entered in `preHandler` because body parsing leaves the async context.
 * Hooks attach at Fastify's preReady, so this works any time before `listen`. Idempotent.
 */
export function instrumentHttpInstance(fastify: FastifyInstance, runtime: Runtime, service = 'http'): void {
  if (instrumented.has(fastify)) return;
  instrumented.add(fastify);
  const metrics = metricsFor(runtime);
  fastify.addHook('onRequest', (request: Instrumented, _reply, done) => {
    request[STARTED] = process.hrtime.bigint();
    const route = routeOf(request);
    if (UNTRACED_ROUTES.has(route)) return done();
    const parent = extractTraceContext({ get: (key) => headerValue(request.headers[key]), set: () => undefined });
    const span = tracer().startSpan(
      `${service}.${request.method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method, 'http.route': route, 'url.path': request.url.split('?')[0] ?? '' } },
      parent,
    );
    request[SPAN] = span;
    context.with(trace.setSpan(parent, span), done);
  });
  fastify.addHook('preHandler', (request: Instrumented, _reply, done) => {
    const span = request[SPAN];
    if (!span) return done();
    context.with(trace.setSpan(context.active(), span), done);
  });
  fastify.addHook('onResponse', (request: Instrumented, reply: FastifyReply, done) => {
    const started = request[STARTED];
    const route = routeOf(request);
    if (started !== undefined) {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpDuration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, seconds);
    }
    const span = request[SPAN];
    if (span) {
      span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
    done();
  });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** `instrumentHttp(app, runtime)`: call before `app.listen()` (startServices does). */
export function instrumentHttp(app: { getHttpAdapter(): { getInstance(): unknown } }, runtime: Runtime, service?: string): void {
  instrumentHttpInstance(app.getHttpAdapter().getInstance() as FastifyInstance, runtime, service);
}
