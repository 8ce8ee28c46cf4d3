import { subtaskWorkload, type NodeCommand } from '@fastgpu/contracts';
import type { LeaseState, SubtaskState } from './scheduler.state';

/**
 * The node commands that start work, built in one place: by the cycle when it places (the
 * command follows its event), and by the engine when it sends them again after a takeover
 * (same command id, so the commands stream and the agent drop the repeat).
 */

export type RunSubtask = Extract<NodeCommand, { kind: 'RunSubtask' }>;
export type AttachLease = Extract<NodeCommand, { kind: 'AttachLease' }>;

/** Run one attempt of a sub-task on the given GPUs; `commandId` is its SubtaskPlaced event's id. */
export function runSubtaskCommand(commandId: string, subtask: SubtaskState, placement: { attempt: number; leaseEpoch: number; gpuIndices: number[] }, issuedAt: string): RunSubtask {
  const job = subtask.job;
  return {
    kind: 'RunSubtask',
    commandId,
    jobId: job.jobId,
    tenantId: job.tenantId,
    subtaskId: subtask.subtaskId,
    attempt: placement.attempt,
    leaseEpoch: placement.leaseEpoch,
    gpuIndices: placement.gpuIndices,
    runtimeMs: subtask.runtimeMs,
    ...(job.workload ? { workload: subtaskWorkload(job.workload, subtask.index, job.subtaskCount) } : {}),
    issuedAt,
  };
}

/** Attach a granted lease's GPUs on its node; `commandId` is its LeaseGranted event's id. */
export function attachLeaseCommand(commandId: string, lease: LeaseState, placement: { leaseEpoch: number; gpuIndices: number[] }, issuedAt: string): AttachLease {
  return { kind: 'AttachLease', commandId, leaseId: lease.leaseId, tenantId: lease.tenantId, leaseEpoch: placement.leaseEpoch, gpuIndices: placement.gpuIndices, issuedAt };
}
