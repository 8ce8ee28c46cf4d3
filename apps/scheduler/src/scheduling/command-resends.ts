import type { NodeCommand } from '@fastgpu/contracts';
import { attachLeaseCommand, runSubtaskCommand } from '../placement/node-commands';
import type { Allocation, SchedulerState } from '../placement/scheduler.state';

/**
 * Node commands sent again. A placement is stored in the log before its RunSubtask goes to the
 * node; when that command's publish fails (the commands stream's leader killed a moment after the
 * placement was stored) or is lost, the node never runs the sub-task and, with nothing else to move
 * it, the sub-task would stay placed for ever. So the leader sends the command again, with the
 * same command id (the placement's event id: the commands stream drops a repeat within its
 * duplicate window, the agent ignores a run it already has or had):
 * - after taking over, and after any cycle whose publishes failed: every command that may not
 *   have left (`allSince`);
 * - every pass, a placement not reported started `resendAfterMs` after it was placed or last sent
 *   (`overdue`), whatever the leader believes it sent.
 */

/** A placement not reported started this long after it was placed (or last sent) gets its RunSubtask again. */
export const COMMAND_RESEND_AFTER_MS = 10_000;
/** Commands sent again in one pass at most (the next pass sends the rest). */
export const COMMAND_RESENDS_PER_PASS_MAX = 512;

export interface AddressedCommand {
  nodeId: string;
  command: NodeCommand;
}

/** The RunSubtask of a placement not reported started, as first sent (its placement's time). */
export function runCommandOf(allocation: Allocation): AddressedCommand | undefined {
  const subtask = allocation.subtask;
  if (!subtask) return undefined;
  return { nodeId: allocation.node.nodeId, command: runSubtaskCommand(allocation.eventId, subtask, allocation, new Date(allocation.placedAtMs).toISOString()) };
}

/** Every command that may not have left an earlier leader or a failed cycle: unstarted placements, granted leases, recent stops. */
export function commandsToResend(state: SchedulerState): AddressedCommand[] {
  const commands: AddressedCommand[] = [];
  for (const allocation of state.unstarted) {
    const run = runCommandOf(allocation);
    if (run) commands.push(run);
  }
  for (const lease of state.leases.values()) {
    const allocation = lease.allocation;
    if (lease.status !== 'granted' || !allocation) continue;
    commands.push({ nodeId: allocation.node.nodeId, command: attachLeaseCommand(allocation.eventId, lease, allocation, new Date(allocation.placedAtMs).toISOString()) });
  }
  for (const stop of state.recentStops) commands.push(stop);
  return commands;
}

/** When each unstarted placement's command was last sent again, by its event id; forgets placements that started or ended. */
export class OverdueRuns {
  private readonly sentAtMs = new Map<string, number>();

  constructor(private readonly resendAfterMs = COMMAND_RESEND_AFTER_MS) {}

  /** The RunSubtask commands due again at `nowMs` (at most COMMAND_RESENDS_PER_PASS_MAX), each counted as sent now. */
  due(state: SchedulerState, nowMs: number): AddressedCommand[] {
    const due: AddressedCommand[] = [];
    const unstarted = new Set<string>();
    for (const allocation of state.unstarted) {
      unstarted.add(allocation.eventId);
      if (due.length >= COMMAND_RESENDS_PER_PASS_MAX) continue;
      const lastMs = this.sentAtMs.get(allocation.eventId) ?? allocation.placedAtMs;
      if (nowMs - lastMs < this.resendAfterMs) continue;
      const run = runCommandOf(allocation);
      if (!run) continue;
      due.push(run);
      this.sentAtMs.set(allocation.eventId, nowMs);
    }
    for (const eventId of this.sentAtMs.keys()) if (!unstarted.has(eventId)) this.sentAtMs.delete(eventId);
    return due;
  }
}
