import { allocationEventTypes, allocationKeyOf, type AllocationKind, type CapacityType, type DomainEvent, type EventType, type LatenessHorizon, type ReportRejectionCode } from '@fastgpu/contracts';
import { gpuMs, HOUR_MS, splitAtHours } from '@fastgpu/money';

/**
 * What the usage fold works on, pure: the event types metering reads, an allocation (a sub-task
 * attempt, a lease or an external allocation) and its keys, what a fold takes and gives, and how
 * a closed allocation becomes hourly GPU-ms. The fold itself (which event sets what) is
 * usage.fold.ts; the SQL that loads and stores these rows is usage.projection.ts.
 */

/** The event types the usage fold reads: every allocation's start and end, and what ends them besides (a node's loss or new agent epoch, a job's end, a late external report). */
export const usageEventTypes = [...allocationEventTypes, 'NodeLost', 'NodeRegistered', 'NodeRecovered', 'ExternalAllocationReportedLate', 'JobCompleted'] as const satisfies readonly EventType[];
export type UsageEventType = (typeof usageEventTypes)[number];

export { AllocationKind, externalKey, leaseKey, subtaskKey } from '@fastgpu/contracts';

export const EndReason = {
  completed: 'completed',
  failed: 'failed',
  preempted: 'preempted',
  nodeLost: 'node-lost',
  /** The node's agent registered a new epoch: what it ran is lost. */
  agentRestarted: 'agent-restarted',
  /** The scheduler requeued the attempt before the node reported its end. */
  requeued: 'requeued',
  released: 'released',
  stopped: 'stopped',
} as const;
export type EndReason = (typeof EndReason)[keyof typeof EndReason];

export interface Allocation {
  key: string;
  kind: AllocationKind;
  tenantId: string | null;
  projectId: string | null;
  jobId: string;
  subtaskId: string;
  attempt: number;
  leaseId: string;
  allocationId: string;
  nodeId: string | null;
  gpuModel: string | null;
  gpus: number | null;
  capacityType: CapacityType | null;
  leaseEpoch: number | null;
  placedEventId: string | null;
  placedSequence: number | null;
  /** When the placement (or lease grant) happened: a node's reports cannot start before it. */
  placedMs: number | null;
  startMs: number | null;
  startEpoch: number | null;
  startEventId: string | null;
  startSequence: number | null;
  endMs: number | null;
  endEpoch: number | null;
  endEventId: string | null;
  endSequence: number | null;
  endReason: EndReason | null;
  interrupted: boolean;
  /**
   * External allocations only: a start or stop was reported beyond the lateness horizon. A late
   * allocation closes into late usage (LateUsageRecorded) instead of billable usage: no hourly
   * rows, no UsageRecorded, not accrued by queries.
   */
  late: boolean;
  /** When the first late report was received (epoch ms). */
  lateReceivedMs: number | null;
  staleReports: number;
  closedEventId: string | null;
  closedSequence: number | null;
  gpuMs: number | null;
}

/** An allocation that closed while folding: what the writer stores and publishes. */
export interface Closure {
  allocation: Allocation;
  closingEvent: DomainEvent;
  closingSequence: number;
  hours: HourlyUsage[];
}

export interface HourlyUsage {
  tenantId: string;
  projectId: string;
  jobId: string;
  subtaskId: string;
  attempt: number;
  leaseId: string;
  allocationId: string;
  gpuModel: string;
  capacityType: CapacityType;
  hourStartMs: number;
  gpuMs: number;
  interruptedGpuMs: number;
}

export interface JobObservation {
  jobId: string;
  tenantId: string;
  projectId: string;
  outcome: string;
  gpuMsObserved: number;
  completedAtMs: number;
  eventId: string;
  sequence: number;
}

export interface Rejection {
  eventId: string;
  sequence: number;
  type: string;
  tenantId: string | null;
  reason: string;
}

