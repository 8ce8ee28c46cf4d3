import type { JobWorkload, NodeCommand, PriorityClass, ReportRejectionCode } from '@fastgpu/contracts';
import type { DependencyCondition, SchedulerPolicy } from './placement.types';

/**
 * The scheduler's state, folded from the domain stream: the fleet (nodes, GPU models, which
 * GPU index is held by whom, health and drain), the queues (jobs and leases per priority class
 * and tenant) and the running allocations. `evolve` (scheduler.evolve.ts) is deterministic: the
 * same log gives the same state, so the same decisions. For speed the fold owns the state and
 * mutates it in place; nothing else writes to it (the placement cycle works on scratch copies).
 *
 * This file holds the shapes and the initial state only; each aggregate's evolve is in its own
 * file (fleet.evolve.ts, jobs.evolve.ts, leases.evolve.ts).
 */
/** Sub-task attempts that may end by a platform fault (node lost, agent restart) before it is abandoned. */
export const PLATFORM_ATTEMPTS_MAX = 3;
/** Completed job outcomes kept for dependency checks after the job itself is dropped from memory. */
export const COMPLETED_OUTCOMES_MAX = 1_000_000;

export type ClassRank = 0 | 1 | 2;
/** The placement order of the priority classes of libs/contracts (`PriorityClass`): high first. */
export const CLASS_RANK = { high: 0, standard: 1, preemptible: 2 } as const satisfies Record<PriorityClass, ClassRank>;
/** Each rank's class name (CLASS_RANK read backwards). */
export const CLASS_NAMES: readonly PriorityClass[] = (Object.keys(CLASS_RANK) as PriorityClass[]).sort((a, b) => CLASS_RANK[a] - CLASS_RANK[b]);

export type NodeStatus = 'ready' | 'drained' | 'lost';

export interface NodeState {
  /** Registration order; the deterministic tie-break between equal nodes. */
  ordinal: number;
  nodeId: string;
  gpuModel: string;
  gpuCount: number;
  gpuMemoryGb: number;
  labels: Record<string, string>;
  agentEpoch: number;
  status: NodeStatus;
  /** Owner of each GPU index (undefined = free). */
  gpuOwner: Array<Allocation | undefined>;
  freeGpus: number;
  allocations: Set<Allocation>;
  /** Last stream sequence on this node's scheduler subject: the expected sequence of our next publish there. */
  schedulerSubjectSequence: number;
}

/** GPUs held on a node: a placed sub-task attempt or a granted lease. */
export interface Allocation {
  kind: 'subtask' | 'lease';
  /** Sub-task id or lease id. */
  key: string;
  tenantId: string;
  node: NodeState;
  gpuModel: string;
  gpus: number;
  gpuIndices: number[];
  leaseEpoch: number;
  attempt: number;
  classRank: ClassRank;
  priority: number;
  preemptible: boolean;
  placedAtMs: number;
  startedAtMs?: number;
  /** Declared runtime (sub-tasks); leases run until released. */
  runtimeMs?: number;
  /** Id of the SubtaskPlaced / LeaseGranted event: the cause of what follows. */
  eventId: string;
  subtask?: SubtaskState;
  lease?: LeaseState;
}

export type SubtaskStatus = 'pending' | 'placed' | 'awaitingRequeue' | 'awaitingAbandon' | 'succeeded' | 'failed' | 'cancelled' | 'abandoned';

export interface SubtaskState {
  subtaskId: string;
  job: JobState;
  index: number;
  gpus: number;
  runtimeMs: number;
  status: SubtaskStatus;
  /** The attempt now placed, or the next one to place when pending. */
  attempt: number;
  platformFailures: number;
  userFailures: number;
  /** Event that made this attempt pending (SubtaskCreated or SubtaskRequeued): ids of placements derive from it. */
  causeId: string;
  /** Event that ended the last attempt (for requeue / abandon ids) and why. */
  endCauseId?: string;
  endReason?: string;
  allocation?: Allocation;
}

export interface JobState {
  jobId: string;
  tenantId: string;
  projectId: string;
  eventId: string;
  /** Trace context of the submission: the scheduler's events for this job join its trace. */
  traceparent?: string;
  gpuModels: string[];
  gpusPerSubtask: number;
  subtaskCount: number;
  runtimeMs: number;
  classRank: ClassRank;
  priority: number;
  preemptible: boolean;
  gang: boolean;
  gangTopologyKey?: string;
  capacityType: 'on-demand' | 'preemptible' | 'reserved';
  dependsOn: Array<{ jobId: string; condition: DependencyCondition }>;
  retryPolicy?: { maxAttempts: number; retryOnExitCodes: number[] };
  /** What each sub-task runs (JobSubmitted v2): each RunSubtask carries its sub-task's part (node-commands.ts). */
  workload?: JobWorkload;
  submittedAtMs: number;
  sequence: number;
  subtasks: SubtaskState[];
  /** Pending sub-tasks, kept in index order (compacted lazily). */
  pending: SubtaskState[];
  pendingCount: number;
  runningCount: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  gpuMsObserved: number;
  cancelReason?: string;
  /** A gang member failed for good: the rest is stopped and the job fails. */
  doomedReason?: string;
}

