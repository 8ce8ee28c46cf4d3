import { z } from 'zod';
import { idSchema } from './events';
import { GANG_TOPOLOGY_KEY_LENGTH_MAX, GPU_MODELS_PER_JOB_MAX, GPUS_PER_SUBTASK_MAX, gpuModelNameSchema, SUBTASKS_PER_JOB_MAX } from './job-submission';
import { singleLineText } from './text';

/**
 * Intake ↔ scheduler over core NATS request/reply (`subjects.service('scheduler', op)`), typed
 * both ways: the scheduler validates every request and answers a bad one with a typed error
 * reply (never a crash, never silence); intake validates every reply and treats anything that is
 * not a valid answer like no answer. The limits are submission's (job-submission.ts).
 */

/** Longest human-readable text a reply carries. */
export const SERVICE_REPLY_TEXT_LENGTH_MAX = 2000;

/** A request the scheduler could not take: `invalid_request` names the field; `internal` is its own fault. */
export const serviceErrorReply = z.strictObject({
  error: z.strictObject({
    code: z.enum(['invalid_request', 'internal']),
    message: z.string().max(SERVICE_REPLY_TEXT_LENGTH_MAX),
    field: z.string().max(200).optional(),
  }),
});
export type ServiceErrorReply = z.infer<typeof serviceErrorReply>;

// ------------------------------------------------------------------ feasibility
/**
 * Could any node ever run a job of this shape (not: does it fit now)? The answer depends on the
 * fleet and on exactly these fields, so a cache of answers is keyed by the whole request, tenant
 * included. Dependencies are not part of it: intake resolves them within the tenant in its own
 * read model (the scheduler does not know which tenant a completed job belonged to).
 */
export const feasibilityRequest = z.strictObject({
  tenantId: idSchema,
  gpuModels: z.array(gpuModelNameSchema).min(1).max(GPU_MODELS_PER_JOB_MAX),
  gpusPerSubtask: z.number().int().min(1).max(GPUS_PER_SUBTASK_MAX),
  subtaskCount: z.number().int().min(1).max(SUBTASKS_PER_JOB_MAX),
  gang: z.boolean(),
  gangTopologyKey: singleLineText(GANG_TOPOLOGY_KEY_LENGTH_MAX).optional(),
});
export type FeasibilityRequest = z.infer<typeof feasibilityRequest>;

export const feasibilityVerdict = z.discriminatedUnion('feasible', [
  z.strictObject({ feasible: z.literal(true), note: z.string().max(SERVICE_REPLY_TEXT_LENGTH_MAX).optional() }),
  z.strictObject({
    feasible: z.literal(false),
    /** The request field the verdict is about, as the job request names it. */
    field: z.enum(['gpuModels', 'gpusPerSubtask', 'subtaskCount', 'gangTopologyKey']),
    reason: z.string().min(1).max(SERVICE_REPLY_TEXT_LENGTH_MAX),
  }),
]);
export type FeasibilityVerdict = z.infer<typeof feasibilityVerdict>;
export const feasibilityReply = z.union([feasibilityVerdict, serviceErrorReply]);
export type FeasibilityReply = z.infer<typeof feasibilityReply>;

// ------------------------------------------------------------------ explain
/** Why a live job of this tenant waits. Any other id (missing, ended, another tenant's) answers `unknown`. */
export const explainRequest = z.strictObject({ jobId: idSchema, tenantId: idSchema });
export type ExplainRequest = z.infer<typeof explainRequest>;

export const waitingCodeSchema = z.enum(['capacity', 'quota', 'gang', 'fairShare', 'reserved', 'dependency', 'cancelled']);

export const explanation = z.strictObject({
  state: z.enum(['queued', 'running', 'unknown']),
  waiting: z.string().max(SERVICE_REPLY_TEXT_LENGTH_MAX).optional(),
  code: waitingCodeSchema.optional(),
  queuePosition: z.number().int().min(1).optional(),
  pendingSubtasks: z.number().int().min(0).optional(),
  runningSubtasks: z.number().int().min(0).optional(),
  reservation: z.strictObject({ startAt: z.iso.datetime(), holder: z.boolean() }).optional(),
});
export type Explanation = z.infer<typeof explanation>;
export const explainReply = z.union([explanation, serviceErrorReply]);
export type ExplainReply = z.infer<typeof explainReply>;

/** The first issue of a failed parse as a typed error reply (the field path and the reason). */
export function invalidServiceRequest(error: z.ZodError): ServiceErrorReply {
  const issue = error.issues[0];
  const field = issue?.path.map(String).join('.') || undefined;
  const message = `${field ?? 'request'}: ${issue?.message ?? 'invalid request'}`.slice(0, SERVICE_REPLY_TEXT_LENGTH_MAX);
  return { error: { code: 'invalid_request', message, ...(field ? { field: field.slice(0, 200) } : {}) } };
}
