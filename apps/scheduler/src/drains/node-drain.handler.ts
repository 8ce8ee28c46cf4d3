import { newEventId } from '@fastgpu/contracts';
import { jetStreamCommands, type CommandRunner } from '@fastgpu/eventsourcing';
import type { Bus, EventPublisher } from '@fastgpu/messaging';
import type { Clock } from '@fastgpu/runtime';
import { nodeDrainDecider, type NodeDrainCommand, type NodeDrainState } from './node-drain.decider';

/**
 * The shell of drains: the command gets its id and time here and goes through the kernel's
 * command loop (read the node's reliability subject, decide, append with its expected sequence,
 * decide again after another writer, bounded; a refusal is a DomainError the edge maps once).
 */
export class NodeDrainHandler {
  private readonly run: CommandRunner<NodeDrainState, NodeDrainCommand>;

  constructor(
    private readonly bus: Bus,
    publisher: EventPublisher,
    private readonly clock: Clock,
  ) {
    this.run = jetStreamCommands(bus, publisher, nodeDrainDecider);
  }

  /** Drains (`reason` given) or undrains a node; resolves with the log position of the event. */
  async setDrain(nodeId: string, drain: { reason: string } | undefined): Promise<{ sequence: number }> {
    const stamp = { id: newEventId(), at: this.clock.now().toISOString(), nodeId };
    const command = drain ? { kind: 'drain' as const, ...stamp, reason: drain.reason } : { kind: 'undrain' as const, ...stamp };
    const { version } = await this.run(this.bus.topology.subjects.reliabilityNode(nodeId), command);
    return { sequence: version };
  }
}
