import { failureKindFault, judgeNodeReport, type DomainEvent, type StoredEvent } from '@fastgpu/contracts';
import { instantMs } from '@fastgpu/money';
import { allocate, observe, release, rememberStop } from './allocations';
import { completedOutcome } from './dependencies';
import type { SchedulerEvent } from './placement.types';
import { enqueue, markQueueDirty } from './queues';
import { CLASS_RANK, COMPLETED_OUTCOMES_MAX, PLATFORM_ATTEMPTS_MAX, REJECTED_REPORTS_KEPT_MAX, type Allocation, type CompletedJob, type JobState, type SchedulerState, type SubtaskState } from './scheduler.state';

/**
 * The jobs aggregate of the fold: a job and its sub-tasks from submission to completion —
 * queued, placed, started, ended (succeeded, failed by the user or the platform, preempted),
 * requeued or abandoned — and the attention sets that tell the cycle which of them need a
 * decision other than placement. Node reports count only when the shared report rule accepts
 * them (libs/contracts report-fencing).
 */

export type JobEvent = Extract<SchedulerEvent, { type: JobEventType }>;
export type JobEventType = 'JobSubmitted' | 'SubtaskCreated' | 'JobCancelRequested' | 'SubtaskPlaced' | 'SubtaskStarted' | 'SubtaskCompleted' | 'SubtaskFailed' | 'SubtaskPreempted' | 'SubtaskRequeued' | 'SubtaskAbandoned' | 'JobCompleted';

/** A job as the queues hold it, before any sub-task: from JobSubmitted, or a dry-run's hypothetical job. */
export type NewJob = Omit<JobState, 'classRank' | 'subtasks' | 'pending' | 'pendingCount' | 'runningCount' | 'succeeded' | 'failed' | 'cancelled' | 'gpuMsObserved' | 'cancelReason' | 'doomedReason'> & {
  priorityClass: keyof typeof CLASS_RANK;
};

export function newJobState(j: NewJob): JobState {
  return {
    jobId: j.jobId,
    tenantId: j.tenantId,
    projectId: j.projectId,
    eventId: j.eventId,
    traceparent: j.traceparent,
    gpuModels: j.gpuModels,
    gpusPerSubtask: j.gpusPerSubtask,
    subtaskCount: j.subtaskCount,
    runtimeMs: j.runtimeMs,
    classRank: CLASS_RANK[j.priorityClass],
    priority: j.priority,
    // The preemptible class is preemptible whatever the flag says.
    preemptible: j.preemptible || j.priorityClass === 'preemptible',
    gang: j.gang,
    gangTopologyKey: j.gangTopologyKey,
    capacityType: j.capacityType,
    dependsOn: j.dependsOn,
    retryPolicy: j.retryPolicy,
    workload: j.workload,
    submittedAtMs: j.submittedAtMs,
    sequence: j.sequence,
    subtasks: [],
    pending: [],
    pendingCount: 0,
    runningCount: 0,
    succeeded: 0,
    failed: 0,
    cancelled: 0,
    gpuMsObserved: 0,
  };
}

/** A sub-task's first attempt, pending; `causeId` is the event its placement ids derive from. */
export function newSubtaskState(job: JobState, s: { subtaskId: string; index: number; gpus: number; runtimeMs: number; causeId: string }): SubtaskState {
  return {
    subtaskId: s.subtaskId,
    job,
    index: s.index,
    gpus: s.gpus,
    runtimeMs: s.runtimeMs,
    status: 'pending',
    attempt: 1,
    platformFailures: 0,
    userFailures: 0,
    causeId: s.causeId,
  };
}

/**
 * The allocation a node report is about, if the report matches it by the shared report rule (the
 * node on its subject and in its body, sub-task, attempt, lease epoch); else undefined, and the
 * refusal is kept for the shell. A forged or stale report changes nothing: the sub-task keeps
 * running and its GPUs stay held.
 */
