import { DomainError, DomainErrorKind } from '@fastgpu/eventsourcing';
import { ApiError } from './errors';

/**
 * The one mapping of a decider's refusal (DomainError, libs/eventsourcing) onto HTTP: its kind
 * decides the status, its code, message and field become the one error body. gRPC maps the same
 * kinds in libs/grpc (`grpcStatusOfDomainError`), so no decider or service knows a transport.
 *
 * | kind            | HTTP | code                                      |
 * | --------------- | ---- | ----------------------------------------- |
 * | `validation`    | 422  | the error's code                          |
 * | `illegal-state` | 409  | the error's code                          |
 * | `not-found`     | 404  | `not_found` (the body every missing object has) |
 * | `conflict`      | 409  | the error's code                          |
 * | `concurrency`   | 409  | the error's code (`concurrent_change`)    |
 *
 * A shared rule's refusal is a DomainError too: the job request's check (`JobRequestError`,
 * libs/contracts job-submission.ts) is a `validation`, 422 `unprocessable` with its field, for
 * intake's submission and the scheduler's dry-run alike.
 *
 * A `not-found` keeps the platform's one `not_found` code, so another tenant's object, a missing
 * one and an unknown route answer alike; its message names what was not found.
 */
export const HTTP_STATUS_OF_DOMAIN_ERROR: Readonly<Record<DomainErrorKind, number>> = {
  [DomainErrorKind.validation]: 422,
  [DomainErrorKind.illegalState]: 409,
  [DomainErrorKind.notFound]: 404,
  [DomainErrorKind.conflict]: 409,
  [DomainErrorKind.concurrency]: 409,
};

export function apiErrorOfDomainError(error: DomainError): ApiError {
  const status = HTTP_STATUS_OF_DOMAIN_ERROR[error.kind];
  if (error.kind === DomainErrorKind.notFound) return new ApiError(status, 'not_found', error.message);
  return new ApiError(status, error.code, error.message, error.field);
}
