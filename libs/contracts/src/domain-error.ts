/**
 * Why a command or request was refused, in the domain's words; the HTTP and gRPC edges map each
 * kind to a status once (libs/http domain-errors.ts, libs/grpc), so no decider or shared rule
 * knows a transport. Here, in the lowest package, so a rule of the contracts (the job request's
 * check, `JobRequestError`) refuses with it too; libs/eventsourcing re-exports it for deciders.
 * - `validation`: the command itself is malformed or out of bounds (HTTP 400/422);
 * - `illegal-state`: well formed, but not allowed in the aggregate's current state (409);
 * - `not-found`: the aggregate does not exist, or belongs to another tenant (404);
 * - `conflict`: the same idempotency key or id was used for something else (409);
 * - `concurrency`: the aggregate changed while deciding, after the bounded retries (409).
 */
export const DomainErrorKind = {
  validation: 'validation',
  illegalState: 'illegal-state',
  notFound: 'not-found',
  conflict: 'conflict',
  concurrency: 'concurrency',
} as const;
export type DomainErrorKind = (typeof DomainErrorKind)[keyof typeof DomainErrorKind];

export class DomainError extends Error {
  constructor(
    readonly kind: DomainErrorKind,
    /** A stable, machine-readable code (snake_case), e.g. `invoice_finalized`. */
    readonly code: string,
    message: string,
    /** The input field the error is about, when there is one. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const validationError = (code: string, message: string, field?: string) => new DomainError(DomainErrorKind.validation, code, message, field);
export const illegalState = (code: string, message: string, field?: string) => new DomainError(DomainErrorKind.illegalState, code, message, field);
export const notFoundError = (code: string, message: string, field?: string) => new DomainError(DomainErrorKind.notFound, code, message, field);
export const conflictError = (code: string, message: string, field?: string) => new DomainError(DomainErrorKind.conflict, code, message, field);