/** A node report refused by the shared report rule (libs/contracts `judgeNodeReport`): never metered. */
export interface ReportRejection {
  eventId: string;
  sequence: number;
  type: string;
  nodeId: string;
  subject: string;
  subtaskId: string;
  code: ReportRejectionCode;
  reason: string;
}

/** What the shell must provide: loaded allocations and facts about the log, never the clock. */
export interface FoldInput {
  /** Every allocation the batch touches, loaded by key, plus every not-ended one on a node lost or registered in the batch. */
  allocations: Map<string, Allocation>;
  /** NodeLost and NodeRegistered event ids already applied in an earlier batch (permanent dedupe). */
  appliedNodeEvents: ReadonlySet<string>;
  /** The current agent epoch of every node registered or recovered in the batch that has one; the fold raises them. */
  nodeEpochs: Map<string, number>;
  /** When the log stored each external event (stream time), for the lateness horizon. */
  streamTimeMs: ReadonlyMap<number, number>;
  horizon?: LatenessHorizon;
}

export interface FoldOutput {
  changed: Set<string>;
  closures: Closure[];
  jobObservations: JobObservation[];
  rejections: Rejection[];
  reportRejections: ReportRejection[];
  /** NodeLost and NodeRegistered events applied by this batch (they end allocations found by node). */
  nodeEventsApplied: Array<{ eventId: string; sequence: number }>;
  /** Nodes whose agent epoch the batch raised (their new epoch is in `nodeEpochs`). */
  nodeEpochsChanged: Set<string>;
  eventTimeMaxMs: number | null;
}

/** The allocation keys an event touches (NodeLost and NodeRegistered touch rows found by node instead). */
export function keysOf(event: DomainEvent): string[] {
  const allocation = allocationKeyOf(event);
  return allocation ? [allocation.key] : [];
}

export function emptyAllocation(key: string, kind: AllocationKind): Allocation {
  return {
    key,
    kind,
    tenantId: null,
    projectId: null,
    jobId: '',
    subtaskId: '',
    attempt: 0,
    leaseId: '',
    allocationId: '',
    nodeId: null,
    gpuModel: null,
    gpus: null,
    capacityType: null,
    leaseEpoch: null,
    placedEventId: null,
    placedSequence: null,
    placedMs: null,
    startMs: null,
    startEpoch: null,
    startEventId: null,
    startSequence: null,
    endMs: null,
    endEpoch: null,
    endEventId: null,
    endSequence: null,
    endReason: null,
    interrupted: false,
    late: false,
    lateReceivedMs: null,
    staleReports: 0,
    closedEventId: null,
    closedSequence: null,
    gpuMs: null,
  };
}

/** GPU-ms of an interval split at UTC hours; an end before the start counts as zero length. */
export function hourlyPieces(allocation: Allocation): { totalGpuMs: number; hours: HourlyUsage[] } {
  const gpus = allocation.gpus!;
  const startMs = allocation.startMs!;
  const endMs = Math.max(allocation.endMs!, startMs);
  const totalGpuMs = gpuMs(gpus, startMs, endMs);
  const hours = splitAtHours(startMs, endMs).map((piece) => {
    const pieceGpuMs = gpuMs(gpus, piece.startMs, piece.endMs);
    return {
      tenantId: allocation.tenantId!,
      projectId: allocation.projectId!,
      jobId: allocation.jobId,
      subtaskId: allocation.subtaskId,
      attempt: allocation.attempt,
      leaseId: allocation.leaseId,
      allocationId: allocation.allocationId,
      gpuModel: allocation.gpuModel!,
      capacityType: allocation.capacityType!,
      hourStartMs: piece.startMs - (piece.startMs % HOUR_MS),
      gpuMs: pieceGpuMs,
      interruptedGpuMs: allocation.interrupted ? pieceGpuMs : 0,
    };
  });
  return { totalGpuMs, hours };
}
