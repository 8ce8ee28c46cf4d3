import { ConcurrencyError, foldEvents, type Decider } from './decider';
import { StreamVersionMismatch, type EventStream } from './event-stream';

/** Times a command is decided again after the aggregate moved under it, before giving up. */
export const COMMAND_RETRIES_MAX = 3;

export interface HandledCommand<State, Event> {
  /** The events the command caused (empty when the decider decided nothing needed to happen). */
  events: readonly Event[];
  /** The aggregate's state after them. */
  state: State;
  /** The aggregate's version after the append (unchanged when no event was appended). */
  version: number;
}

export interface CommandOptions {
  /** Decisions taken again after the aggregate moved (default COMMAND_RETRIES_MAX). */
  retries?: number;
  /**
   * The caller knows the aggregate has no events yet (it just claimed the id the aggregate is
   * named by): the first attempt decides on the initial state at version 0 without reading it,
   * which saves a round trip. A wrong guess is safe when the store refuses it as any stale append
   * (the append expects version 0), and the loop reads and decides again. On JetStream an event
   * id already stored inside the duplicate window is acknowledged as a duplicate before the
   * expected sequence is checked, so a decider whose ids repeat needs a store that takes that as
   * stale too (intake's job-event-stream.ts).
   */
  assumeNew?: boolean;
}

/**
 * The one command loop: read the aggregate, decide, append with the version it was read at;
 * when another writer got there first, read again and decide again, at most `retries` more
 * times, then a ConcurrencyError. A DomainError from `decide` passes through untouched.
 * Deciding again is safe because the decider is pure and the command carries its time and ids.
 */
export async function handleCommand<State, Command, Event>(
  store: EventStream<Event>,
  decider: Decider<State, Command, Event>,
  streamId: string,
  command: Command,
  options: CommandOptions = {},
): Promise<HandledCommand<State, Event>> {
  const retries = options.retries ?? COMMAND_RETRIES_MAX;
  for (let attempt = 0; ; attempt++) {
    const { events: history, version } = attempt === 0 && options.assumeNew ? { events: [], version: 0 } : await store.read(streamId);
    const state = foldEvents(decider, history);
    const events = decider.decide(command, state);
    if (events.length === 0) return { events, state, version };
    try {
      const appended = await store.append(streamId, events, version);
      return { events, state: events.reduce((s, e) => decider.evolve(s, e), state), version: appended.version };
    } catch (error) {
      if (!(error instanceof StreamVersionMismatch)) throw error;
      if (attempt >= retries) throw new ConcurrencyError(streamId, version, attempt + 1);
    }
  }
}
