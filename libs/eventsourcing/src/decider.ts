/**
 * A decider (after Emmett): the pure core of one aggregate's command handling.
 * - `initialState()`: the state before any event;
 * - `decide(command, state)`: the events a command causes, or a DomainError when the command
 *   is not allowed in that state. Time and ids arrive in the command, never read inside;
 * - `evolve(state, event)`: the state after one event.
 * All three import no Nest, kysely, nats, clock or randomness.
 *
 * `Fact` is an event as evolve reads it back from the log. For most deciders it is the event
 * itself (the default). A decider whose state needs the log's position of each event (the
 * scheduler: expected subject sequences, the subject a node report came on) reads stored events
 * instead, and decides events that are not stored yet; `handleCommand` needs the two to be the
 * same, the given/when/then helpers do not.
 */
export interface Decider<State, Command, Event, Fact = Event> {
  initialState(): State;
  decide(command: Command, state: State): readonly Event[];
  evolve(state: State, fact: Fact): State;
}

/** The state after `facts`, folded with the decider's evolve from its initial state. */
export function foldEvents<State, Fact>(decider: Pick<Decider<State, never, unknown, Fact>, 'initialState' | 'evolve'>, facts: Iterable<Fact>): State {
  let state = decider.initialState();
  for (const fact of facts) state = decider.evolve(state, fact);
  return state;
}

/**
 * Why a command was refused, in the domain's words; the HTTP and gRPC edges map each kind to
 * a status once (libs/http, libs/grpc), so no decider knows a transport.
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

/** The aggregate's stream moved between reading it and appending to it, more often than the retries allow. */
export class ConcurrencyError extends DomainError {
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number,
    attempts: number,
  ) {
    super(DomainErrorKind.concurrency, 'concurrent_change', `${streamId} changed concurrently ${attempts} time(s) while deciding: read it again and retry`);
    this.name = 'ConcurrencyError';
  }
}
