import { DomainError, DomainErrorKind } from '@fastgpu/contracts';

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

/** A refusal in the domain's words: defined in libs/contracts (domain-error.ts), re-exported for deciders. */
export { conflictError, DomainError, DomainErrorKind, illegalState, notFoundError, validationError } from '@fastgpu/contracts';

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
