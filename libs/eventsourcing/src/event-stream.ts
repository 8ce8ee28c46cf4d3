/**
 * The port a command handler needs from an event store: read one aggregate's events with the
 * version they end at, and append events only if the aggregate is still at that version.
 * `version` is the store's position of the aggregate's last event (a JetStream subject's last
 * sequence), 0 for an aggregate without events.
 */
export interface EventStream<Event> {
  read(streamId: string): Promise<{ events: Event[]; version: number }>;
  /** Appends in order; throws StreamVersionMismatch when the stream is not at `expectedVersion`. */
  append(streamId: string, events: readonly Event[], expectedVersion: number): Promise<{ version: number }>;
}

/** The store's answer when an append found the stream at another version than expected. */
export class StreamVersionMismatch extends Error {
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number,
  ) {
    super(`${streamId} is not at version ${expectedVersion}`);
    this.name = 'StreamVersionMismatch';
  }
}
