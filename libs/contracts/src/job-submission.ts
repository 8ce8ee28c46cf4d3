import { z } from 'zod';
import { capacityTypeSchema, priorityClassSchema, retryPolicySchema } from './events';
import { singleLineText } from './text';

/**
 * A job submission as every edge takes it (POST /v1/jobs, gRPC SubmitJob, the scheduler's
 * POST /v1/jobs:dry-run): one request schema, one set of limits and one task division, so a
 * dry-run accepts exactly what a submission accepts and costs at most what a submission may.
 * Pure: nothing here reads the clock or the network (the current instant is a parameter).
 */

// ------------------------------------------------------------------ limits (one per concept)
/** Sub-tasks one job may divide into (also bounds a dry-run's placement work). */
export const SUBTASKS_PER_JOB_MAX = 10_000;
export const GPUS_PER_SUBTASK_MAX = 64;
export const GPU_MODELS_PER_JOB_MAX = 16;
export const DEPENDENCIES_PER_JOB_MAX = 64;
/** Longest declared runtime of one sub-task: 30 days. */
export const RUNTIME_SECONDS_MAX = 30 * 24 * 3600;
export const JOB_PRIORITY_MAX = 1000;
export const JOB_NAME_LENGTH_MAX = 200;
export const GPU_MODEL_LENGTH_MAX = 64;
export const GANG_TOPOLOGY_KEY_LENGTH_MAX = 64;
/** Longest id a request may carry (ids become NATS subject tokens). */
export const REQUEST_ID_LENGTH_MAX = 128;
/** Longest GPU-hours string: 9 integer digits, a point and 12 decimals, with room to say why it is wrong. */
export const GPU_HOURS_LENGTH_MAX = 32;

// ------------------------------------------------------------------ field schemas
/**
 * An id as a request carries it. The storable-text rule is checked first, so a control character
 * is reported as such (400) rather than as a wrong id; then the id rule of `idSchema`.
 */
export const requestIdSchema = singleLineText(REQUEST_ID_LENGTH_MAX, 1).regex(/^[A-Za-z0-9_-]+$/, 'must contain only letters, digits, "-" and "_"');

/** A GPU model name: storable text, then the characters model names use. */
export const gpuModelNameSchema = singleLineText(GPU_MODEL_LENGTH_MAX, 1).regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, ".", "-", "_"');

export const jobDependencySchema = z.strictObject({ jobId: requestIdSchema, condition: z.enum(['afterSuccess', 'afterAny']) });

export const submitJobRequest = z.strictObject({
  projectId: requestIdSchema,
  name: singleLineText(JOB_NAME_LENGTH_MAX).optional(),
  /** Allowed GPU models, in order of preference. */
  gpuModels: z.array(gpuModelNameSchema).min(1).max(GPU_MODELS_PER_JOB_MAX),
  gpusPerSubtask: z.number().int().min(1).max(GPUS_PER_SUBTASK_MAX),
  subtaskCount: z.number().int().min(1).max(SUBTASKS_PER_JOB_MAX).optional(),
  /** Total GPU-hours to divide into sub-tasks (decimal string or number). */
  totalGpuHours: z.union([singleLineText(GPU_HOURS_LENGTH_MAX), z.number().positive()]).transform(String).optional(),
  /** Declared runtime of one sub-task in seconds (used for backfill and by node agents). */
  runtimeSeconds: z.number().int().min(1).max(RUNTIME_SECONDS_MAX),
  priorityClass: priorityClassSchema.default('standard'),
  priority: z.number().int().min(0).max(JOB_PRIORITY_MAX).default(0),
  preemptible: z.boolean().optional(),
  gang: z.boolean().default(false),
  gangTopologyKey: singleLineText(GANG_TOPOLOGY_KEY_LENGTH_MAX).optional(),
  capacityType: capacityTypeSchema.optional(),
  deadline: z.iso.datetime().optional(),
  dependsOn: z.array(jobDependencySchema).max(DEPENDENCIES_PER_JOB_MAX).default([]),
  retryPolicy: retryPolicySchema.optional(),
});
export type SubmitJobRequest = z.infer<typeof submitJobRequest>;

// ------------------------------------------------------------------ task division
/** A request that is well-formed but cannot be accepted as it is: the field and why (an edge answers 422). */
export class JobRequestError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const MS_PER_HOUR = 3_600_000n;

export interface DivisionInput {
  gpusPerSubtask: number;
  runtimeMs: number;
  subtaskCount?: number;
  /** Decimal string of GPU-hours. */
  totalGpuHours?: string;
}

export interface PlannedSubtask {
  index: number;
  gpus: number;
  runtimeMs: number;
}

