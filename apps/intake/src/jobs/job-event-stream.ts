import type { DomainEvent } from '@fastgpu/contracts';
import { handleCommand, isStreamVersionConflict, JetStreamEventStream, StreamVersionMismatch, type BuildEvent, type CommandRunner, type Decider, type EventStream } from '@fastgpu/eventsourcing';
import { PUBLISH_IN_FLIGHT_MAX, type Bus, type EventPublisher } from '@fastgpu/messaging';

/**
 * The job aggregate's event store: the kernel's JetStream store (libs/eventsourcing) for reads and
 * for the first event of every append, which is published with the subject's expected last
 * sequence, so of two writers that read the same version only one appends and the other reads
 * again and decides again (handleCommand). The `SubtaskCreated` events after it are published
 * without waiting for each other, instead of one acknowledgement round trip each (a job of 100
 * sub-tasks was 101 round trips in a row), at most PUBLISH_IN_FLIGHT_MAX awaiting acknowledgement
 * across all the submissions of this store (first come, first served), so 64 big jobs at once do
 * not put 6,400 publishes before the bus and time them out.
 *
 * Why the sub-tasks need no expected sequence to be appended exactly once: each is a fact of the
 * JobSubmitted stored before it (that append succeeded before they are sent) and of nothing
 * else, with an id derived from the job id and its index (job.decider.ts). The same sub-task
 * sent again inside the bus's duplicate window (10 minutes on the events stream) is acknowledged
 * as a duplicate with its first sequence and not stored; a decision taken after reading the
 * subject decides only the indices not on it (the decider keeps the set, since an append cut
 * short can leave holes). Two writers can only both send one when neither read it, i.e. while
 * it was in flight, seconds apart. Any other event (a cancellation, or a decision of several
 * kinds) is appended as the kernel appends it: each event expecting the one before.
 *
 * The first event acknowledged as a duplicate (its id is on the log already, which JetStream
 * answers inside the duplicate window before it checks the expected sequence) also means the
 * subject was not where the decision thought: the command is read and decided again. That is
 * what makes `assumeNew` (a submission that claimed a new key skips the read) safe when the guess
 * is wrong inside the window too.
 */
export class JobEventStream implements EventStream<DomainEvent> {
  private readonly ordered: JetStreamEventStream;
  private readonly inFlight = new InFlightLimit(PUBLISH_IN_FLIGHT_MAX);

  constructor(
    bus: Bus,
    private readonly publisher: EventPublisher,
  ) {
    this.ordered = new JetStreamEventStream(bus, publisher);
  }

  read(subject: string): Promise<{ events: DomainEvent[]; version: number }> {
    return this.ordered.read(subject);
  }

  async append(subject: string, events: readonly DomainEvent[], expectedVersion: number): Promise<{ version: number }> {
    const [first, ...rest] = events;
    if (first === undefined || rest.length === 0 || !rest.every((e) => e.type === 'SubtaskCreated' && e.subject === subject)) return this.ordered.append(subject, events, expectedVersion);
    let version = await this.appendFirst(subject, first, expectedVersion);
    const acks: Array<Promise<void>> = [];
    let failure: { error: unknown } | undefined;
    for (const event of rest) {
      await this.inFlight.acquire();
      if (failure) {
        this.inFlight.release();
        break; // the rest is decided again by a retry, which reads what reached the log
      }
      const ack = this.publisher.publish(event).then(
        (published) => void (version = Math.max(version, published.sequence)),
        (error: unknown) => void (failure ??= { error }),
      );
      acks.push(ack.finally(() => this.inFlight.release()));
    }
    await Promise.all(acks);
    if (failure) throw failure.error;
    return { version };
  }

  private async appendFirst(subject: string, event: DomainEvent, expectedVersion: number): Promise<number> {
    if (event.subject !== subject) throw new Error(`event ${event.id} (${event.type}) belongs to ${event.subject}, not ${subject}`);
    try {
      const ack = await this.publisher.publish(event, { expectedLastSubjectSequence: expectedVersion });
      if (ack.duplicate) throw new StreamVersionMismatch(subject, expectedVersion);
      return ack.sequence;
    } catch (error) {
      if (isStreamVersionConflict(error)) throw new StreamVersionMismatch(subject, expectedVersion);
      throw error;
    }
  }
}

/** At most `max` tasks between acquire and release; the others wait in order of arrival. */
class InFlightLimit {
  private count = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly max: number) {}

  async acquire(): Promise<void> {
    if (this.count < this.max) {
      this.count++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Hands the slot to the first waiter, or frees it. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.count--;
  }
}

/** The job decider's commands on JobEventStream (what `jetStreamCommands` of libs/eventsourcing does on the kernel's store). */
export function jobCommands<State, Command>(bus: Bus, publisher: EventPublisher, makeDecider: (build: BuildEvent) => Decider<State, Command, DomainEvent>): CommandRunner<State, Command> {
  const store = new JobEventStream(bus, publisher);
  const decider = makeDecider((type, data, meta) => publisher.build(type, data, meta));
  return (subject, command, options) => handleCommand(store, decider, subject, command, options);
}