export type LeaseStatus = 'pending' | 'granted' | 'releasing' | 'released';

export interface LeaseState {
  leaseId: string;
  tenantId: string;
  projectId: string;
  eventId: string;
  gpuModels: string[];
  gpus: number;
  capacityType: 'on-demand' | 'preemptible' | 'reserved';
  classRank: ClassRank;
  requestedAtMs: number;
  sequence: number;
  status: LeaseStatus;
  releaseReason?: string;
  allocation?: Allocation;
}

/** What a queue holds: a job with pending sub-tasks, or a lease waiting for its grant. */
export type QueueEntry = { kind: 'job'; job: JobState } | { kind: 'lease'; lease: LeaseState };

export interface TenantQueue {
  tenantId: string;
  classRank: ClassRank;
  entries: QueueEntry[];
  /** Entries were appended out of order: sort before the next cycle. */
  unsorted: boolean;
  /** Entries left the queue (placed, cancelled, released): compact before the next cycle. */
  dirty: boolean;
}

export interface SchedulerState {
  lastSequence: number;
  /** Grows whenever a node registers or changes shape (caches of fleet facts key on it). */
  fleetVersion: number;
  nodes: Map<string, NodeState>;
  nodeList: NodeState[];
  jobs: Map<string, JobState>;
  subtasks: Map<string, SubtaskState>;
  leases: Map<string, LeaseState>;
  /** Jobs that completed, with their tenant and outcome (dependencies look here, through `completedOutcome`). */
  completedJobs: Map<string, CompletedJob>;
  /** Queues per class rank, then per tenant. */
  queues: [Map<string, TenantQueue>, Map<string, TenantQueue>, Map<string, TenantQueue>];
  /** GPUs in use per tenant per model (fair share and quotas). */
  usage: Map<string, Map<string, number>>;
  /** Largest lease epoch seen: the next placement takes the next one (fencing tokens grow). */
  lastLeaseEpoch: number;
  /** Sub-tasks, jobs and leases that need a decision other than placement. */
  attentionSubtasks: Set<SubtaskState>;
  attentionJobs: Set<JobState>;
  attentionLeases: Set<LeaseState>;
  /** Jobs waiting on a job id (dependency index). */
  dependents: Map<string, JobState[]>;
  /** Placed but not yet reported started: commands to resend after a takeover. */
  unstarted: Set<Allocation>;
  /** Recent stops (preemptions, cancellations, lease releases) as their node commands, resent after a takeover. Bounded. */
  recentStops: Array<{ nodeId: string; command: Extract<NodeCommand, { kind: 'StopSubtask' | 'DetachLease' }> }>;
  /** The scheduling policy the log last set (undefined until it sets one), with its sequence. */
  policy?: { policy: SchedulerPolicy; sequence: number; setAt: string; actor: string };
  /** Node reports refused by the report rule (libs/contracts report-fencing), oldest first: the shell counts, logs and empties it. Bounded. */
  rejectedReports: RejectedReport[];
}

/** How a job ended, kept after the job itself is dropped from memory (dependencies read it). */
export interface CompletedJob {
  tenantId: string;
  outcome: 'succeeded' | 'failed' | 'cancelled';
}

export const RECENT_STOPS_MAX = 10_000;
/** Refused reports kept until the shell takes them; older ones are dropped (only their log line is lost). */
export const REJECTED_REPORTS_KEPT_MAX = 1_000;

export interface RejectedReport {
  sequence: number;
  eventId: string;
  type: 'SubtaskStarted' | 'SubtaskCompleted' | 'SubtaskFailed';
  nodeId: string;
  subject: string;
  subtaskId: string;
  code: ReportRejectionCode;
  reason: string;
}

export function initialState(): SchedulerState {
  return {
    lastSequence: 0,
    fleetVersion: 0,
    nodes: new Map(),
    nodeList: [],
    jobs: new Map(),
    subtasks: new Map(),
    leases: new Map(),
    completedJobs: new Map(),
    queues: [new Map<string, TenantQueue>(), new Map<string, TenantQueue>(), new Map<string, TenantQueue>()],
    usage: new Map(),
    lastLeaseEpoch: 0,
    attentionSubtasks: new Set(),
    attentionJobs: new Set(),
    attentionLeases: new Set(),
    dependents: new Map(),
    unstarted: new Set(),
    recentStops: [],
    rejectedReports: [],
  };
}
