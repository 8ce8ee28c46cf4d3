import { z } from 'zod';
import { capacityTypeSchema, dependencySchema, idSchema, priorityClassSchema, retryPolicySchema } from '@fastgpu/contracts';

/** Longest declared runtime of one sub-task: 30 days. */
export const RUNTIME_SECONDS_MAX = 30 * 24 * 3600;
export const GPUS_PER_SUBTASK_MAX = 64;

export const submitJobRequest = z.strictObject({
  projectId: idSchema,
  name: z.string().max(200).optional(),
  /** Allowed GPU models, in order of preference. */
  gpuModels: z.array(z.string().min(1).max(64).regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, ".", "-", "_"')).min(1).max(16),
  gpusPerSubtask: z.number().int().min(1).max(GPUS_PER_SUBTASK_MAX),
  subtaskCount: z.number().int().min(1).optional(),
  /** Total GPU-hours to divide into sub-tasks (decimal string or number). */
  totalGpuHours: z.union([z.string(), z.number().positive()]).transform(String).optional(),
  /** Declared runtime of one sub-task in seconds (used for backfill and by node agents). */
  runtimeSeconds: z.number().int().min(1).max(RUNTIME_SECONDS_MAX),
  priorityClass: priorityClassSchema.default('standard'),
  priority: z.number().int().min(0).max(1000).default(0),
  preemptible: z.boolean().optional(),
  gang: z.boolean().default(false),
  gangTopologyKey: z.string().max(64).optional(),
  capacityType: capacityTypeSchema.optional(),
  deadline: z.iso.datetime().optional(),
  dependsOn: z.array(dependencySchema).max(64).default([]),
  retryPolicy: retryPolicySchema.optional(),
});
export type SubmitJobRequest = z.infer<typeof submitJobRequest>;

export const subtaskView = z.object({
  subtaskId: z.string(),
  index: z.number(),
  gpus: z.number(),
  runtimeMs: z.number(),
  state: z.string(),
  attempt: z.number(),
  nodeId: z.string().nullable(),
  gpuModel: z.string().nullable(),
  placedAt: z.string().nullable(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  exitCode: z.number().nullable(),
  reason: z.string().nullable(),
});

export const jobView = z.object({
  jobId: z.string(),
  tenantId: z.string(),
  projectId: z.string(),
  name: z.string().nullable(),
  state: z.string(),
  reason: z.string().nullable(),
  submittedAt: z.string(),
  completedAt: z.string().nullable(),
  gpuMsObserved: z.number().nullable(),
  spec: z.record(z.string(), z.unknown()),
  subtasks: z.array(subtaskView),
  scheduling: z.record(z.string(), z.unknown()).optional(),
});
export type JobView = z.infer<typeof jobView>;

export const listJobsQuery = z.object({
  state: z.enum(['pending', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled']).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  tenantId: idSchema.optional(),
});
