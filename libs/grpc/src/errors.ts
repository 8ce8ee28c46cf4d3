import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { DomainError, DomainErrorKind } from '@fastgpu/eventsourcing';
import { apiErrorOfDomainError, toApiError } from '@fastgpu/http';

/** Trailers carrying the HTTP error shape's code and field, so gateways see the same error as over HTTP. */
export const ErrorTrailers = { code: 'fastgpu-error-code', field: 'fastgpu-error-field' } as const;

const STATUS_BY_HTTP: Record<number, status> = {
  400: status.INVALID_ARGUMENT,
  401: status.UNAUTHENTICATED,
  403: status.PERMISSION_DENIED,
  404: status.NOT_FOUND,
  406: status.INVALID_ARGUMENT,
  409: status.FAILED_PRECONDITION,
  413: status.RESOURCE_EXHAUSTED,
  422: status.INVALID_ARGUMENT,
  429: status.RESOURCE_EXHAUSTED,
  503: status.UNAVAILABLE,
};

/**
 * The one mapping of a decider's refusal (DomainError) onto a gRPC status, beside its HTTP one
 * (libs/http domain-errors.ts); the trailers carry the same code and field as the HTTP body.
 * A stale read that outlived its retries is ABORTED (gRPC's "retry the read-modify-write").
 */
export const GRPC_STATUS_OF_DOMAIN_ERROR: Readonly<Record<DomainErrorKind, status>> = {
  [DomainErrorKind.validation]: status.INVALID_ARGUMENT,
  [DomainErrorKind.illegalState]: status.FAILED_PRECONDITION,
  [DomainErrorKind.notFound]: status.NOT_FOUND,
  [DomainErrorKind.conflict]: status.FAILED_PRECONDITION,
  [DomainErrorKind.concurrency]: status.ABORTED,
};

export class GrpcError extends Error {
  constructor(
    readonly code: status,
    message: string,
    readonly errorCode: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/**
 * A thrown value → gRPC status. A DomainError by its kind and a GrpcError as is; anything else
 * as HTTP answers it (libs/http toApiError, the one mapping): an ApiError with its message, code
 * and field, the database or the event log unreachable as UNAVAILABLE with `retry-after` (HTTP's
 * 503 with Retry-After; a client retries it), an unknown error as INTERNAL without details.
 */
export function toServiceError(error: unknown): Partial<ServiceError> {
  const metadata = new Metadata();
  if (error instanceof DomainError) {
    const api = apiErrorOfDomainError(error);
    metadata.set(ErrorTrailers.code, api.code);
    if (api.field) metadata.set(ErrorTrailers.field, api.field);
    return { code: GRPC_STATUS_OF_DOMAIN_ERROR[error.kind], details: api.message, message: api.message, metadata };
  }
  if (error instanceof GrpcError) {
    metadata.set(ErrorTrailers.code, error.errorCode);
    if (error.field) metadata.set(ErrorTrailers.field, error.field);
    return { code: error.code, details: error.message, message: error.message, metadata };
  }
  const { error: api } = toApiError(error);
  metadata.set(ErrorTrailers.code, api.code);
  if (api.field) metadata.set(ErrorTrailers.field, api.field);
  // `retry-after` (seconds) on RESOURCE_EXHAUSTED and UNAVAILABLE, as over HTTP.
  for (const [name, value] of Object.entries(api.headers)) metadata.set(name, value);
  const code = STATUS_BY_HTTP[api.status] ?? (api.status < 500 ? status.FAILED_PRECONDITION : status.INTERNAL);
  return { code, details: api.message, message: api.message, metadata };
}
