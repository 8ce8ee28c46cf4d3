import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '@fastgpu/db';
import { EVENT_LOG_RETRY_AFTER_SECONDS, isEventLogUnavailable } from '@fastgpu/messaging';
import { DomainError } from '@fastgpu/eventsourcing';
import { apiErrorOfDomainError } from './domain-errors';
import type { RouteTable } from './route-table';

/** Every HTTP error has one shape: `{ error: { code, message, field? } }`. */
export interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

/** The media type of every error body (see `errorBody`). */
export const ERROR_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * The one place an error body is built. Every error of every route, the framework's own
 * included (malformed JSON, body too large, unknown route, bad URL, client errors), and the
 * gRPC trailers' code and field come from an `ApiError`, whose body is this. A change of the
 * wire format (e.g. RFC 9457 `application/problem+json`) is a change here and in
 * `ERROR_CONTENT_TYPE`.
 */
export function errorBody(code: string, message: string, field?: string): ErrorBody {
  return { error: { code, message, ...(field ? { field } : {}) } };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    /** Response headers that belong to the error, e.g. `retry-after` on a 429 or `allow` on a 405. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
  body(): ErrorBody {
    return errorBody(this.code, this.message, this.field);
  }
}

export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} not found`);
export const conflict = (message: string, field?: string) => new ApiError(409, 'conflict', message, field);
export const unprocessable = (message: string, field?: string) => new ApiError(422, 'unprocessable', message, field);
/** 400 for a malformed request; `field` names the body field, query or path parameter, or header at fault. */
export const badRequest = (message: string, field: string) => new ApiError(400, 'invalid_request', message, field);
/** 429 with `Retry-After` in whole seconds (at least 1: "0" would invite an immediate retry). */
export function tooManyRequests(message: string, retryAfterSeconds: number): ApiError {
  return new ApiError(429, 'rate_limited', message, undefined, { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) });
}

/**
 * The stable code and, where one applies, the field of each status the framework answers by
 * itself. Codes are part of the API (clients branch on them); messages are for people.
 */
const FRAMEWORK_STATUS: Record<number, { code: string; field?: string }> = {
  400: { code: 'invalid_request', field: 'body' },
  401: { code: 'unauthenticated', field: 'Authorization' },
  403: { code: 'forbidden' },
  404: { code: 'not_found' },
  405: { code: 'method_not_allowed' },
  406: { code: 'not_acceptable', field: 'Accept' },
  408: { code: 'request_timeout' },
  409: { code: 'conflict' },
  411: { code: 'length_required', field: 'Content-Length' },
  413: { code: 'payload_too_large', field: 'body' },
  414: { code: 'uri_too_long', field: 'path' },
  415: { code: 'unsupported_media_type', field: 'Content-Type' },
  422: { code: 'unprocessable' },
  429: { code: 'rate_limited' },
  431: { code: 'request_header_fields_too_large', field: 'headers' },
  503: { code: 'unavailable' },
};

/** Fastify's own error codes whose field differs from their status's default. */
const FASTIFY_FIELDS: Record<string, string> = {
  FST_ERR_BAD_URL: 'path',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'Content-Length',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'Content-Type',
  FST_ERR_CTP_INVALID_TYPE: 'Content-Type',
  FST_ERR_CTP_EMPTY_TYPE: 'Content-Type',
  FST_ERR_CTP_INVALID_JSON_BODY: 'body',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'body',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body',
};

const INTERNAL = new ApiError(500, 'internal', 'internal error');

/** What a Fastify request tells about routing; enough to tell 404 from 405. */
export interface RoutedRequest {
  method?: string;
  url?: string;
  /** Fastify sets it on requests that matched no route. */
  is404?: boolean;
}

/**
 * Any thrown value as the `ApiError` it answers: an `ApiError` as is; a `DomainError` by its kind
 * (domain-errors.ts); a Nest `HttpException` or a
 * Fastify error (they carry a status) with the platform's code and field; a request that matched
 * no route but whose path exists under other methods as 405 with `Allow`; anything else as 500
 * without details (logged by the caller).
 */
export function toApiError(exception: unknown, request?: RoutedRequest, routes?: RouteTable): { error: ApiError; internal: boolean } {
  if (exception instanceof ApiError) return { error: exception, internal: false };
  // A decider's refusal: the one mapping of its kind onto a status (domain-errors.ts).
  if (exception instanceof DomainError) return { error: apiErrorOfDomainError(exception), internal: false };
  // The database down or out of reach is no fault of the request: 503 with Retry-After, never 500 (logged).
  if (isDatabaseUnavailable(exception)) return { error: new ApiError(503, 'unavailable', 'the database is unavailable; retry later', undefined, { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) }), internal: true };
  // The event log would not take a write (no stream leader, no quorum, NATS down) within the publisher's retries.
  if (isEventLogUnavailable(exception)) return { error: new ApiError(503, 'unavailable', 'the event log is unavailable; retry later', undefined, { 'retry-after': String(EVENT_LOG_RETRY_AFTER_SECONDS) }), internal: true };
  const status = exception instanceof HttpException ? exception.getStatus() : (exception as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status !== 'number' || status < 400 || status > 599) return { error: INTERNAL, internal: true };
  // A deliberate 5xx (e.g. 503 while a dependency is down) keeps its status; its details stay in the log.
  if (status >= 500) return { error: status === 500 ? INTERNAL : new ApiError(status, FRAMEWORK_STATUS[status]?.code ?? 'internal', 'service unavailable'), internal: true };
  if (status === 404 && request?.is404 && routes && request.method && request.url) {
    const path = request.url.split('?')[0] ?? '';
    const allowed = routes.methodsFor(path);
    if (allowed.length) return { error: new ApiError(405, 'method_not_allowed', `${request.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`, undefined, { allow: allowed.join(', ') }), internal: false };
    return { error: new ApiError(404, 'not_found', `no route ${request.method} ${path}`), internal: false };
  }
  const known = FRAMEWORK_STATUS[status] ?? { code: 'invalid_request' };
  const fastifyCode = (exception as { code?: unknown }).code;
  const field = (typeof fastifyCode === 'string' ? FASTIFY_FIELDS[fastifyCode] : undefined) ?? known.field;
  const message = exception instanceof Error && exception.message ? exception.message : known.code;
  return { error: new ApiError(status, known.code, message, field), internal: false };
}

interface ReplyLike {
  status(code: number): ReplyLike;
  header(name: string, value: string): ReplyLike;
  send(body: unknown): unknown;
}

/** Writes an `ApiError` as the response: status, its headers, the one body shape. */
export function sendApiError(reply: ReplyLike, error: ApiError): void {
  reply.status(error.status).header('content-type', ERROR_CONTENT_TYPE);
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  reply.send(error.body());
}

/**
 * The HTTP side of every error: what a handler, a guard, Nest itself (unknown route) or Fastify
 * (body parsing, hooks) throws is answered through `toApiError` and `sendApiError`.
 */
@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('http');

  constructor(private readonly routes?: RouteTable) {}

  catch(exception: unknown, host: ArgumentsHost): void | Observable<never> {
    // Event handlers (RPC context) get the original error back, so the transport can nak it
    // or dead-letter it with its real message.
    if (host.getType() !== 'http') return throwError(() => exception);
    const http = host.switchToHttp();
    const { error, internal } = toApiError(exception, http.getRequest<RoutedRequest>(), this.routes);
    if (internal) this.logger.error((exception as Error)?.stack ?? String(exception));
    sendApiError(http.getResponse<ReplyLike>(), error);
  }
}