/** GPU-hours as a decimal string → exact GPU-milliseconds (rounded up to the millisecond). */
export function gpuHoursToGpuMs(gpuHours: string): bigint {
  const match = /^(\d{1,9})(?:\.(\d{1,12}))?$/.exec(gpuHours);
  if (!match) throw new JobRequestError('totalGpuHours', 'must be a positive decimal number of GPU-hours with at most 12 decimals');
  const fraction = (match[2] ?? '').padEnd(12, '0');
  const scaled = BigInt(match[1]!) * 10n ** 12n + BigInt(fraction);
  const numerator = scaled * MS_PER_HOUR;
  const denominator = 10n ** 12n;
  return (numerator + denominator - 1n) / denominator;
}

/**
 * Task division: a job becomes sub-tasks; the same request always gives the same split. A job
 * names either a sub-task count (each runs the declared runtime) or total GPU-hours, divided
 * exactly: full sub-tasks of the declared runtime, the last one shorter, so that
 * Σ gpus × runtime = the GPU-hours asked for (to the millisecond, rounded up).
 */
export function divideJob(input: DivisionInput): PlannedSubtask[] {
  const { gpusPerSubtask, runtimeMs } = input;
  if ((input.subtaskCount === undefined) === (input.totalGpuHours === undefined)) {
    throw new JobRequestError('subtaskCount', 'give exactly one of subtaskCount and totalGpuHours');
  }
  if (input.subtaskCount !== undefined) {
    if (input.subtaskCount > SUBTASKS_PER_JOB_MAX) throw new JobRequestError('subtaskCount', `at most ${SUBTASKS_PER_JOB_MAX} sub-tasks per job`);
    return Array.from({ length: input.subtaskCount }, (_, index) => ({ index, gpus: gpusPerSubtask, runtimeMs }));
  }
  const totalGpuMs = gpuHoursToGpuMs(input.totalGpuHours!);
  if (totalGpuMs === 0n) throw new JobRequestError('totalGpuHours', 'must be greater than zero');
  const perSubtaskGpuMs = BigInt(gpusPerSubtask) * BigInt(runtimeMs);
  const fullCount = totalGpuMs / perSubtaskGpuMs;
  const remainderGpuMs = totalGpuMs % perSubtaskGpuMs;
  // Checked on the bigint before any array is made: a huge count costs nothing.
  const count = fullCount + (remainderGpuMs > 0n ? 1n : 0n);
  if (count > BigInt(SUBTASKS_PER_JOB_MAX)) throw new JobRequestError('totalGpuHours', `divides into ${count} sub-tasks; at most ${SUBTASKS_PER_JOB_MAX} (raise runtimeSeconds or gpusPerSubtask)`);
  const subtasks: PlannedSubtask[] = [];
  for (let index = 0; index < Number(fullCount); index++) subtasks.push({ index, gpus: gpusPerSubtask, runtimeMs });
  if (remainderGpuMs > 0n) {
    // The last sub-task runs the remainder, rounded up to whole milliseconds per GPU.
    const lastRuntimeMs = Number((remainderGpuMs + BigInt(gpusPerSubtask) - 1n) / BigInt(gpusPerSubtask));
    subtasks.push({ index: subtasks.length, gpus: gpusPerSubtask, runtimeMs: lastRuntimeMs });
  }
  return subtasks;
}

// ------------------------------------------------------------------ the checks after the schema
export interface CheckedJobRequest {
  preemptible: boolean;
  capacityType: z.infer<typeof capacityTypeSchema>;
  /** Declared runtime of one full sub-task. */
  runtimeMs: number;
  subtasks: PlannedSubtask[];
}

/**
 * What a well-formed request must also satisfy, checked the same way by submission and dry-run:
 * consistent preemption and gang fields, a deadline after `nowMs`, and a division within the
 * limits. Throws JobRequestError with the field.
 */
export function checkJobRequest(request: SubmitJobRequest, nowMs: number): CheckedJobRequest {
  const preemptible = request.preemptible ?? request.priorityClass === 'preemptible';
  if (request.priorityClass === 'preemptible' && !preemptible) throw new JobRequestError('preemptible', 'a job of the preemptible class cannot be marked non-preemptible');
  if (request.gangTopologyKey && !request.gang) throw new JobRequestError('gangTopologyKey', 'gangTopologyKey applies to gang jobs only');
  if (request.deadline && Date.parse(request.deadline) <= nowMs) throw new JobRequestError('deadline', 'deadline is in the past');
  const runtimeMs = request.runtimeSeconds * 1000;
  const subtasks = divideJob({ gpusPerSubtask: request.gpusPerSubtask, runtimeMs, subtaskCount: request.subtaskCount, totalGpuHours: request.totalGpuHours });
  return { preemptible, capacityType: request.capacityType ?? (preemptible ? 'preemptible' : 'on-demand'), runtimeMs, subtasks };
}
