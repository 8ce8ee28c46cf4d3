import { z } from 'zod';
import { schedulerPolicySchema } from '../placement/placement.types';
import type { SchedulerController } from './scheduler.controller';

/**
 * What the scheduler's HTTP routes answer, as the zod schemas the OpenAPI document shows
 * (`@ApiDoc({ response })`). Objects are closed (`additionalProperties: false` in the document)
 * because each handler builds its answer field by field; `AnswersMatchSchemas` below makes the
 * type-check fail when a handler's answer and its schema stop describing the same shape.
 */

const count = z.number().int().nonnegative();
const sequence = z.number().int().nonnegative().describe('Stream sequence of the domain event stream');

export const dryRunResponse = z.object({
  wouldPlace: z.boolean().describe('Every sub-task would be placed in this cycle'),
  subtaskCount: count,
  placedNow: count.describe('Sub-tasks that would be placed in this cycle'),
  placements: z.array(z.object({ index: count.describe('Sub-task index'), nodeId: z.string(), gpuModel: z.string(), gpuIndices: z.array(count) })),
  wouldPreempt: z
    .array(z.union([z.object({ subtaskId: z.string(), jobId: z.string(), nodeId: z.string() }), z.object({ nodeId: z.string() })]))
    .describe("Work that would be preempted to make room; a tenant sees only the node, platform roles also the sub-task and job"),
  waiting: z.string().optional().describe('Why the rest would wait (present when not every sub-task is placed now)'),
  code: z.enum(['capacity', 'quota', 'gang', 'fairShare', 'reserved', 'dependency', 'cancelled']).optional(),
});

const freeGpusOfModel = z.object({ freeGpus: count.describe('Free GPUs on ready nodes'), totalGpus: count.describe('GPUs on nodes not lost'), nodes: count.describe('Nodes not lost') });

export const capacityPlanResponse = z.object({
  gpusNeeded: count.describe('ceil(R / (T · L · η))'),
  quotient: z.string().describe('R / (T · L · η) before rounding up, a decimal to 12 places'),
  formula: z.string(),
  inputs: z.object({ gpuHours: z.string(), hours: z.string(), load: z.string(), efficiency: z.string() }).describe('The inputs as read (decimal strings, defaults filled in)'),
  freeNow: z.record(z.string(), freeGpusOfModel).describe('Per GPU model, right now'),
  freeGpusNow: count,
  shortfallNow: count.describe('GPUs missing now: gpusNeeded − freeGpusNow, at least 0'),
});

export const nodesResponse = z.object({
  nodes: z.array(
    z.object({
      nodeId: z.string(),
      gpuModel: z.string(),
      gpuCount: count,
      freeGpus: count,
      status: z.enum(['ready', 'drained', 'lost']),
      labels: z.record(z.string(), z.string()),
      allocations: count.describe('Sub-task attempts and leases holding GPUs on the node'),
    }),
  ),
  fragmentation: z.object({ freeGpus: count, strandedGpus: count.describe('Free GPUs on partly used ready nodes'), ratio: z.number().min(0).max(1).describe('strandedGpus / freeGpus (0 when nothing is free)') }),
});

export const drainResponse = z.object({
  nodeId: z.string(),
  status: z.string().describe('The node status once the event is folded: ready, drained or lost'),
  sequence: sequence.describe('Stream sequence of the NodeDrained / NodeUndrained event'),
});

export const policyResponse = z.object({
  policy: schedulerPolicySchema,
  source: z.enum(['log', 'config']).describe('log: set by a SchedulingPolicySet event; config: the configured policy, until the log holds one'),
  sequence: sequence.nullable().describe('Stream sequence of the SchedulingPolicySet in force (null: from configuration)'),
  setAt: z.string().nullable(),
  actor: z.string().nullable().describe('The API key that set it'),
});

export const schedulerStatusResponse = z.object({
  instanceId: z.string(),
  leader: z.boolean(),
  term: z.number().int(),
  caughtUp: z.boolean().describe('The fold has reached the log position seen at start'),
  lastSequence: sequence,
  cycles: count,
  placements: count,
  preemptions: count,
  conflicts: count.describe('Placement publishes refused by the expected-sequence check'),
  lastCycleMs: z.number().nonnegative(),
  nodes: count,
  queuedJobs: count,
});

/** Both ways assignable: neither side has a field, or a field type, the other lacks. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails the type-check (at its line) unless given `true`. */
type Assert<T extends true> = T;
type Answer<K extends keyof SchedulerController> = SchedulerController[K] extends (...args: never[]) => infer R ? Awaited<R> : never;
export type AnswersMatchSchemas = [
  Assert<Same<Answer<'dryRun'>, z.output<typeof dryRunResponse>>>,
  Assert<Same<Answer<'capacityPlan'>, z.output<typeof capacityPlanResponse>>>,
  Assert<Same<Answer<'nodes'>, z.output<typeof nodesResponse>>>,
  Assert<Same<Answer<'drain'>, z.output<typeof drainResponse>>>,
  Assert<Same<Answer<'undrain'>, z.output<typeof drainResponse>>>,
  // `source` is a string to the type-checker (a literal widened in the object it returns); the schema names its two values.
  Assert<Same<Omit<Answer<'policy'>, 'source'>, Omit<z.output<typeof policyResponse>, 'source'>>>,
  Assert<Same<Answer<'setPolicy'>, Answer<'policy'>>>,
  Assert<Same<Answer<'status'>, z.output<typeof schedulerStatusResponse>>>,
];
