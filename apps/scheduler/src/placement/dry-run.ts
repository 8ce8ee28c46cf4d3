import { deriveId } from '@fastgpu/contracts';
import { newJobState, newSubtaskState } from './jobs.evolve';
import type { CycleResult, Decision, HypotheticalJob, Waiting } from './placement.types';
import type { QueueEntry } from './scheduler.state';

/**
 * The dry-run: a cycle that also queues a job the log does not hold. The job is built by the
 * same factories the fold builds a submitted job with (jobs.evolve.ts); the cycle reports where
 * its sub-tasks would go and what they would preempt, and nothing of it is published.
 */

/** A hypothetical job as a queue entry: a job state that the fold never saw, all sub-tasks pending. */
export function hypotheticalEntry(h: HypotheticalJob, nowMs: number): QueueEntry {
  const job = newJobState({
    jobId: h.jobId,
    tenantId: h.tenantId,
    projectId: 'dry-run',
    eventId: deriveId('00000000-0000-7000-8000-000000000000', `dry-run/${h.jobId}`),
    gpuModels: h.gpuModels,
    gpusPerSubtask: h.gpusPerSubtask,
    subtaskCount: h.subtaskCount,
    runtimeMs: h.runtimeMs,
    priorityClass: h.priorityClass,
    priority: h.priority,
    preemptible: h.preemptible,
    gang: h.gang,
    gangTopologyKey: h.gangTopologyKey,
    capacityType: 'on-demand',
    dependsOn: [],
    submittedAtMs: nowMs,
    // After every real entry of the same priority and submit time.
    sequence: Number.MAX_SAFE_INTEGER,
  });
  for (let index = 0; index < h.subtaskCount; index++) {
    const subtask = newSubtaskState(job, { subtaskId: `${h.jobId}-${index}`, index, gpus: h.gpusPerSubtask, runtimeMs: h.runtimeMs, causeId: deriveId(job.eventId, `subtask/${index}`) });
    job.subtasks.push(subtask);
    job.pending.push(subtask);
  }
  job.pendingCount = h.subtaskCount;
  return { kind: 'job', job };
}

/** What a cycle decided for the hypothetical job: its placements, what they preempt, and why the rest waits. */
export function hypotheticalOutcome(decisions: readonly Decision[], waiting: Map<string, Waiting>, jobId: string): NonNullable<CycleResult['hypothetical']> {
  const placed: NonNullable<CycleResult['hypothetical']>['placed'] = [];
  const preempted: NonNullable<CycleResult['hypothetical']>['preempted'] = [];
  for (const d of decisions) {
    if (d.type === 'SubtaskPlaced' && d.data.jobId === jobId) placed.push({ index: Number(d.data.subtaskId.slice(jobId.length + 1)), nodeId: d.data.nodeId, gpuModel: d.data.gpuModel, gpuIndices: d.data.gpuIndices });
    if (d.type === 'SubtaskPreempted' && d.data.preemptedByJobId === jobId) preempted.push({ subtaskId: d.data.subtaskId, jobId: d.data.jobId, nodeId: d.data.nodeId });
  }
  return { placed, preempted, waiting: waiting.get(jobId) };
}