function reportedAllocation(state: SchedulerState, stored: StoredEvent, report: DomainEvent<'SubtaskStarted'> | DomainEvent<'SubtaskCompleted'> | DomainEvent<'SubtaskFailed'>): Allocation | undefined {
  const d = report.data;
  const subtask = state.subtasks.get(d.subtaskId);
  const allocation = subtask?.job.jobId === d.jobId ? subtask.allocation : undefined;
  const placement = allocation && { nodeId: allocation.node.nodeId, subtaskId: d.subtaskId, attempt: allocation.attempt, leaseEpoch: allocation.leaseEpoch };
  const judgement = judgeNodeReport(placement, { ...d, subject: stored.subject });
  if (judgement.ok) return allocation;
  state.rejectedReports.push({ sequence: stored.sequence, eventId: report.id, type: report.type, nodeId: d.nodeId, subject: stored.subject, subtaskId: d.subtaskId, code: judgement.code, reason: judgement.reason });
  if (state.rejectedReports.length > REJECTED_REPORTS_KEPT_MAX) state.rejectedReports.splice(0, state.rejectedReports.length - REJECTED_REPORTS_KEPT_MAX);
  return undefined;
}

/** The current allocation of a sub-task if a scheduler event matches it (same attempt and epoch), else undefined (stale). */
function currentAllocation(state: SchedulerState, subtaskId: string, jobId: string, attempt: number, leaseEpoch: number): Allocation | undefined {
  const subtask = state.subtasks.get(subtaskId);
  if (subtask?.job.jobId !== jobId) return undefined;
  const allocation = subtask.allocation;
  if (!allocation || allocation.attempt !== attempt || allocation.leaseEpoch !== leaseEpoch) return undefined;
  return allocation;
}

export function hasAwaiting(job: JobState): boolean {
  for (const s of job.subtasks) if (s && (s.status === 'awaitingRequeue' || s.status === 'awaitingAbandon')) return true;
  return false;
}

/** Whether a job needs a decision besides placement: stop, complete, fail on a dependency, or restart a gang. */
export function needsReview(state: SchedulerState, job: JobState): boolean {
  if (job.cancelReason !== undefined || job.doomedReason !== undefined) return true;
  const terminal = job.succeeded + job.failed + job.cancelled;
  if (terminal === job.subtaskCount) return true;
  if (job.gang && job.runningCount > 0 && (job.pendingCount > 0 || hasAwaiting(job))) return true;
  if (job.runningCount === 0) {
    for (const dependency of job.dependsOn) {
      const outcome = completedOutcome(state, job.tenantId, dependency.jobId);
      if (dependency.condition === 'afterSuccess' && outcome !== undefined && outcome !== 'succeeded') return true;
    }
  }
  return false;
}

/** Keeps the attention set exact, so a cycle only looks at jobs that need a decision. */
function review(state: SchedulerState, job: JobState): void {
  if (state.jobs.get(job.jobId) === job && needsReview(state, job)) state.attentionJobs.add(job);
  else state.attentionJobs.delete(job);
}

function setPending(state: SchedulerState, subtask: SubtaskState): void {
  const job = subtask.job;
  subtask.status = 'pending';
  job.pending.push(subtask);
  if (job.pending.length > 1 && job.pending[job.pending.length - 2]!.index > subtask.index) job.pending.sort((a, b) => a.index - b.index);
  job.pendingCount++;
  if (job.pendingCount === 1 && job.cancelReason === undefined) enqueue(state, { kind: 'job', job }, job.classRank, job.tenantId);
}

/** An attempt ended without success: the next decision requeues it, abandons it, or it failed for good. */
export function endAttempt(state: SchedulerState, subtask: SubtaskState, fault: 'user' | 'platform' | 'preempted', exitCode: number | undefined, causeId: string, reason: string): void {
  const job = subtask.job;
  job.runningCount--;
  subtask.allocation = undefined;
  subtask.endCauseId = causeId;
  subtask.endReason = reason;
  if (job.cancelReason !== undefined || job.doomedReason !== undefined) {
    subtask.status = 'cancelled';
    job.cancelled++;
    review(state, job);
    return;
  }
  if (fault === 'preempted') {
    subtask.status = 'awaitingRequeue';
  } else if (fault === 'platform') {
    subtask.platformFailures++;
    subtask.status = subtask.platformFailures >= PLATFORM_ATTEMPTS_MAX ? 'awaitingAbandon' : 'awaitingRequeue';
  } else {
    subtask.userFailures++;
    const policy = job.retryPolicy;
    const retryable = policy !== undefined && subtask.userFailures < policy.maxAttempts && (policy.retryOnExitCodes.length === 0 || (exitCode !== undefined && policy.retryOnExitCodes.includes(exitCode)));
    if (retryable) subtask.status = 'awaitingRequeue';
    else {
      subtask.status = 'failed';
      job.failed++;
      if (job.gang) job.doomedReason = `gang member ${subtask.index} failed: ${reason}`;
      review(state, job);
      return;
    }
  }
  state.attentionSubtasks.add(subtask);
  review(state, job);
}

