import { checkJobRequest, type SubmitJobRequest } from '@fastgpu/contracts';
import { unprocessable } from '@fastgpu/http';
import type { SchedulerEngine } from '../scheduling/scheduler.engine';

/**
 * The dry-run question: a job request (the body of POST /v1/jobs, parsed with the same
 * `submitJobRequest`) checked and divided into sub-tasks by the same `checkJobRequest` as intake's
 * submission (libs/contracts job-submission.ts), so a dry-run refuses exactly what a submission
 * refuses (apps/scheduler/src/http/dry-run-parity.spec.ts), then asked of the scheduler's folded
 * state: could any node ever run it, and what would one cycle place and preempt now. Dependencies
 * are not resolved (only intake knows the tenant's jobs). `tenantId` is the caller's tenant, null
 * for a platform role; a tenant learns where room would be made, not whose work it is. The answer's
 * type is held to `dryRunResponse` (scheduler.responses.ts, AnswersMatchSchemas).
 */
export function dryRunJob(engine: SchedulerEngine, tenantId: string | null, request: SubmitJobRequest, nowMs: number) {
  // A refused request throws JobRequestError, a DomainError the edge maps (422 with the field), as intake's does.
  const checked = checkJobRequest(request, nowMs);
  const subtaskCount = checked.subtasks.length;
  const shape = { gpuModels: request.gpuModels, gpusPerSubtask: request.gpusPerSubtask, subtaskCount, gang: request.gang, ...(request.gangTopologyKey ? { gangTopologyKey: request.gangTopologyKey } : {}) };
  const verdict = engine.feasibility(shape);
  if (!verdict.feasible) throw unprocessable(verdict.reason ?? 'no node could ever run this job', verdict.field ?? 'gpuModels');
  const result = engine.dryRun({
    jobId: 'dry-run',
    tenantId: tenantId ?? 'platform',
    ...shape,
    runtimeMs: checked.runtimeMs,
    priorityClass: request.priorityClass,
    priority: request.priority,
    preemptible: checked.preemptible,
  });
  if (!result.feasible) throw unprocessable(result.reason ?? 'no node could ever run this job', 'gpuModels');
  return {
    wouldPlace: result.placed.length === subtaskCount,
    subtaskCount,
    placedNow: result.placed.length,
    placements: result.placed,
    wouldPreempt: result.preempted.map((p) => (tenantId === null ? p : { nodeId: p.nodeId })),
    ...(result.waiting ? { waiting: result.waiting.reason, code: result.waiting.code } : {}),
  };
}
