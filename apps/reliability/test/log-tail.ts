import { decodeEvent, type DomainEvent, type EventType } from '@fastgpu/contracts';
import { StreamFollower, type Bus } from '@fastgpu/messaging';
import { eventually } from '@fastgpu/testing';

/** Reads the domain log as it grows, for assertions: every decoded event with its sequence. */
export class LogTail {
  readonly events: Array<{ sequence: number; event: DomainEvent }> = [];
  private readonly follower: StreamFollower;

  constructor(bus: Bus) {
    this.follower = new StreamFollower(bus, {
      stream: bus.topology.streams.events,
      fromSequence: 1,
      onBatch: async (messages) => {
        for (const m of messages) {
          const decoded = decodeEvent(m.data);
          if (decoded.ok) this.events.push({ sequence: m.seq, event: decoded.event });
        }
      },
    });
  }

  start(): Promise<void> {
    return this.follower.start();
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }

  all<T extends EventType>(type: T, where: (event: DomainEvent<T>) => boolean = () => true): Array<DomainEvent<T>> {
    const out: Array<DomainEvent<T>> = [];
    for (const { event } of this.events) if (event.type === type && where(event as DomainEvent<T>)) out.push(event as DomainEvent<T>);
    return out;
  }

  sequenceOf(id: string): number | undefined {
    return this.events.find((e) => e.event.id === id)?.sequence;
  }

  async waitFor<T extends EventType>(type: T, where: (event: DomainEvent<T>) => boolean = () => true, timeoutMs = 15_000): Promise<DomainEvent<T>> {
    return eventually(() => this.all(type, where)[0], { timeoutMs, message: `no ${type} in the log` });
  }
}