function jobCompleted(state: SchedulerState, jobId: string, tenantId: string, outcome: CompletedJob['outcome']): void {
  const job = state.jobs.get(jobId);
  if (job) {
    for (const subtask of job.subtasks) if (subtask?.allocation) release(state, subtask.allocation);
    state.attentionJobs.delete(job);
    for (const subtask of job.subtasks) {
      if (!subtask) continue;
      state.attentionSubtasks.delete(subtask);
      state.subtasks.delete(subtask.subtaskId);
    }
    markQueueDirty(state, job.classRank, job.tenantId);
    state.jobs.delete(jobId);
  }
  if (state.completedJobs.size >= COMPLETED_OUTCOMES_MAX) {
    const oldest = state.completedJobs.keys().next().value;
    if (oldest !== undefined) state.completedJobs.delete(oldest);
  }
  state.completedJobs.set(jobId, { tenantId, outcome });
  for (const dependent of state.dependents.get(jobId) ?? []) review(state, dependent);
  state.dependents.delete(jobId);
}

/** Folds one event of the jobs aggregate (the sequence check is the caller's: scheduler.evolve.ts). */
export function evolveJobs(state: SchedulerState, stored: StoredEvent, e: JobEvent): SchedulerState {
  const { sequence, subject } = stored;
  switch (e.type) {
    case 'JobSubmitted': {
      const d = e.data;
      if (state.jobs.has(d.jobId) || state.completedJobs.has(d.jobId)) return state;
      const job = newJobState({
        jobId: d.jobId,
        tenantId: d.tenantId,
        projectId: d.projectId,
        eventId: e.id,
        traceparent: e.traceparent,
        gpuModels: d.gpuModels,
        gpusPerSubtask: d.gpusPerSubtask,
        subtaskCount: d.subtaskCount,
        runtimeMs: d.runtimeMs,
        priorityClass: d.priorityClass,
        priority: d.priority,
        preemptible: d.preemptible,
        gang: d.gang,
        gangTopologyKey: d.gangTopologyKey,
        capacityType: d.capacityType,
        dependsOn: d.dependsOn,
        retryPolicy: d.retryPolicy,
        workload: d.workload,
        submittedAtMs: instantMs(d.submittedAt),
        sequence,
      });
      state.jobs.set(d.jobId, job);
      for (const dependency of d.dependsOn) {
        // A finished job (of any tenant) never completes again: nothing to wait for here.
        if (state.completedJobs.has(dependency.jobId)) continue;
        const list = state.dependents.get(dependency.jobId) ?? [];
        list.push(job);
        state.dependents.set(dependency.jobId, list);
      }
      if (d.dependsOn.length) review(state, job);
      return state;
    }
    case 'SubtaskCreated': {
      const d = e.data;
      const job = state.jobs.get(d.jobId);
      if (!job || job.subtasks[d.index]) return state;
      const subtask = newSubtaskState(job, { subtaskId: d.subtaskId, index: d.index, gpus: d.gpus, runtimeMs: d.runtimeMs, causeId: e.id });
      job.subtasks[d.index] = subtask;
      state.subtasks.set(d.subtaskId, subtask);
      if (job.cancelReason !== undefined) {
        subtask.status = 'cancelled';
        job.cancelled++;
        return state;
      }
      setPending(state, subtask);
      return state;
    }
    case 'JobCancelRequested': {
      const job = state.jobs.get(e.data.jobId);
      if (!job || job.cancelReason !== undefined) return state;
      job.cancelReason = e.data.reason;
      for (const subtask of job.subtasks) {
        if (subtask && (subtask.status === 'pending' || subtask.status === 'awaitingRequeue' || subtask.status === 'awaitingAbandon')) {
          subtask.status = 'cancelled';
          job.cancelled++;
          state.attentionSubtasks.delete(subtask);
        }
      }
      job.pending = [];
      job.pendingCount = 0;
      markQueueDirty(state, job.classRank, job.tenantId);
      review(state, job);
      return state;
    }
    case 'SubtaskPlaced': {
      const d = e.data;
      const node = state.nodes.get(d.nodeId);
      if (node && subject.endsWith(`.${d.nodeId}`)) node.schedulerSubjectSequence = sequence;
      const subtask = state.subtasks.get(d.subtaskId);
      const job = subtask?.job;
      if (!node || !job || !subtask || job.jobId !== d.jobId || subtask.status !== 'pending' || subtask.attempt !== d.attempt) return state;
      const allocation: Allocation = {
        kind: 'subtask',
        key: d.subtaskId,
        tenantId: d.tenantId,
        node,
        gpuModel: d.gpuModel,
        gpus: d.gpus,
        gpuIndices: d.gpuIndices,
        leaseEpoch: d.leaseEpoch,
        attempt: d.attempt,
        classRank: job.classRank,
        priority: job.priority,
        preemptible: job.preemptible,
        placedAtMs: instantMs(d.placedAt),
        runtimeMs: d.runtimeMs,
        eventId: e.id,
        subtask,
      };
      allocate(state, allocation);
      state.unstarted.add(allocation);
      subtask.status = 'placed';
      subtask.allocation = allocation;
      job.pendingCount--;
      job.runningCount++;
      const at = job.pending.indexOf(subtask);
      if (at >= 0) job.pending.splice(at, 1);
      if (job.pendingCount === 0) markQueueDirty(state, job.classRank, job.tenantId);
      if (job.gang) review(state, job);
      return state;
    }
    case 'SubtaskStarted': {
      const d = e.data;
      const allocation = reportedAllocation(state, stored, e);
      if (allocation && allocation.startedAtMs === undefined) {
        allocation.startedAtMs = instantMs(d.startedAt);
        state.unstarted.delete(allocation);
      }
      return state;
    }
    case 'SubtaskCompleted': {
      const d = e.data;
      const allocation = reportedAllocation(state, stored, e);
      if (!allocation?.subtask) return state;
      observe(allocation, instantMs(d.endedAt));
      release(state, allocation);
      const subtask = allocation.subtask;
      subtask.allocation = undefined;
      subtask.status = 'succeeded';
      subtask.job.runningCount--;
      subtask.job.succeeded++;
      review(state, subtask.job);
      return state;
    }
    case 'SubtaskFailed': {
      const d = e.data;
      const allocation = reportedAllocation(state, stored, e);
      if (!allocation?.subtask) return state;
      observe(allocation, instantMs(d.endedAt));
      release(state, allocation);
      // A real agent's failure kind decides who caused it (its own failures and restarts: platform, retried; the program's end: user, under the retry policy).
      const fault = d.failureKind ? failureKindFault(d.failureKind) : d.fault;
      endAttempt(state, allocation.subtask, fault, d.exitCode, e.id, `${fault} failure (exit ${d.exitCode}): ${d.reason}`);
      return state;
    }
    case 'SubtaskPreempted': {
      const d = e.data;
      const node = state.nodes.get(d.nodeId);
      if (node) node.schedulerSubjectSequence = sequence;
      const allocation = currentAllocation(state, d.subtaskId, d.jobId, d.attempt, d.leaseEpoch);
      rememberStop(state, { nodeId: d.nodeId, command: { kind: 'StopSubtask', commandId: e.id, subtaskId: d.subtaskId, attempt: d.attempt, leaseEpoch: d.leaseEpoch, reason: d.reason, issuedAt: d.preemptedAt } });
      if (!allocation?.subtask) return state;
      observe(allocation, instantMs(d.preemptedAt));
      release(state, allocation);
      endAttempt(state, allocation.subtask, 'preempted', undefined, e.id, `preempted: ${d.reason}`);
      return state;
    }
    case 'SubtaskRequeued': {
      const d = e.data;
      const subtask = state.subtasks.get(d.subtaskId);
      if (!subtask || subtask.job.jobId !== d.jobId || subtask.status !== 'awaitingRequeue' || subtask.attempt !== d.previousAttempt) return state;
      state.attentionSubtasks.delete(subtask);
      subtask.attempt = d.previousAttempt + 1;
      subtask.causeId = e.id;
      setPending(state, subtask);
      return state;
    }
    case 'SubtaskAbandoned': {
      const d = e.data;
      const subtask = state.subtasks.get(d.subtaskId);
      const job = subtask?.job;
      if (!job || !subtask || job.jobId !== d.jobId || subtask.status !== 'awaitingAbandon') return state;
      state.attentionSubtasks.delete(subtask);
      subtask.status = 'abandoned';
      job.failed++;
      if (job.gang) job.doomedReason = `gang member ${subtask.index} abandoned: ${d.reason}`;
      review(state, job);
      return state;
    }
    case 'JobCompleted':
      jobCompleted(state, e.data.jobId, e.data.tenantId, e.data.outcome);
      return state;
    default: {
      const unreachable: never = e;
      void unreachable;
      return state;
    }
  }
}
