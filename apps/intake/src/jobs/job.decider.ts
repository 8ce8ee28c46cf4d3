import { deriveId, type CheckedJobRequest, type DomainEvent, type EventData, type SubmitJobRequest } from '@fastgpu/contracts';
import { illegalState, notFoundError, type BuildEvent, type Decider } from '@fastgpu/eventsourcing';

/**
 * A job as intake decides on it (one aggregate per job, the subject `…intake.job.<id>`): submitted
 * once as `JobSubmitted` and one `SubtaskCreated` per planned sub-task, asked to be cancelled once
 * (`JobCancelRequested`). Placement, runs and the job's end are the scheduler's and the agents'
 * (on their subjects); the routes read them from the `intake-jobs` projection.
 *
 * Ids derive from the job id (itself named by the tenant's Idempotency-Key), so a decision taken
 * again — a retried request, or the kernel deciding again after another writer — is the same
 * events. Pure: the job id, times, the checked request (libs/contracts `checkJobRequest`, run by
 * the shell before an Idempotency-Key is claimed, so a refused request leaves its key free) and
 * what the read model says of the job's end arrive in the command.
 */
export interface JobState {
  /** What JobSubmitted recorded; null before it. */
  submitted: EventData<'JobSubmitted'> | null;
  /**
   * The sub-task indices created on the subject, newest first. A set, not a count: the sub-tasks
   * after JobSubmitted are appended concurrently (job-event-stream.ts), so an append cut short
   * can leave any of them missing, not only the last ones.
   */
  created: CreatedSubtasks | null;
  cancelRequested: boolean;
}

/** A list that shares its tail with the state before, so evolve adds a sub-task in O(1) (a job may have 100,000). */
export interface CreatedSubtasks {
  readonly index: number;
  readonly earlier: CreatedSubtasks | null;
}

function createdIndices(created: CreatedSubtasks | null): Set<number> {
  const indices = new Set<number>();
  for (let node = created; node !== null; node = node.earlier) indices.add(node.index);
  return indices;
}

/** A job's end as the read model holds it (the scheduler's JobCompleted is on its own subject). */
export type JobEnd = 'succeeded' | 'failed' | 'cancelled';

export type JobCommand =
  | { kind: 'submit'; jobId: string; tenantId: string; request: SubmitJobRequest; checked: CheckedJobRequest; idempotencyKey: string; submittedAt: string }
  | { kind: 'cancel'; jobId: string; tenantId: string; requestedAt: string; reason: string; ended: JobEnd | null };

/** The JobSubmitted a checked request records (the key order is the event's, as it has always been written). */
export function jobSubmitted(command: Extract<JobCommand, { kind: 'submit' }>): EventData<'JobSubmitted'> {
  const { request, checked } = command;
  return {
    jobId: command.jobId,
    tenantId: command.tenantId,
    projectId: request.projectId,
    gpuModels: request.gpuModels,
    gpusPerSubtask: request.gpusPerSubtask,
    subtaskCount: checked.subtasks.length,
    runtimeMs: checked.runtimeMs,
    priorityClass: request.priorityClass,
    priority: request.priority,
    preemptible: checked.preemptible,
    gang: request.gang,
    capacityType: checked.capacityType,
    dependsOn: request.dependsOn,
    submittedAt: command.submittedAt,
    ...(request.name ? { name: request.name } : {}),
    ...(request.gangTopologyKey ? { gangTopologyKey: request.gangTopologyKey } : {}),
    ...(request.deadline ? { deadline: new Date(request.deadline).toISOString() } : {}),
    ...(request.retryPolicy ? { retryPolicy: request.retryPolicy } : {}),
    idempotencyKey: command.idempotencyKey,
    // Secrets are names only (the agent reads their values on its host): nothing secret is recorded or echoed.
    ...(checked.workload ? { workload: checked.workload } : {}),
  };
}

/** A sub-task's id: the job's id and its index. */
export const subtaskId = (jobId: string, index: number) => `${jobId}-${index}`;

const jobNotFound = (jobId: string) => notFoundError('job_not_found', `job ${jobId}`, 'jobId');

export function jobDecider(build: BuildEvent): Decider<JobState, JobCommand, DomainEvent> {
  return {
    initialState: () => ({ submitted: null, created: null, cancelRequested: false }),
    decide(command, state) {
      switch (command.kind) {
        case 'submit': {
          const { jobId, tenantId } = command;
          // Submitted already (a retry with the same Idempotency-Key): the stored JobSubmitted stands.
          const submitted = state.submitted ?? jobSubmitted(command);
          const meta = (discriminator: string) => ({ id: deriveId(jobId, discriminator), time: submitted.submittedAt, tenantId, correlationId: jobId });
          const events: DomainEvent[] = state.submitted ? [] : [build('JobSubmitted', submitted, meta('JobSubmitted'))];
          const causationId = deriveId(jobId, 'JobSubmitted');
          // Only the sub-tasks not on the subject yet: an append cut short by a failure is completed, never repeated.
          const created = createdIndices(state.created);
          for (const subtask of command.checked.subtasks) {
            if (created.has(subtask.index)) continue;
            const data = { jobId, tenantId, subtaskId: subtaskId(jobId, subtask.index), index: subtask.index, gpus: subtask.gpus, gpuModels: command.request.gpuModels, runtimeMs: subtask.runtimeMs };
            events.push(build('SubtaskCreated', data, { ...meta(`SubtaskCreated:${subtask.index}`), causationId }));
          }
          return events;
        }
        case 'cancel': {
          // Another tenant's job is a missing one.
          if (state.submitted === null || state.submitted.tenantId !== command.tenantId) throw jobNotFound(command.jobId);
          if (command.ended !== null) throw illegalState('conflict', `job ${command.jobId} already ended (${command.ended})`);
          if (state.cancelRequested) return [];
          return [
            build(
              'JobCancelRequested',
              { jobId: command.jobId, tenantId: command.tenantId, requestedAt: command.requestedAt, reason: command.reason },
              { id: deriveId(command.jobId, 'JobCancelRequested'), time: command.requestedAt, tenantId: command.tenantId, correlationId: command.jobId },
            ),
          ];
        }
        default: {
          const unreachable: never = command;
          throw new Error(`unknown job command ${JSON.stringify(unreachable)}`);
        }
      }
    },
    evolve(state, event) {
      switch (event.type) {
        case 'JobSubmitted':
          return { ...state, submitted: event.data };
        case 'SubtaskCreated':
          return { ...state, created: { index: event.data.index, earlier: state.created } };
        case 'JobCancelRequested':
          return { ...state, cancelRequested: true };
        default:
          return state;
      }
    },
  };
}
