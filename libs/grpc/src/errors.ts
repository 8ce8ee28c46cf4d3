import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { DomainError, DomainErrorKind } from '@fastgpu/eventsourcing';
import { ApiError, apiErrorOfDomainError } from '@fastgpu/http';

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
 * ApiError (the HTTP error) → gRPC status with the same message, code and field; a DomainError by
 * its kind, with the code and field its HTTP answer has. Anything else is INTERNAL without details.
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
  if (error instanceof ApiError) {
    metadata.set(ErrorTrailers.code, error.code);
    if (error.field) metadata.set(ErrorTrailers.field, error.field);
    // `retry-after` (seconds) on RESOURCE_EXHAUSTED, as over HTTP.
    for (const [name, value] of Object.entries(error.headers)) metadata.set(name, value);
    const code = STATUS_BY_HTTP[error.status] ?? (error.status < 500 ? status.FAILED_PRECONDITION : status.INTERNAL);
    return { code, details: error.message, message: error.message, metadata };
  }
  metadata.set(ErrorTrailers.code, 'internal');
  return { code: status.INTERNAL, details: 'internal error', message: 'internal error', metadata };
}
