import { newEventId } from '@fastgpu/contracts';
import { handleCommand, JetStreamEventStream } from '@fastgpu/eventsourcing';
import type { Bus, EventPublisher } from '@fastgpu/messaging';
import type { Clock } from '@fastgpu/runtime';
import { nodeDrainDecider } from './node-drain.decider';

/**
 * The shell of drains: the command gets its id and time here and goes through the kernel's
 * command loop (read the node's reliability subject, decide, append with its expected sequence,
 * decide again after another writer, bounded; a refusal is a DomainError the edge maps once).
 */
export class NodeDrainHandler {
  private readonly store: JetStreamEventStream;
  private readonly decider;

  constructor(
    private readonly bus: Bus,
    publisher: EventPublisher,
    private readonly clock: Clock,
  ) {
    this.store = new JetStreamEventStream(bus, publisher);
    this.decider = nodeDrainDecider((type, data, meta) => publisher.build(type, data, meta));
  }

  /** Drains (`reason` given) or undrains a node; resolves with the log position of the event. */
  async setDrain(nodeId: string, drain: { reason: string } | undefined): Promise<{ sequence: number }> {
    const stamp = { id: newEventId(), at: this.clock.now().toISOString(), nodeId };
    const command = drain ? { kind: 'drain' as const, ...stamp, reason: drain.reason } : { kind: 'undrain' as const, ...stamp };
    const { version } = await handleCommand(this.store, this.decider, this.bus.topology.subjects.reliabilityNode(nodeId), command);
    return { sequence: version };
  }
}
