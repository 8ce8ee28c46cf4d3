import { completedOutcome, dependencyState } from './dependencies';
import type { Reservation, Waiting } from './placement.types';
import { compareEntries, isQueued } from './queues';
import type { NodeState, QueueEntry, SchedulerState } from './scheduler.state';

/**
 * The questions the scheduler answers without deciding anything: whether any node could ever
 * run a job (intake's feasibility check and the dry-run's first step), and why a job waits and
 * where it stands (intake's GET /v1/jobs/{id} through `explain`).
 */

export interface FeasibilityRequest {
  gpuModels: string[];
  gpusPerSubtask: number;
  subtaskCount: number;
  gang?: boolean;
  gangTopologyKey?: string;
  /** The tenant asking: its dependencies resolve only among its own jobs (without one, none resolves). */
  tenantId?: string;
  dependsOn?: Array<{ jobId: string }>;
}

/**
 * Whether any node could ever run the job (not whether it fits now): models the fleet knows,
 * GPUs per sub-task within a node of an allowed model, a gang no larger than the fleet.
 */
export function feasibility(state: SchedulerState, request: FeasibilityRequest): { feasible: boolean; reason?: string; field?: string } {
  if (!Number.isInteger(request.gpusPerSubtask) || request.gpusPerSubtask <= 0) return { feasible: false, field: 'gpusPerSubtask', reason: 'GPUs per sub-task must be a positive integer' };
  if (!Number.isInteger(request.subtaskCount) || request.subtaskCount <= 0) return { feasible: false, field: 'subtaskCount', reason: 'the sub-task count must be a positive integer' };
  const models = new Map<string, NodeState[]>();
  for (const node of state.nodeList) {
    const list = models.get(node.gpuModel) ?? [];
    list.push(node);
    models.set(node.gpuModel, list);
  }
  const known = request.gpuModels.filter((m) => models.has(m));
  if (known.length === 0) {
    return { feasible: false, field: 'gpuModels', reason: `unknown GPU model ${request.gpuModels.join(', ')}: the fleet has ${[...models.keys()].sort().join(', ') || 'no nodes'}` };
  }
  let largest = 0;
  for (const m of known) for (const n of models.get(m)!) if (n.gpuCount > largest) largest = n.gpuCount;
  if (request.gpusPerSubtask > largest) {
    return { feasible: false, field: 'gpusPerSubtask', reason: `${request.gpusPerSubtask} GPUs per sub-task, but the largest ${known.join(' / ')} node has ${largest}` };
  }
  if (request.gang) {
    const slotsByDomain = new Map<string, number>();
    let slots = 0;
    for (const m of known) {
      for (const n of models.get(m)!) {
        const s = Math.floor(n.gpuCount / request.gpusPerSubtask);
        slots += s;
        if (request.gangTopologyKey) {
          const value = n.labels[request.gangTopologyKey];
          if (value === undefined) continue;
          const key = `${m}\u0000${value}`;
          slotsByDomain.set(key, (slotsByDomain.get(key) ?? 0) + s);
        }
      }
    }
    const available = request.gangTopologyKey ? Math.max(0, ...slotsByDomain.values()) : slots;
    if (request.subtaskCount > available) {
      const where = request.gangTopologyKey ? `one ${request.gangTopologyKey} domain` : 'the fleet';
      return { feasible: false, field: 'subtaskCount', reason: `a gang of ${request.subtaskCount} × ${request.gpusPerSubtask} GPUs is larger than ${where} (${available} such slots)` };
    }
  }
  for (const dependency of request.dependsOn ?? []) {
    // Another tenant's job, live or completed, is unknown to this one.
    const known = request.tenantId !== undefined && (state.jobs.get(dependency.jobId)?.tenantId === request.tenantId || completedOutcome(state, request.tenantId, dependency.jobId) !== undefined);
    if (!known) return { feasible: false, field: 'dependsOn', reason: `depends on unknown job ${dependency.jobId}` };
  }
  return { feasible: true };
}

export interface Explanation {
  state: 'queued' | 'running' | 'completed' | 'unknown';
  waiting?: string;
  code?: Waiting['code'];
  queuePosition?: number;
  pendingSubtasks?: number;
  runningSubtasks?: number;
  reservation?: { startAt: string; holder: boolean };
}

/**
 * Why a job waits and where it stands: position counts queued entries ahead of it in class order,
 * then job priority, then submit time (the order fair share interleaves tenants within).
 */
export function explain(state: SchedulerState, jobId: string, tenantId: string, lastWaiting: Map<string, Waiting>, reservation?: Reservation): Explanation {
  const job = state.jobs.get(jobId);
  if (!job || job.tenantId !== tenantId) {
    return completedOutcome(state, tenantId, jobId) ? { state: 'completed', waiting: undefined } : { state: 'unknown' };
  }
  const base = { pendingSubtasks: job.pendingCount, runningSubtasks: job.runningCount };
  if (job.pendingCount === 0) return { state: job.runningCount > 0 ? 'running' : 'queued', ...base };
  const self: QueueEntry = { kind: 'job', job };
  let ahead = 0;
  for (let rank = 0; rank < job.classRank; rank++) for (const q of state.queues[rank]!.values()) for (const e of q.entries) if (isQueued(e)) ahead++;
  for (const q of state.queues[job.classRank].values()) for (const e of q.entries) if (isQueued(e) && e !== self && !(e.kind === 'job' && e.job === job) && compareEntries(e, self) < 0) ahead++;
  const waiting = lastWaiting.get(jobId);
  const dependencies = job.dependsOn.length ? dependencyState(state, job) : { ready: true as const };
  const reason = !dependencies.ready ? { code: 'dependency' as const, reason: dependencies.reason } : waiting;
  return {
    state: 'queued',
    ...base,
    queuePosition: ahead + 1,
    ...(reason ? { waiting: reason.reason, code: reason.code } : { waiting: 'not yet considered by a scheduling cycle' }),
    ...(reservation ? { reservation: { startAt: new Date(reservation.startAtMs).toISOString(), holder: reservation.entryKey === jobId } } : {}),
  };
}
