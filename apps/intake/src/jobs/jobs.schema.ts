import { z } from 'zod';
import { requestIdSchema } from '@fastgpu/contracts';

/** The submission body is the shared job request (libs/contracts job-submission.ts): the scheduler's dry-run takes the same. */
export { submitJobRequest, type SubmitJobRequest } from '@fastgpu/contracts';

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
  tenantId: requestIdSchema.optional(),
});
