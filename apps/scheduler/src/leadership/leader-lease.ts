import { LeaderLease, type Bus } from '@fastgpu/messaging';

/**
 * One active scheduler: the leader lease of libs/messaging (`LeaderLease`, the one implementation
 * projections use too) on the scheduler's own stream `<P>_SCHEDULER_LEADER`, subject
 * `<prefix>.leader.scheduler`. The holder stops placing as soon as its last renewal is older than
 * the TTL minus a margin, before any standby can take over.
 *
 * This is the soft fence; the hard fence is optimistic concurrency on each node's scheduler
 * subject plus derived event ids (a second writer's placement of the same attempt is a duplicate),
 * so even a paused, stale leader can never assign a GPU twice.
 */
export function leaderStreamName(bus: Bus): string {
  return `${bus.topology.streams.events.replace(/_EVENTS$/, '')}_SCHEDULER_LEADER`;
}

/** The scheduler's lease: one subject in its own stream. */
export function schedulerLeaderLease(options: { bus: Bus; instanceId: string; ttlMs: number; nowMs?: () => number }): LeaderLease {
  return new LeaderLease({ ...options, stream: leaderStreamName(options.bus), subject: `${options.bus.topology.prefix}.leader.scheduler` });
}
