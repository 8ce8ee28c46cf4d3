/**
 * Proves the one mapping of a decider's refusal (DomainError) onto both transports: each kind
 * has its HTTP status and gRPC status, the code and field of the HTTP body are the gRPC
 * trailers, a not-found answers the platform's one `not_found` body (no domain code that would
 * tell another tenant's object from a missing one), and the HTTP error filter's `toApiError`
 * uses the same mapping for a DomainError thrown anywhere in a handler.
 */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ConcurrencyError, DomainError, DomainErrorKind, conflictError, illegalState, notFoundError, validationError } from '@fastgpu/eventsourcing';
import { apiErrorOfDomainError, HTTP_STATUS_OF_DOMAIN_ERROR, toApiError } from '@fastgpu/http';
import { ErrorTrailers, GRPC_STATUS_OF_DOMAIN_ERROR, toServiceError } from './errors';

describe('DomainError → HTTP and gRPC', () => {
  const cases: Array<[DomainError, number, status, { code: string; field?: string }]> = [
    [validationError('too_many_gpus', 'gpus: at most 64', 'gpus'), 422, status.INVALID_ARGUMENT, { code: 'too_many_gpus', field: 'gpus' }],
    [illegalState('lease_released', 'lease l-1 is released'), 409, status.FAILED_PRECONDITION, { code: 'lease_released' }],
    [notFoundError('lease_not_found', 'lease l-1 not found', 'leaseId'), 404, status.NOT_FOUND, { code: 'not_found' }],
    [conflictError('conflict', 'tenant acme already exists', 'tenantId'), 409, status.FAILED_PRECONDITION, { code: 'conflict', field: 'tenantId' }],
    [new ConcurrencyError('evt.intake.tenant.acme', 3, 4), 409, status.ABORTED, { code: 'concurrent_change' }],
  ];

  it('covers every kind', () => {
    expect(new Set(cases.map(([error]) => error.kind))).toEqual(new Set(Object.values(DomainErrorKind)));
    expect(Object.keys(HTTP_STATUS_OF_DOMAIN_ERROR).sort()).toEqual(Object.values(DomainErrorKind).sort());
    expect(Object.keys(GRPC_STATUS_OF_DOMAIN_ERROR).sort()).toEqual(Object.values(DomainErrorKind).sort());
  });

  it.each(cases)('%s', (error, httpStatus, grpcStatus, body) => {
    const api = apiErrorOfDomainError(error);
    expect(api.status).toBe(httpStatus);
    expect(api.body()).toEqual({ error: { code: body.code, message: error.message, ...(body.field ? { field: body.field } : {}) } });
    expect(toApiError(error)).toEqual({ error: api, internal: false });

    const grpc = toServiceError(error);
    expect(grpc.code).toBe(grpcStatus);
    expect(grpc.details).toBe(error.message);
    expect(grpc.metadata!.get(ErrorTrailers.code)).toEqual([body.code]);
    expect(grpc.metadata!.get(ErrorTrailers.field)).toEqual(body.field ? [body.field] : []);
  });
});
