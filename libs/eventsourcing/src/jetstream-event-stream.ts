import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { decodeEvent, type DomainEvent } from '@fastgpu/contracts';
import { EventLogUnavailableError, isRetryablePublishError, isStreamVersionConflict, StreamFollower, type Bus, type EventPublisher } from '@fastgpu/messaging';
import type { BuildEvent } from './build-event';
import type { Decider } from './decider';
import { StreamVersionMismatch, type EventStream } from './event-stream';
import { handleCommand, type CommandOptions, type HandledCommand } from './handle-command';

/** True when JetStream refused a publish because the subject was not at the expected sequence (API error 10071); defined beside the publisher in libs/messaging. */
export { isStreamVersionConflict };

/**
 * The event store over the domain event stream: an aggregate is one subject
 * (`<prefix>.evt.<context>.<aggregate>.<id>`), its version is the subject's last stream sequence.
 * Reads replay the subject with an ordered consumer filtered to it; appends publish with
 * `Nats-Expected-Last-Subject-Sequence` (each later event of the same append expects the one
 * before it) and `Nats-Msg-Id` = event id.
 *
 * nats-server 2.9 has no atomic batch publish: an append of several events that fails half way
 * keeps the events already stored. Their ids are deterministic (derived from the command), so
 * deciding again after reading them either completes the rest or finds nothing left to do.
 */
export class JetStreamEventStream implements EventStream<DomainEvent> {
  constructor(
    private readonly bus: Bus,
    private readonly publisher: EventPublisher,
  ) {}

  private get stream(): string {
    return this.bus.topology.streams.events;
  }

  async version(subject: string): Promise<number> {
    try {
      const last = await this.bus.jsm.streams.getMessage(this.stream, { last_by_subj: subject });
      return last?.seq ?? 0;
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound) return 0;
      // Nothing answered (as for a publish): the log is unavailable, which the edges answer 503 with Retry-After.
      if (isRetryablePublishError(error)) throw new EventLogUnavailableError(`the event log did not answer a read of ${subject}`, { cause: error });
      throw error;
    }
  }

  async read(subject: string): Promise<{ events: DomainEvent[]; version: number }> {
    const version = await this.version(subject);
    if (version === 0) return { events: [], version };
    const events: DomainEvent[] = [];
    let done!: () => void;
    let failed!: (error: unknown) => void;
    const finished = new Promise<void>((resolve, reject) => ((done = resolve), (failed = reject)));
    const follower = new StreamFollower(this.bus, {
      stream: this.stream,
      fromSequence: 1,
      filterSubject: subject,
      onBatch: async (messages) => {
        for (const m of messages) {
          if (m.seq > version) break;
          const decoded = decodeEvent(m.data);
          // An aggregate whose own history does not decode cannot be decided on: refuse, loudly.
          if (!decoded.ok) return failed(new Error(`${subject} sequence ${m.seq} does not decode: ${decoded.reason}`));
          events.push(decoded.event);
          if (m.seq === version) return done();
        }
      },
    });
    await follower.start();
    try {
      await finished;
    } finally {
      await follower.stop();
    }
    return { events, version };
  }

  async append(subject: string, events: readonly DomainEvent[], expectedVersion: number): Promise<{ version: number }> {
    let expected = expectedVersion;
    for (const event of events) {
      if (event.subject !== subject) throw new Error(`event ${event.id} (${event.type}) belongs to ${event.subject}, not ${subject}`);
      try {
        expected = (await this.publisher.publish(event, { expectedLastSubjectSequence: expected })).sequence;
      } catch (error) {
        if (isStreamVersionConflict(error)) throw new StreamVersionMismatch(subject, expectedVersion);
        throw error;
      }
    }
    return { version: expected };
  }
}

/**
 * A decider's commands on the domain event stream: the decider is built with the publisher's
 * `build` (so its events land on their subjects with the publisher's source), and each command
 * runs through `handleCommand` on the aggregate's subject. What a handler needs besides stamping
 * the command's id and time.
 */
export function jetStreamCommands<State, Command>(bus: Bus, publisher: EventPublisher, makeDecider: (build: BuildEvent) => Decider<State, Command, DomainEvent>): CommandRunner<State, Command> {
  const store = new JetStreamEventStream(bus, publisher);
  const decider = makeDecider((type, data, meta) => publisher.build(type, data, meta));
  return (subject, command, options) => handleCommand(store, decider, subject, command, options);
}

/** Runs one command on the aggregate of `subject` (see jetStreamCommands). */
export type CommandRunner<State, Command> = (subject: string, command: Command, options?: CommandOptions) => Promise<HandledCommand<State, DomainEvent>>;
