import { z } from 'zod';
import { MULTI_LINE_TEXT_MESSAGE, MULTI_LINE_TEXT_PATTERN, SINGLE_LINE_TEXT_MESSAGE, SINGLE_LINE_TEXT_PATTERN } from './text';

/**
 * The fields events are made of, shared by every topic's schemas (events-*.ts): ids, instants,
 * integers, the closed sets (priority classes, capacity types, roles, faults, failure kinds), the
 * period label, and the two text rules each schema is built with (docs/adr/0004-storable-event-text.md).
 */

/** Ids appear in NATS subjects, so they are single subject tokens. */
export const idSchema = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, 'must contain only letters, digits, "-" and "_"');
/** An id field of an event. */
export const id = idSchema;
/** An instant: UTC ISO-8601 with milliseconds, no offset. */
export const instant = z.iso.datetime({ offset: false });
export const nonNegativeInt = z.number().int().nonnegative();
export const positiveInt = z.number().int().positive();

export const PriorityClass = { high: 'high', standard: 'standard', preemptible: 'preemptible' } as const;
export type PriorityClass = (typeof PriorityClass)[keyof typeof PriorityClass];
export const priorityClassSchema = z.enum(PriorityClass);

export const CapacityType = { onDemand: 'on-demand', preemptible: 'preemptible', reserved: 'reserved' } as const;
export type CapacityType = (typeof CapacityType)[keyof typeof CapacityType];
export const capacityTypeSchema = z.enum(CapacityType);

export const Role = { tenant: 'tenant', finance: 'finance', sre: 'sre', admin: 'admin' } as const;
export type Role = (typeof Role)[keyof typeof Role];
export const roleSchema = z.enum(Role);

/** Who caused a failure: the tenant's code or the platform (node loss, preemption by us, health drain). */
export const faultSchema = z.enum(['user', 'platform']);

/**
 * How a run ended, as the node agent saw it (`SubtaskFailed.failureKind`, docs/node-protocol.md):
 * `exit-code` (non-zero exit), `signal` (killed by a signal the agent did not send), `oom` (killed
 * by the kernel's OOM killer), `timeout` (the workload's timeout; the agent killed it), `exec`
 * (the command could not be started), `result` (its result missing or over the limit): user
 * faults; `agent` (the agent could not run it or keep its output) and `agent-restart` (the agent
 * restarted and the process was gone): platform faults.
 */
export const failureKindSchema = z.enum(['exit-code', 'signal', 'oom', 'timeout', 'exec', 'result', 'agent', 'agent-restart']);
export type FailureKind = z.infer<typeof failureKindSchema>;

/** How a set of schemas checks free text: `line` for one line, `lines` for text that may span lines. */
export interface TextRule {
  line(maxLength?: number, minLength?: number): z.ZodString;
  lines(maxLength?: number, minLength?: number): z.ZodString;
}

function boundedString(maxLength: number | undefined, minLength: number): z.ZodString {
  const text = minLength > 0 ? z.string().min(minLength) : z.string();
  return maxLength === undefined ? text : text.max(maxLength);
}

/**
 * The rule events are built with: text.ts's `singleLineText` / `multiLineText` patterns (no
 * control characters but TAB/LF/CR in multi-line text, no lone surrogates), with each field's
 * published bounds (a few fields never had a maximum and keep none).
 */
export const writtenText: TextRule = {
  line: (maxLength, minLength = 0) => boundedString(maxLength, minLength).regex(SINGLE_LINE_TEXT_PATTERN, SINGLE_LINE_TEXT_MESSAGE),
  lines: (maxLength, minLength = 0) => boundedString(maxLength, minLength).regex(MULTI_LINE_TEXT_PATTERN, MULTI_LINE_TEXT_MESSAGE),
};

/** No U+0000: PostgreSQL cannot store it in text or jsonb. The control character is the point here. */
// eslint-disable-next-line no-control-regex
export const STORABLE_TEXT_PATTERN = /^[^\u0000]*$/;
export const STORABLE_TEXT_MESSAGE = 'must not contain U+0000 (no projection can store it)';

/**
 * The rule stored events are read with: the bounds every published version had, minus exactly
 * what no projection could ever have applied (U+0000). Text that was storable when it was
 * published stays readable, so no event that a projection applied becomes unreadable.
 */
export const storedText: TextRule = {
  line: (maxLength, minLength = 0) => boundedString(maxLength, minLength).regex(STORABLE_TEXT_PATTERN, STORABLE_TEXT_MESSAGE),
  lines: (maxLength, minLength = 0) => boundedString(maxLength, minLength).regex(STORABLE_TEXT_PATTERN, STORABLE_TEXT_MESSAGE),
};

/** A GPU model's name, with the rule `text` of the schemas being built. */
export const gpuModelText = (text: TextRule) => text.line(64, 1);

/** One attempt of a sub-task on a node, under its placement's epoch: what every report and stop of it names. */
export const subtaskAttemptFields = {
  jobId: id,
  tenantId: id,
  subtaskId: id,
  attempt: positiveInt,
  nodeId: id,
  leaseEpoch: positiveInt,
};

/** Where a placement (of a sub-task's attempt or a lease) holds GPUs: the node, its GPUs, the fencing epoch, what they are billed as. */
export const placementFields = (text: TextRule) => ({
  nodeId: id,
  gpuModel: gpuModelText(text),
  gpus: positiveInt,
  gpuIndices: z.array(nonNegativeInt),
  /** Fencing token: reports carrying another epoch for this placement are stale. */
  leaseEpoch: positiveInt,
  capacityType: capacityTypeSchema,
});

/** GPUs used over an interval, as usage records it. */
export const usedIntervalFields = (text: TextRule) => ({
  gpuModel: gpuModelText(text),
  capacityType: capacityTypeSchema,
  gpus: positiveInt,
  startAt: instant,
  endAt: instant,
  /** gpus × (end − start), integer milliseconds. */
  gpuMs: nonNegativeInt,
});

/**
 * A period's label, `YYYY-MM`: a billing period (a month in the tenant's billing time zone, by the
 * billing period rule of libs/money `rating-period.ts`) or an SLA month (UTC).
 */
export const periodSchema = z.string().regex(/^\d{4}-\d{2}$/);
