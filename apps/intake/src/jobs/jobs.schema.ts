import { z } from 'zod';
import { requestIdSchema } from '@fastgpu/contracts';
import { cursorInstantMs, nextCursorSchema, pageParam, queryParam } from '@fastgpu/http';

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

/** The list's name in its cursors: a cursor of another list is refused. */
export const JOBS_LIST = 'jobs';

/**
 * `GET /v1/jobs`: newest first by (submittedAt, jobId), in pages (libs/http cursor.ts), filtered
 * by state, project and submission time (`from` inclusive, `to` exclusive).
 */
export const listJobsQuery = z.object({
  state: z.enum(['pending', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled']).optional(),
  projectId: requestIdSchema.optional(),
  from: queryParam.instant().optional().describe('Jobs submitted at or after this instant (RFC 3339 with Z or ±hh:mm)'),
  to: queryParam.instant().optional().describe('Jobs submitted before this instant'),
  limit: pageParam.limit(),
  cursor: pageParam.cursor(JOBS_LIST, cursorInstantMs).optional(),
  tenantId: requestIdSchema.optional(),
});
export type ListJobsQuery = z.infer<typeof listJobsQuery>;

export const jobSummaryView = jobView.omit({ spec: true, subtasks: true, scheduling: true });
export type JobSummaryView = z.infer<typeof jobSummaryView>;
export const jobsPage = z.object({ jobs: z.array(jobSummaryView), nextCursor: nextCursorSchema });
