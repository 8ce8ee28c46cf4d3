import { z } from 'zod';
import { SUBTASKS_PER_JOB_MAX } from '@fastgpu/contracts';

/** Attempts a result or log request may name (the platform retries at most a handful; the bound keeps lookups small). */
export const ATTEMPT_MAX = 1000;

const decimal = (max: number, min = 0) =>
  z
    .string()
    .regex(/^(0|[1-9][0-9]{0,8})$/, 'must be a decimal integer')
    .transform(Number)
    .refine((value) => value >= min && value <= max, `must be between ${min} and ${max}`);

export const logsQuery = z.object({
  /** The sub-task's index; absent: every sub-task of the job. */
  subtask: decimal(SUBTASKS_PER_JOB_MAX - 1).optional(),
  /** The attempt; absent: every attempt. */
  attempt: decimal(ATTEMPT_MAX, 1).optional(),
  /** `true`: keep the stream open for new output until the attempt (or the job) ends. */
  follow: z.enum(['true', 'false']).default('false'),
});
export type LogsQuery = z.infer<typeof logsQuery>;

export const resultQuery = z.object({
  /** The attempt; absent: the latest attempt that stored a result. */
  attempt: decimal(ATTEMPT_MAX, 1).optional(),
});

export const resultIndexParams = z.object({ index: decimal(SUBTASKS_PER_JOB_MAX - 1) });

export const resultView = z.object({
  subtaskIndex: z.number().int(),
  attempt: z.number().int(),
  bytes: z.number().int(),
  /** Hex SHA-256 of the bytes (the Object Store's digest, checked against the agent's). */
  sha256: z.string(),
  /** The program's exit code (128 + signal number when a signal ended it). */
  exitCode: z.number().int(),
  nodeId: z.string(),
  storedAt: z.string(),
});
export type ResultView = z.infer<typeof resultView>;

/** A job's aggregate result (its workload's rule), once built: `stored` with its size and SHA-256, or `failed` with why. */
export const aggregateView = z.object({
  rule: z.enum(['concat', 'jsonl']),
  outcome: z.enum(['stored', 'failed']),
  bytes: z.number().int().nullable(),
  sha256: z.string().nullable(),
  reason: z.string().nullable(),
});
export type AggregateView = z.infer<typeof aggregateView>;

export const resultsResponse = z.object({ jobId: z.string(), results: z.array(resultView), aggregate: aggregateView.nullable() });
