import { z } from 'zod';
import { compareEntries, isQueued } from '../placement/queues';
import { priorityClassSchema } from '@fastgpu/contracts';
import type { JobState, QueueEntry, SchedulerState } from '../placement/scheduler.state';

/** Jobs one queue read lists at most. */
export const QUEUE_ITEMS_MAX = 1000;

export const queueQuery = z.object({
  limit: z
    .string()
    .regex(/^[1-9][0-9]{0,3}$/, 'an integer 1…1000')
    .transform(Number)
    .refine((n) => n <= QUEUE_ITEMS_MAX, `at most ${QUEUE_ITEMS_MAX}`)
    .optional()
    .describe(`Jobs to list, first in queue order (1…${QUEUE_ITEMS_MAX}, default 100)`),
});

export const queueResponse = z.object({
  queuedJobs: z.number().int().nonnegative().describe('Jobs with pending sub-tasks, all of them'),
  items: z.array(
    z.object({
      jobId: z.string(),
      tenantId: z.string(),
      projectId: z.string(),
      priorityClass: priorityClassSchema,
      priority: z.number().int(),
      submittedAt: z.string(),
      pendingSubtasks: z.number().int().nonnegative(),
      runningSubtasks: z.number().int().nonnegative(),
      queuePosition: z.number().int().positive().nullable(),
      waiting: z.string().nullable().describe('Why it waits, from the last scheduling cycle (as GET /v1/jobs/{id} explains it)'),
      code: z.enum(['capacity', 'quota', 'gang', 'fairShare', 'reserved', 'dependency', 'cancelled']).nullable(),
    }),
  ),
});

/**
 * The queued jobs (pending sub-tasks) in queue order: class first, then the order within a class
 * (`compareEntries`, the order `explain` counts positions in), at most `limit`. Pure.
 */
export function queuedJobsInOrder(state: SchedulerState, limit: number): { total: number; jobs: JobState[] } {
  const jobs: JobState[] = [];
  for (const byTenant of state.queues) {
    const inClass: QueueEntry[] = [];
    for (const queue of byTenant.values()) for (const entry of queue.entries) if (entry.kind === 'job' && isQueued(entry)) inClass.push(entry);
    inClass.sort(compareEntries);
    for (const entry of inClass) if (entry.kind === 'job') jobs.push(entry.job);
  }
  return { total: jobs.length, jobs: jobs.slice(0, limit) };
}
