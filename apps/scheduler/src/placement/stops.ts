import { deriveId, type NodeCommand } from '@fastgpu/contracts';
import type { Cycle } from './cycle';
import type { Allocation, LeaseState } from './scheduler.state';

/**
 * Stopping running work in a cycle: releasing a lease (LeaseReleased, then DetachLease) and
 * preempting a sub-task (SubtaskPreempted, then StopSubtask). Housekeeping stops what was
 * cancelled or doomed; preemption stops victims to make room. Ids derive from the placement's
 * event, so a cycle decided again publishes the same ids.
 */

export function releaseLease(c: Cycle, lease: LeaseState, reason: string): void {
  const allocation = lease.allocation!;
  const id = deriveId(allocation.eventId, 'released');
  c.decisions.push({
    type: 'LeaseReleased',
    id,
    causationId: allocation.eventId,
    correlationId: lease.leaseId,
    tenantId: lease.tenantId,
    nodeId: allocation.node.nodeId,
    command: { kind: 'DetachLease', commandId: id, leaseId: lease.leaseId, leaseEpoch: allocation.leaseEpoch, reason: reason.slice(0, 500), issuedAt: c.command.now },
    data: { leaseId: lease.leaseId, tenantId: lease.tenantId, nodeId: allocation.node.nodeId, leaseEpoch: allocation.leaseEpoch, reason: reason.slice(0, 500), releasedAt: c.command.now },
  });
}

/** Stops a running allocation: SubtaskPreempted (or LeaseReleased) then a StopSubtask command. */
export function preempt(c: Cycle, allocation: Allocation, reason: string, byJobId?: string, fault: 'user' | 'platform' = 'platform'): void {
  if (c.scratch.victims.has(allocation)) return;
  const undoLength = c.decisions.length;
  c.scratch.evict(allocation);
  c.preemptions++;
  if (c.journal) {
    c.journal.push(() => {
      c.scratch.unevict(allocation);
      c.preemptions--;
      c.decisions.length = undoLength;
    });
  }
  if (allocation.lease) {
    releaseLease(c, allocation.lease, `preempted: ${reason}`);
    return;
  }
  const subtask = allocation.subtask!;
  const job = subtask.job;
  const id = deriveId(allocation.eventId, 'preempted');
  const command: NodeCommand = {
    kind: 'StopSubtask',
    // The command stream dedupes on its own: the event id serves as the command id.
    commandId: id,
    subtaskId: subtask.subtaskId,
    attempt: allocation.attempt,
    leaseEpoch: allocation.leaseEpoch,
    reason: reason.slice(0, 500),
    issuedAt: c.command.now,
  };
  c.decisions.push({
    type: 'SubtaskPreempted',
    id,
    causationId: allocation.eventId,
    correlationId: job.jobId,
    tenantId: job.tenantId,
    nodeId: allocation.node.nodeId,
    command,
    data: {
      jobId: job.jobId,
      tenantId: job.tenantId,
      subtaskId: subtask.subtaskId,
      attempt: allocation.attempt,
      nodeId: allocation.node.nodeId,
      leaseEpoch: allocation.leaseEpoch,
      reason: reason.slice(0, 500),
      ...(byJobId ? { preemptedByJobId: byJobId } : {}),
      fault,
      preemptedAt: c.command.now,
    },
  });
}
