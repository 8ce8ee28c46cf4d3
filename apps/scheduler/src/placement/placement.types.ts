import { z } from 'zod';
import { idSchema, schedulingPolicy, subtaskPlacementEventTypes, type DomainEvent, type EventData, type NodeCommand } from '@fastgpu/contracts';

/** Event types the scheduler folds; every other type only moves its sequence. */
export const schedulerEventTypes = [
  'NodeRegistered',
  'NodeLost',
  'NodeRecovered',
  'NodeDrained',
  'NodeUndrained',
  'SchedulingPolicySet',
  'JobSubmitted',
  'SubtaskCreated',
  'JobCancelRequested',
  ...subtaskPlacementEventTypes,
  'JobCompleted',
  'LeaseRequested',
  'LeaseReleaseRequested',
  'LeaseGranted',
  'LeaseReleased',
] as const;
export type SchedulerEventType = (typeof schedulerEventTypes)[number];
export type SchedulerEvent = DomainEvent<SchedulerEventType>;
export const schedulerEventTypeSet: ReadonlySet<string> = new Set(schedulerEventTypes);

export type DependencyCondition = 'afterSuccess' | 'afterAny';

/**
 * Per-tenant scheduling policy: a fair-share weight and, per GPU model, a nominal quota (GPUs)
 * with an optional borrowing limit. Tenants without a quota for a model are not limited on it.
 * It is in the log (`SchedulingPolicySet`, set through `PUT /v1/scheduling-policy`) and folded
 * into the state; the engine passes it into every decision as part of the command. Until the log
 * holds one, FASTGPU_SCHEDULER_POLICY (or the default) applies, and the leader records it.
 * This is the input schema (defaults filled in); the event's schema is `schedulingPolicy`.
 */
const tenantPolicy = schedulingPolicy.shape.tenants.valueType;
export const schedulerPolicySchema = z.object({
  defaultWeight: schedulingPolicy.shape.defaultWeight.default(1),
  borrowing: schedulingPolicy.shape.borrowing.default(true),
  tenants: z.record(idSchema, tenantPolicy.extend({ quotas: tenantPolicy.shape.quotas.default({}) })).default({}),
});
export type SchedulerPolicy = z.infer<typeof schedulerPolicySchema>;
export const defaultPolicy: SchedulerPolicy = { defaultWeight: 1, borrowing: true, tenants: {} };

/** The events the scheduler decides, with their data. */
export type DecidedEventType = 'SubtaskPlaced' | 'SubtaskPreempted' | 'SubtaskRequeued' | 'SubtaskAbandoned' | 'JobCompleted' | 'LeaseGranted' | 'LeaseReleased';

/**
 * One decision: an event with a deterministic id (derived from its cause), and the node command
 * that follows it once it is in the log. `nodeId` is set for events on a node's scheduler
 * subject, which are published with the expected last subject sequence.
 */
export type Decision = {
  [T in DecidedEventType]: {
    type: T;
    id: string;
    causationId: string;
    correlationId: string;
    tenantId: string;
    data: EventData<T>;
    nodeId?: string;
    command?: NodeCommand;
  };
}[DecidedEventType];

/** Why an entry waits, as told by GET /v1/jobs/{id} and the explain endpoint. */
export interface Waiting {
  reason: string;
  code: 'capacity' | 'quota' | 'gang' | 'fairShare' | 'reserved' | 'dependency' | 'cancelled';
}

export interface CycleCommand {
  /** The instant of the cycle (ISO); every event time in the decision is this. */
  now: string;
  policy: SchedulerPolicy;
  /** Upper bound on placements in one cycle (bounds batch size and cycle time). */
  placementsMax?: number;
  /** Decide as if this job were also queued (dry-run); its placements are reported, never published. */
  hypothetical?: HypotheticalJob;
  /** Record a waiting reason for every entry visited (explanations); off in the benchmark's hot loop. */
  explain?: boolean;
}

export interface HypotheticalJob {
  jobId: string;
  tenantId: string;
  gpuModels: string[];
  gpusPerSubtask: number;
  subtaskCount: number;
  runtimeMs: number;
  priorityClass: 'high' | 'standard' | 'preemptible';
  priority: number;
  preemptible: boolean;
  gang: boolean;
  gangTopologyKey?: string;
}

export interface Reservation {
  /** The blocked entry at the head of the queue that holds the reservation. */
  entryKey: string;
  startAtMs: number;
  /** GPUs reserved per node ordinal at startAtMs. */
  gpusByNode: Map<number, number>;
}

export interface CycleResult {
  decisions: Decision[];
  placements: number;
  preemptions: number;
  /** Waiting reasons by job id / lease id (when `explain` was asked). */
  waiting: Map<string, Waiting>;
  reservation?: Reservation;
  /** Placements of the hypothetical job (dry-run). */
  hypothetical?: { placed: Array<{ index: number; nodeId: string; gpuModel: string; gpuIndices: number[] }>; preempted: Array<{ subtaskId: string; jobId: string; nodeId: string }>; waiting?: Waiting };
}
