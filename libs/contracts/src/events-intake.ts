import { z } from 'zod';
import { capacityTypeSchema, gpuModelText, id, instant, nonNegativeInt, positiveInt, priorityClassSchema, roleSchema, type TextRule } from './events-fields';

/**
 * Intake's events: tenants and their API keys, jobs and their sub-tasks, leases (requests). Built
 * by events.ts with each text rule.
 */
export function intakeEventSchemas(text: TextRule) {
  const gpuModel = gpuModelText(text);
  const TenantCreated = z.object({
    tenantId: id,
    name: text.line(200, 1),
    billingTimeZone: text.line(64, 1),
    currency: text.line(3, 3),
    createdAt: instant,
  });
  const ApiKeyIssued = z.object({
    keyId: id,
    tenantId: id.nullable(),
    role: roleSchema,
    /** SHA-256 of the secret, hex. The secret itself is shown once and never stored. */
    secretHash: text.line(64, 64),
    label: text.line(200).optional(),
    issuedAt: instant,
  });
  const ApiKeyRevoked = z.object({ keyId: id, tenantId: id.nullable(), revokedAt: instant, reason: text.lines(500) });

  const retryPolicySchema = z.object({
    /** Attempts for the job's own (user) failures, including the first. */
    maxAttempts: z.number().int().min(1).max(10),
    /** Exit codes that are retried; empty means any non-zero exit code. */
    retryOnExitCodes: z.array(z.number().int()).max(64),
  });
  const dependencySchema = z.object({ jobId: id, condition: z.enum(['afterSuccess', 'afterAny']) });
  /**
   * What a job runs (v2; the request's rules in job-submission.ts are checked at the edge): argv,
   * or one script for /bin/sh -c with `shell`; secrets by name only; paths relative to the
   * attempt's directory; the timeout per attempt; inputs (one per sub-task, or chunks of
   * `inputsPerSubtask`); the result file and its cap; the aggregation rule.
   */
  const jobWorkload = z.object({
    command: z.array(text.lines(16_384)).min(1).max(256),
    shell: z.boolean(),
    env: z.record(text.line(128, 1), text.lines(16_384)).optional(),
    secrets: z.array(z.object({ env: text.line(128, 1), secret: id })).max(32).optional(),
    workingDirectory: text.line(512, 1).optional(),
    timeoutMs: positiveInt,
    inputs: z.array(text.lines(65_536)).min(1).max(10_000).optional(),
    inputsPerSubtask: positiveInt.optional(),
    resultPath: text.line(512, 1),
    resultBytesMax: positiveInt,
    aggregate: z.enum(['concat', 'jsonl', 'none']),
  });

  /**
   * v2 adds `workload`. v1 events replay as jobs without one (upcasters.ts); the version is
   * raised so a process that knows only v1 refuses a v2 event instead of reading it without its
   * workload and placing sub-tasks that have nothing to run.
   */
  const JobSubmitted = z.object({
    jobId: id,
    tenantId: id,
    projectId: id,
    name: text.line(200).optional(),
    /** Allowed GPU models in order of preference (the first is preferred). */
    gpuModels: z.array(gpuModel).min(1).max(16),
    gpusPerSubtask: positiveInt,
    subtaskCount: positiveInt,
    /** Declared runtime of one sub-task ("execution time"), used for backfill and by the simulator. */
    runtimeMs: positiveInt,
    priorityClass: priorityClassSchema,
    /** Ordering within a class: higher first. */
    priority: z.number().int().min(0).max(1000),
    preemptible: z.boolean(),
    gang: z.boolean(),
    /** Optional topology label that a gang must share (e.g. "nvlink"). */
    gangTopologyKey: text.line(64).optional(),
    capacityType: capacityTypeSchema,
    deadline: instant.optional(),
    dependsOn: z.array(dependencySchema).max(64).default([]),
    retryPolicy: retryPolicySchema.optional(),
    idempotencyKey: text.line(256).optional(),
    /** What each sub-task runs on a node agent; absent: the job only holds its GPUs for its runtime (the simulator). */
    workload: jobWorkload.optional(),
    submittedAt: instant,
  });
  const SubtaskCreated = z.object({
    jobId: id,
    tenantId: id,
    subtaskId: id,
    index: nonNegativeInt,
    gpus: positiveInt,
    gpuModels: z.array(gpuModel).min(1),
    runtimeMs: positiveInt,
  });
  const JobCancelRequested = z.object({ jobId: id, tenantId: id, requestedAt: instant, reason: text.lines(500) });
  /**
   * A job whose sub-tasks all succeeded had its results aggregated by its workload's rule
   * (`concat`, `jsonl`): `stored` with the aggregate's size and SHA-256 (in the results bucket
   * as `<tenantId>/<jobId>/aggregate`), or `failed` with why (a result missing or expired, a
   * `jsonl` result that is not JSON Lines, the aggregate over its limit).
   */
  const JobResultsAggregated = z.object({
    jobId: id,
    tenantId: id,
    rule: z.enum(['concat', 'jsonl']),
    outcome: z.enum(['stored', 'failed']),
    subtaskCount: positiveInt,
    bytes: nonNegativeInt.optional(),
    sha256: text.line(64, 64).optional(),
    reason: text.lines(500).optional(),
    aggregatedAt: instant,
  });

  const LeaseRequested = z.object({
    leaseId: id,
    tenantId: id,
    projectId: id,
    gpuModels: z.array(gpuModel).min(1).max(16),
    gpus: positiveInt,
    capacityType: capacityTypeSchema,
    priorityClass: priorityClassSchema,
    requestedAt: instant,
  });
  const LeaseReleaseRequested = z.object({ leaseId: id, tenantId: id, requestedAt: instant });
  return {
    TenantCreated,
    ApiKeyIssued,
    ApiKeyRevoked,
    retryPolicySchema,
    dependencySchema,
    JobSubmitted,
    SubtaskCreated,
    JobCancelRequested,
    JobResultsAggregated,
    LeaseRequested,
    LeaseReleaseRequested,
  };
}
