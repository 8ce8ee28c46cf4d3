import { deriveId } from '@fastgpu/contracts';
import type { Cycle } from './cycle';
import { dependencyState } from './dependencies';
import { hasAwaiting } from './jobs.evolve';
import type { JobState } from './scheduler.state';
import { preempt, releaseLease } from './stops';

/**
 * Decisions other than placement, taken first in every cycle on the attention sets the fold
 * keeps exact: requeue or abandon an ended attempt, stop a cancelled or doomed job, fail a job
 * whose dependency failed, restart a gang that lost a member, complete a job whose sub-tasks
 * all ended, release a lease.
 */

export function housekeeping(c: Cycle): void {
  const now = c.command.now;
  for (const subtask of c.state.attentionSubtasks) {
    const job = subtask.job;
    const cause = subtask.endCauseId ?? subtask.causeId;
    if (subtask.status === 'awaitingRequeue') {
      const id = deriveId(cause, `requeued/${subtask.subtaskId}/${subtask.attempt}`);
      c.decisions.push({
        type: 'SubtaskRequeued',
        id,
        causationId: cause,
        correlationId: job.jobId,
        tenantId: job.tenantId,
        data: { jobId: job.jobId, tenantId: job.tenantId, subtaskId: subtask.subtaskId, previousAttempt: subtask.attempt, reason: (subtask.endReason ?? 'requeued').slice(0, 500), requeuedAt: now },
      });
    } else if (subtask.status === 'awaitingAbandon') {
      const id = deriveId(cause, `abandoned/${subtask.subtaskId}/${subtask.attempt}`);
      c.decisions.push({
        type: 'SubtaskAbandoned',
        id,
        causationId: cause,
        correlationId: job.jobId,
        tenantId: job.tenantId,
        data: {
          jobId: job.jobId,
          tenantId: job.tenantId,
          subtaskId: subtask.subtaskId,
          attempt: subtask.attempt,
          reason: `${subtask.platformFailures} platform failures: ${subtask.endReason ?? ''}`.slice(0, 500),
          abandonedAt: now,
        },
      });
    }
  }
  for (const job of c.state.attentionJobs) reviewJob(c, job);
  for (const lease of c.state.attentionLeases) {
    if (lease.status !== 'releasing' || !lease.allocation) continue;
    releaseLease(c, lease, lease.releaseReason ?? 'released');
  }
}

export function reviewJob(c: Cycle, job: JobState): void {
  const stopReason = job.cancelReason !== undefined ? `cancelled: ${job.cancelReason}` : job.doomedReason;
  if (stopReason !== undefined) {
    // A tenant's own cancellation is not a platform interruption: it is never credited back.
    const fault = job.cancelReason !== undefined ? 'user' : 'platform';
    for (const subtask of job.subtasks) if (subtask?.allocation && !c.scratch.victims.has(subtask.allocation)) preempt(c, subtask.allocation, stopReason, undefined, fault);
    if (job.runningCount === 0 && !hasAwaiting(job)) complete(c, job, job.cancelReason !== undefined ? 'cancelled' : 'failed', stopReason);
    return;
  }
  if (job.dependsOn.length && job.runningCount === 0) {
    const dependencies = dependencyState(c.state, job);
    if (!dependencies.ready && dependencies.failed) {
      complete(c, job, 'failed', dependencies.reason);
      return;
    }
  }
  if (job.gang && job.runningCount > 0 && (job.pendingCount > 0 || hasAwaiting(job))) {
    // Never a partial gang: a member went back to the queue, so the rest stops and the gang restarts whole.
    for (const subtask of job.subtasks) if (subtask?.allocation && !c.scratch.victims.has(subtask.allocation)) preempt(c, subtask.allocation, 'gang restart: a member was interrupted');
    return;
  }
  const created = job.subtasks.reduce((n, s) => (s ? n + 1 : n), 0);
  const terminal = job.succeeded + job.failed + job.cancelled;
  if (created === job.subtaskCount && terminal === job.subtaskCount) complete(c, job, job.failed > 0 ? 'failed' : 'succeeded', job.failed > 0 ? `${job.failed} of ${job.subtaskCount} sub-tasks failed` : undefined);
}

export function complete(c: Cycle, job: JobState, outcome: 'succeeded' | 'failed' | 'cancelled', reason?: string): void {
  const id = deriveId(job.eventId, 'completed');
  const notRun = job.subtaskCount - job.succeeded - job.failed;
  c.decisions.push({
    type: 'JobCompleted',
    id,
    causationId: job.eventId,
    correlationId: job.jobId,
    tenantId: job.tenantId,
    data: {
      jobId: job.jobId,
      tenantId: job.tenantId,
      projectId: job.projectId,
      outcome,
      ...(reason ? { reason: reason.slice(0, 500) } : {}),
      subtasksSucceeded: job.succeeded,
      subtasksFailed: job.failed,
      subtasksCancelled: Math.max(0, notRun),
      gpuMsObserved: job.gpuMsObserved,
      completedAt: c.command.now,
    },
  });
}
