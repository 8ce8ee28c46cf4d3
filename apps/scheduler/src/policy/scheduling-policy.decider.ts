import type { DomainEvent } from '@fastgpu/contracts';
import type { BuildEvent, Decider } from '@fastgpu/eventsourcing';
import type { SchedulerPolicy } from '../placement/placement.types';

/**
 * The scheduling policy as one aggregate (its subject `<p>.evt.scheduler.policy.current`):
 * tenant weights for fair share, per-model quotas with borrowing. It changes by two commands:
 * - `set`: an operator replaces it (PUT /v1/scheduling-policy), with who and why;
 * - `recordConfigured`: a leading scheduler records the configured policy
 *   (FASTGPU_SCHEDULER_POLICY) as the first one, and only while the log holds none, so decisions
 *   never depend on a process's settings once the log has a policy.
 * Pure: ids and times arrive in the command, events are built by the given `build`. The engine
 * folds the same events into its own state (placement/scheduler.evolve.ts); this state holds
 * only what the commands decide on.
 */
export interface SchedulingPolicyState {
  /** The policy the log holds, undefined until a SchedulingPolicySet. */
  policy?: SchedulerPolicy;
}

export type SchedulingPolicyCommand =
  | { kind: 'set'; id: string; at: string; policy: SchedulerPolicy; actor: string; reason: string }
  | { kind: 'recordConfigured'; id: string; at: string; policy: SchedulerPolicy };

/** The actor and reason of a policy recorded from configuration. */
export const CONFIGURED_POLICY_ACTOR = 'config';
export const CONFIGURED_POLICY_REASON = 'FASTGPU_SCHEDULER_POLICY at scheduler start';

export function schedulingPolicyDecider(build: BuildEvent): Decider<SchedulingPolicyState, SchedulingPolicyCommand, DomainEvent> {
  const meta = (command: SchedulingPolicyCommand) => ({ id: command.id, time: command.at, tenantId: null, correlationId: command.id });
  return {
    initialState: () => ({}),
    decide(command, state) {
      switch (command.kind) {
        case 'set':
          return [build('SchedulingPolicySet', { policy: command.policy, setAt: command.at, actor: command.actor, reason: command.reason }, meta(command))];
        case 'recordConfigured':
          // The log's policy always wins: a configured one is only the first.
          if (state.policy) return [];
          return [build('SchedulingPolicySet', { policy: command.policy, setAt: command.at, actor: CONFIGURED_POLICY_ACTOR, reason: CONFIGURED_POLICY_REASON }, meta(command))];
        default: {
          const unreachable: never = command;
          return unreachable;
        }
      }
    },
    evolve(state, event) {
      // The subject holds only policies; anything else would be a bug upstream, and changes nothing.
      return event.type === 'SchedulingPolicySet' ? { policy: event.data.policy } : state;
    },
  };
}
