import { newEventId } from '@fastgpu/contracts';
import { jetStreamCommands, type CommandRunner } from '@fastgpu/eventsourcing';
import type { Bus, EventPublisher } from '@fastgpu/messaging';
import type { Clock } from '@fastgpu/runtime';
import type { SchedulerPolicy } from '../placement/placement.types';
import { schedulingPolicyDecider, type SchedulingPolicyCommand, type SchedulingPolicyState } from './scheduling-policy.decider';

/**
 * The shell of the scheduling policy's commands: a command gets its id and time here, then goes
 * through the kernel's one command loop (libs/eventsourcing handleCommand: read the policy
 * subject, decide, append with its expected sequence, decide again when another writer got
 * there first, a bounded number of times, then a ConcurrencyError: 409 at the edge).
 */
export class SchedulingPolicyHandler {
  private readonly run: CommandRunner<SchedulingPolicyState, SchedulingPolicyCommand>;

  constructor(
    private readonly bus: Bus,
    publisher: EventPublisher,
    private readonly clock: Clock,
  ) {
    this.run = jetStreamCommands(bus, publisher, schedulingPolicyDecider);
  }

  /** Replaces the policy; resolves with the log position of the SchedulingPolicySet. */
  async set(policy: SchedulerPolicy, actor: string, reason: string): Promise<{ sequence: number }> {
    const { version } = await this.run(this.subject, { kind: 'set', ...this.stamp(), policy, actor, reason });
    return { sequence: version };
  }

  /** Records the configured policy unless the log holds one; resolves with the log position of the policy in force. */
  async recordConfigured(policy: SchedulerPolicy): Promise<{ recorded: boolean; sequence: number }> {
    const { events, version } = await this.run(this.subject, { kind: 'recordConfigured', ...this.stamp(), policy });
    return { recorded: events.length > 0, sequence: version };
  }

  private get subject(): string {
    return this.bus.topology.subjects.schedulingPolicy();
  }

  private stamp(): { id: string; at: string } {
    return { id: newEventId(), at: this.clock.now().toISOString() };
  }
}
