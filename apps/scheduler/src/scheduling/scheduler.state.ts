import type { DependencyCondition, SchedulerEvent, SchedulerPolicy } from './scheduler.types';
import { judgeNodeReport, type DomainEvent, type NodeCommand, type ReportRejectionCode, type StoredEvent } from '@fastgpu/contracts';
import { gpuMs } from '@fastgpu/money';

/**
 * The scheduler's state, folded from the domain stream: the fleet (nodes, GPU models, which
 * GPU index is held by whom, health and drain), the queues (jobs and leases per priority class
 * and tenant) and the running allocations. `evolve` is deterministic: the same log gives the
 * same state, so the same decisions. For speed the fold owns the state and mutates it in place;
 * nothing else writes to it (the placement cycle works on scratch copies).
 */

/** Sub-task attempts that may end by a platform fault (node lost, agent restart) before it is abandoned. */
export const PLATFORM_ATTEMPTS_MAX = 3;
/** Completed job outcomes kept for dependency checks after the job itself is dropped from memory. */
export const COMPLETED_OUTCOMES_MAX = 1_000_000;

export const CLASS_RANK = { high: 0, standard: 1, preemptible: 2 } as const;
export type ClassRank = 0 | 1 | 2;
export const CLASS_NAMES = ['high', 'standard', 'preemptible'] as const;

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
    queues: [new Map(), new Map(), new Map()],
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

const ms = (iso: string): number => Date.parse(iso);

function queueFor(state: SchedulerState, classRank: ClassRank, tenantId: string): TenantQueue {
  const byTenant = state.queues[classRank];
  let queue = byTenant.get(tenantId);
  if (!queue) {
    queue = { tenantId, classRank, entries: [], unsorted: false, dirty: false };
    byTenant.set(tenantId, queue);
  }
  return queue;
}

/** Queue order within a tenant and class: job priority (higher first), then submit time, then log order. */
export function compareEntries(a: QueueEntry, b: QueueEntry): number {
  const pa = a.kind === 'job' ? a.job.priority : 0;
  const pb = b.kind === 'job' ? b.job.priority : 0;
  if (pa !== pb) return pb - pa;
  const ta = a.kind === 'job' ? a.job.submittedAtMs : a.lease.requestedAtMs;
  const tb = b.kind === 'job' ? b.job.submittedAtMs : b.lease.requestedAtMs;
  if (ta !== tb) return ta - tb;
  return (a.kind === 'job' ? a.job.sequence : a.lease.sequence) - (b.kind === 'job' ? b.job.sequence : b.lease.sequence);
}

function enqueue(state: SchedulerState, entry: QueueEntry, classRank: ClassRank, tenantId: string): void {
  const queue = queueFor(state, classRank, tenantId);
  const last = queue.entries[queue.entries.length - 1];
  if (last && compareEntries(last, entry) > 0) queue.unsorted = true;
  queue.entries.push(entry);
}

/** Sorts and compacts a tenant queue: drops entries with nothing left to place. */
export function tidyQueue(queue: TenantQueue): void {
  // Compaction keeps the order (O(n)); only out-of-order appends (priorities, requeues) need a sort.
  if (queue.dirty) queue.entries = queue.entries.filter(isQueued);
  if (queue.unsorted) queue.entries.sort(compareEntries);
  queue.dirty = false;
  queue.unsorted = false;
}

export function isQueued(entry: QueueEntry): boolean {
  return entry.kind === 'job' ? entry.job.pendingCount > 0 && entry.job.cancelReason === undefined && entry.job.doomedReason === undefined : entry.lease.status === 'pending';
}

function markQueueDirty(state: SchedulerState, classRank: ClassRank, tenantId: string): void {
  const queue = state.queues[classRank].get(tenantId);
  if (queue) queue.dirty = true;
}

function addUsage(state: SchedulerState, tenantId: string, model: string, gpus: number): void {
  let byModel = state.usage.get(tenantId);
  if (!byModel) {
    byModel = new Map();
    state.usage.set(tenantId, byModel);
  }
  const next = (byModel.get(model) ?? 0) + gpus;
  if (next < 0) throw new Error(`usage of ${tenantId} on ${model} would go negative`);
  if (next === 0) byModel.delete(model);
  else byModel.set(model, next);
}

function allocate(state: SchedulerState, allocation: Allocation): void {
  const node = allocation.node;
  for (const index of allocation.gpuIndices) {
    // Invariant: no GPU is ever assigned twice. A log that says otherwise is a bug upstream.
    if (index >= node.gpuCount || node.gpuOwner[index] !== undefined) {
      throw new Error(`GPU ${node.nodeId}#${index} is not free for ${allocation.kind} ${allocation.key}`);
    }
    node.gpuOwner[index] = allocation;
  }
  node.freeGpus -= allocation.gpus;
  node.allocations.add(allocation);
  addUsage(state, allocation.tenantId, allocation.gpuModel, allocation.gpus);
  if (allocation.leaseEpoch > state.lastLeaseEpoch) state.lastLeaseEpoch = allocation.leaseEpoch;
}

function release(state: SchedulerState, allocation: Allocation): void {
  const node = allocation.node;
  if (!node.allocations.delete(allocation)) return;
  for (const index of allocation.gpuIndices) {
    if (node.gpuOwner[index] === allocation) node.gpuOwner[index] = undefined;
  }
  node.freeGpus += allocation.gpus;
  addUsage(state, allocation.tenantId, allocation.gpuModel, -allocation.gpus);
  state.unstarted.delete(allocation);
}

function observe(allocation: Allocation, endMs: number): void {
  const subtask = allocation.subtask;
  if (!subtask) return;
  const startMs = allocation.startedAtMs ?? allocation.placedAtMs;
  if (endMs > startMs) subtask.job.gpuMsObserved += gpuMs(allocation.gpus, startMs, endMs);
}

/**
 * The allocation a node report is about, if the report matches it by the shared report rule (the
 * node on its subject and in its body, sub-task, attempt, lease epoch); else undefined, and the
 * refusal is kept for the shell. A forged or stale report changes nothing: the sub-task keeps
 * running and its GPUs stay held.
 */
function reportedAllocation(state: SchedulerState, stored: StoredEvent, report: DomainEvent<'SubtaskStarted'> | DomainEvent<'SubtaskCompleted'> | DomainEvent<'SubtaskFailed'>): Allocation | undefined {
  const d = report.data;
  const subtask = state.subtasks.get(d.subtaskId);
  const allocation = subtask?.job.jobId === d.jobId ? subtask.allocation : undefined;
  const placement = allocation && { nodeId: allocation.node.nodeId, subtaskId: d.subtaskId, attempt: allocation.attempt, leaseEpoch: allocation.leaseEpoch };
  const judgement = judgeNodeReport(placement, { ...d, subject: stored.subject });
  if (judgement.ok) return allocation;
  state.rejectedReports.push({ sequence: stored.sequence, eventId: report.id, type: report.type, nodeId: d.nodeId, subject: stored.subject, subtaskId: d.subtaskId, code: judgement.code, reason: judgement.reason });
  if (state.rejectedReports.length > REJECTED_REPORTS_KEPT_MAX) state.rejectedReports.splice(0, state.rejectedReports.length - REJECTED_REPORTS_KEPT_MAX);
  return undefined;
}

/** The current allocation of a sub-task if a scheduler event matches it (same attempt and epoch), else undefined (stale). */
function currentAllocation(state: SchedulerState, subtaskId: string, jobId: string, attempt: number, leaseEpoch: number): Allocation | undefined {
  const subtask = state.subtasks.get(subtaskId);
  if (subtask?.job.jobId !== jobId) return undefined;
  const allocation = subtask.allocation;
  if (!allocation || allocation.attempt !== attempt || allocation.leaseEpoch !== leaseEpoch) return undefined;
  return allocation;
}

export function hasAwaiting(job: JobState): boolean {
  for (const s of job.subtasks) if (s && (s.status === 'awaitingRequeue' || s.status === 'awaitingAbandon')) return true;
  return false;
}

/** Whether a job needs a decision besides placement: stop, complete, fail on a dependency, or restart a gang. */
export function needsReview(state: SchedulerState, job: JobState): boolean {
  if (job.cancelReason !== undefined || job.doomedReason !== undefined) return true;
  const terminal = job.succeeded + job.failed + job.cancelled;
  if (terminal === job.subtaskCount) return true;
  if (job.gang && job.runningCount > 0 && (job.pendingCount > 0 || hasAwaiting(job))) return true;
  if (job.runningCount === 0) {
    for (const dependency of job.dependsOn) {
      const outcome = completedOutcome(state, job.tenantId, dependency.jobId);
      if (dependency.condition === 'afterSuccess' && outcome !== undefined && outcome !== 'succeeded') return true;
    }
  }
  return false;
}

/** Keeps the attention set exact, so a cycle only looks at jobs that need a decision. */
function review(state: SchedulerState, job: JobState): void {
  if (state.jobs.get(job.jobId) === job && needsReview(state, job)) state.attentionJobs.add(job);
  else state.attentionJobs.delete(job);
}

function setPending(state: SchedulerState, subtask: SubtaskState): void {
  const job = subtask.job;
  subtask.status = 'pending';
  job.pending.push(subtask);
  if (job.pending.length > 1 && job.pending[job.pending.length - 2]!.index > subtask.index) job.pending.sort((a, b) => a.index - b.index);
  job.pendingCount++;
  if (job.pendingCount === 1 && job.cancelReason === undefined) enqueue(state, { kind: 'job', job }, job.classRank, job.tenantId);
}

/** An attempt ended without success: the next decision requeues it, abandons it, or it failed for good. */
function endAttempt(state: SchedulerState, subtask: SubtaskState, fault: 'user' | 'platform' | 'preempted', exitCode: number | undefined, causeId: string, reason: string): void {
  const job = subtask.job;
  job.runningCount--;
  subtask.allocation = undefined;
  subtask.endCauseId = causeId;
  subtask.endReason = reason;
  if (job.cancelReason !== undefined || job.doomedReason !== undefined) {
    subtask.status = 'cancelled';
    job.cancelled++;
    review(state, job);
    return;
  }
  if (fault === 'preempted') {
    subtask.status = 'awaitingRequeue';
  } else if (fault === 'platform') {
    subtask.platformFailures++;
    subtask.status = subtask.platformFailures >= PLATFORM_ATTEMPTS_MAX ? 'awaitingAbandon' : 'awaitingRequeue';
  } else {
    subtask.userFailures++;
    const policy = job.retryPolicy;
    const retryable = policy !== undefined && subtask.userFailures < policy.maxAttempts && (policy.retryOnExitCodes.length === 0 || (exitCode !== undefined && policy.retryOnExitCodes.includes(exitCode)));
    if (retryable) subtask.status = 'awaitingRequeue';
    else {
      subtask.status = 'failed';
      job.failed++;
      if (job.gang) job.doomedReason = `gang member ${subtask.index} failed: ${reason}`;
      review(state, job);
      return;
    }
  }
  state.attentionSubtasks.add(subtask);
  review(state, job);
}

/** Interrupts everything on a node (lost, or its agent restarted). */
function interruptNode(state: SchedulerState, node: NodeState, causeId: string, reason: string): void {
  for (const allocation of [...node.allocations]) {
    release(state, allocation);
    if (allocation.subtask) endAttempt(state, allocation.subtask, 'platform', undefined, causeId, reason);
    if (allocation.lease && allocation.lease.status !== 'released') {
      allocation.lease.status = 'releasing';
      allocation.lease.releaseReason = reason;
      state.attentionLeases.add(allocation.lease);
    }
  }
}

export interface CompletedJob {
  tenantId: string;
  outcome: 'succeeded' | 'failed' | 'cancelled';
}

/**
 * How a completed job ended, as its own tenant may know it: a dependency resolves only within
 * the tenant, so another tenant's job is unknown (undefined), exactly like a job that never was.
 * Intake refuses such a dependency at submission already; this holds if one reaches the log anyway.
 */
export function completedOutcome(state: SchedulerState, tenantId: string, jobId: string): CompletedJob['outcome'] | undefined {
  const completed = state.completedJobs.get(jobId);
  return completed?.tenantId === tenantId ? completed.outcome : undefined;
}

function jobCompleted(state: SchedulerState, jobId: string, tenantId: string, outcome: CompletedJob['outcome']): void {
  const job = state.jobs.get(jobId);
  if (job) {
    for (const subtask of job.subtasks) if (subtask?.allocation) release(state, subtask.allocation);
    state.attentionJobs.delete(job);
    for (const subtask of job.subtasks) {
      if (!subtask) continue;
      state.attentionSubtasks.delete(subtask);
      state.subtasks.delete(subtask.subtaskId);
    }
    markQueueDirty(state, job.classRank, job.tenantId);
    state.jobs.delete(jobId);
  }
  if (state.completedJobs.size >= COMPLETED_OUTCOMES_MAX) {
    const oldest = state.completedJobs.keys().next().value;
    if (oldest !== undefined) state.completedJobs.delete(oldest);
  }
  state.completedJobs.set(jobId, { tenantId, outcome });
  for (const dependent of state.dependents.get(jobId) ?? []) review(state, dependent);
  state.dependents.delete(jobId);
}

function rememberStop(state: SchedulerState, stop: SchedulerState['recentStops'][number]): void {
  state.recentStops.push(stop);
  if (state.recentStops.length > RECENT_STOPS_MAX) state.recentStops.splice(0, state.recentStops.length - RECENT_STOPS_MAX);
}

/** Folds one event into the state. Events the scheduler does not read only move the sequence. */
export function evolve(state: SchedulerState, stored: StoredEvent): SchedulerState {
  const { event, sequence, subject } = stored;
  if (sequence <= state.lastSequence) return state;
  state.lastSequence = sequence;
  const e = event as SchedulerEvent;
  switch (e.type) {
    case 'NodeRegistered': {
      const d = e.data;
      state.fleetVersion++;
      let node = state.nodes.get(d.nodeId);
      if (!node) {
        node = {
          ordinal: state.nodeList.length,
          nodeId: d.nodeId,
          gpuModel: d.gpuModel,
          gpuCount: d.gpuCount,
          gpuMemoryGb: d.gpuMemoryGb,
          labels: d.labels,
          agentEpoch: d.agentEpoch,
          status: 'ready',
          gpuOwner: new Array<Allocation | undefined>(d.gpuCount).fill(undefined),
          freeGpus: d.gpuCount,
          allocations: new Set(),
          schedulerSubjectSequence: 0,
        };
        state.nodes.set(d.nodeId, node);
        state.nodeList.push(node);
        return state;
      }
      // A restarted agent lost what it ran: its sub-tasks are interrupted by the platform.
      if (d.agentEpoch > node.agentEpoch) interruptNode(state, node, e.id, `node ${d.nodeId} agent restarted`);
      node.agentEpoch = Math.max(node.agentEpoch, d.agentEpoch);
      node.labels = d.labels;
      node.gpuMemoryGb = d.gpuMemoryGb;
      if (node.allocations.size === 0 && (d.gpuCount !== node.gpuCount || d.gpuModel !== node.gpuModel)) {
        node.gpuModel = d.gpuModel;
        node.gpuCount = d.gpuCount;
        node.gpuOwner = new Array<Allocation | undefined>(d.gpuCount).fill(undefined);
        node.freeGpus = d.gpuCount;
      }
      if (node.status === 'lost') node.status = 'ready';
      return state;
    }
    case 'NodeLost': {
      const node = state.nodes.get(e.data.nodeId);
      if (!node) return state;
      node.status = 'lost';
      interruptNode(state, node, e.id, `node ${node.nodeId} lost: ${e.data.reason}`);
      return state;
    }
    case 'NodeRecovered': {
      const node = state.nodes.get(e.data.nodeId);
      if (node && node.status === 'lost') node.status = 'ready';
      if (node) node.agentEpoch = Math.max(node.agentEpoch, e.data.agentEpoch);
      return state;
    }
    case 'NodeDrained': {
      const node = state.nodes.get(e.data.nodeId);
      if (node && node.status !== 'lost') node.status = 'drained';
      return state;
    }
    case 'SchedulingPolicySet': {
      state.policy = { policy: e.data.policy, sequence, setAt: e.data.setAt, actor: e.data.actor };
      return state;
    }
    case 'NodeUndrained': {
      const node = state.nodes.get(e.data.nodeId);
      if (node && node.status === 'drained') node.status = 'ready';
      return state;
    }
    case 'JobSubmitted': {
      const d = e.data;
      if (state.jobs.has(d.jobId) || state.completedJobs.has(d.jobId)) return state;
      const job: JobState = {
        jobId: d.jobId,
        tenantId: d.tenantId,
        projectId: d.projectId,
        eventId: e.id,
        traceparent: e.traceparent,
        gpuModels: d.gpuModels,
        gpusPerSubtask: d.gpusPerSubtask,
        subtaskCount: d.subtaskCount,
        runtimeMs: d.runtimeMs,
        classRank: CLASS_RANK[d.priorityClass],
        priority: d.priority,
        preemptible: d.preemptible || d.priorityClass === 'preemptible',
        gang: d.gang,
        gangTopologyKey: d.gangTopologyKey,
        capacityType: d.capacityType,
        dependsOn: d.dependsOn,
        retryPolicy: d.retryPolicy,
        submittedAtMs: ms(d.submittedAt),
        sequence,
        subtasks: [],
        pending: [],
        pendingCount: 0,
        runningCount: 0,
        succeeded: 0,
        failed: 0,
        cancelled: 0,
        gpuMsObserved: 0,
      };
      state.jobs.set(d.jobId, job);
      for (const dependency of d.dependsOn) {
        // A finished job (of any tenant) never completes again: nothing to wait for here.
        if (state.completedJobs.has(dependency.jobId)) continue;
        const list = state.dependents.get(dependency.jobId) ?? [];
        list.push(job);
        state.dependents.set(dependency.jobId, list);
      }
      if (d.dependsOn.length) review(state, job);
      return state;
    }
    case 'SubtaskCreated': {
      const d = e.data;
      const job = state.jobs.get(d.jobId);
      if (!job || job.subtasks[d.index]) return state;
      const subtask: SubtaskState = {
        subtaskId: d.subtaskId,
        job,
        index: d.index,
        gpus: d.gpus,
        runtimeMs: d.runtimeMs,
        status: 'pending',
        attempt: 1,
        platformFailures: 0,
        userFailures: 0,
        causeId: e.id,
      };
      job.subtasks[d.index] = subtask;
      state.subtasks.set(d.subtaskId, subtask);
      if (job.cancelReason !== undefined) {
        subtask.status = 'cancelled';
        job.cancelled++;
        return state;
      }
      setPending(state, subtask);
      return state;
    }
    case 'JobCancelRequested': {
      const job = state.jobs.get(e.data.jobId);
      if (!job || job.cancelReason !== undefined) return state;
      job.cancelReason = e.data.reason;
      for (const subtask of job.subtasks) {
        if (subtask && (subtask.status === 'pending' || subtask.status === 'awaitingRequeue' || subtask.status === 'awaitingAbandon')) {
          subtask.status = 'cancelled';
          job.cancelled++;
          state.attentionSubtasks.delete(subtask);
        }
      }
      job.pending = [];
      job.pendingCount = 0;
      markQueueDirty(state, job.classRank, job.tenantId);
      review(state, job);
      return state;
    }
    case 'SubtaskPlaced': {
      const d = e.data;
      const node = state.nodes.get(d.nodeId);
      if (node && subject.endsWith(`.${d.nodeId}`)) node.schedulerSubjectSequence = sequence;
      const subtask = state.subtasks.get(d.subtaskId);
      const job = subtask?.job;
      if (!node || !job || !subtask || job.jobId !== d.jobId || subtask.status !== 'pending' || subtask.attempt !== d.attempt) return state;
      const allocation: Allocation = {
        kind: 'subtask',
        key: d.subtaskId,
        tenantId: d.tenantId,
        node,
        gpuModel: d.gpuModel,
        gpus: d.gpus,
        gpuIndices: d.gpuIndices,
        leaseEpoch: d.leaseEpoch,
        attempt: d.attempt,
        classRank: job.classRank,
        priority: job.priority,
        preemptible: job.preemptible,
        placedAtMs: ms(d.placedAt),
        runtimeMs: d.runtimeMs,
        eventId: e.id,
        subtask,
      };
      allocate(state, allocation);
      state.unstarted.add(allocation);
      subtask.status = 'placed';
      subtask.allocation = allocation;
      job.pendingCount--;
      job.runningCount++;
      const at = job.pending.indexOf(subtask);
      if (at >= 0) job.pending.splice(at, 1);
      if (job.pendingCount === 0) markQueueDirty(state, job.classRank, job.tenantId);
      if (job.gang) review(state, job);
      return state;
    }
    case 'SubtaskStarted': {
      const d = e.data;
      const allocation = reportedAllocation(state, stored, e);
      if (allocation && allocation.startedAtMs === undefined) {
        allocation.startedAtMs = ms(d.startedAt);
        state.unstarted.delete(allocation);
      }
      return state;
    }
    case 'SubtaskCompleted': {
      const d = e.data;
      const allocation = reportedAllocation(state, stored, e);
      if (!allocation?.subtask) return state;
      observe(allocation, ms(d.endedAt));
      release(state, allocation);
      const subtask = allocation.subtask;
      subtask.allocation = undefined;
      subtask.status = 'succeeded';
      subtask.job.runningCount--;
      subtask.job.succeeded++;
      review(state, subtask.job);
      return state;
    }
    case 'SubtaskFailed': {
      const d = e.data;
      const allocation = reportedAllocation(state, stored, e);
      if (!allocation?.subtask) return state;
      observe(allocation, ms(d.endedAt));
      release(state, allocation);
      endAttempt(state, allocation.subtask, d.fault, d.exitCode, e.id, `${d.fault} failure (exit ${d.exitCode}): ${d.reason}`);
      return state;
    }
    case 'SubtaskPreempted': {
      const d = e.data;
      const node = state.nodes.get(d.nodeId);
      if (node) node.schedulerSubjectSequence = sequence;
      const allocation = currentAllocation(state, d.subtaskId, d.jobId, d.attempt, d.leaseEpoch);
      rememberStop(state, { nodeId: d.nodeId, command: { kind: 'StopSubtask', commandId: e.id, subtaskId: d.subtaskId, attempt: d.attempt, leaseEpoch: d.leaseEpoch, reason: d.reason, issuedAt: d.preemptedAt } });
      if (!allocation?.subtask) return state;
      observe(allocation, ms(d.preemptedAt));
      release(state, allocation);
      endAttempt(state, allocation.subtask, 'preempted', undefined, e.id, `preempted: ${d.reason}`);
      return state;
    }
    case 'SubtaskRequeued': {
      const d = e.data;
      const subtask = state.subtasks.get(d.subtaskId);
      if (!subtask || subtask.job.jobId !== d.jobId || subtask.status !== 'awaitingRequeue' || subtask.attempt !== d.previousAttempt) return state;
      state.attentionSubtasks.delete(subtask);
      subtask.attempt = d.previousAttempt + 1;
      subtask.causeId = e.id;
      setPending(state, subtask);
      return state;
    }
    case 'SubtaskAbandoned': {
      const d = e.data;
      const subtask = state.subtasks.get(d.subtaskId);
      const job = subtask?.job;
      if (!job || !subtask || job.jobId !== d.jobId || subtask.status !== 'awaitingAbandon') return state;
      state.attentionSubtasks.delete(subtask);
      subtask.status = 'abandoned';
      job.failed++;
      if (job.gang) job.doomedReason = `gang member ${subtask.index} abandoned: ${d.reason}`;
      review(state, job);
      return state;
    }
    case 'JobCompleted':
      jobCompleted(state, e.data.jobId, e.data.tenantId, e.data.outcome);
      return state;
    case 'LeaseRequested': {
      const d = e.data;
      if (state.leases.has(d.leaseId)) return state;
      const lease: LeaseState = {
        leaseId: d.leaseId,
        tenantId: d.tenantId,
        projectId: d.projectId,
        eventId: e.id,
        gpuModels: d.gpuModels,
        gpus: d.gpus,
        capacityType: d.capacityType,
        classRank: CLASS_RANK[d.priorityClass],
        requestedAtMs: ms(d.requestedAt),
        sequence,
        status: 'pending',
      };
      state.leases.set(d.leaseId, lease);
      enqueue(state, { kind: 'lease', lease }, lease.classRank, lease.tenantId);
      return state;
    }
    case 'LeaseReleaseRequested': {
      const lease = state.leases.get(e.data.leaseId);
      if (!lease || lease.tenantId !== e.data.tenantId) return state;
      if (lease.status === 'pending') {
        // Kept as a tombstone: a grant decided before this release may still arrive and must be closed.
        lease.status = 'released';
        lease.releaseReason = 'released before it was granted';
        markQueueDirty(state, lease.classRank, lease.tenantId);
      } else if (lease.status === 'granted') {
        lease.status = 'releasing';
        lease.releaseReason = 'released by the tenant';
        state.attentionLeases.add(lease);
      }
      return state;
    }
    case 'LeaseGranted': {
      const d = e.data;
      const node = state.nodes.get(d.nodeId);
      if (node) node.schedulerSubjectSequence = sequence;
      const lease = state.leases.get(d.leaseId);
      if (!node || !lease || (lease.status !== 'pending' && !(lease.status === 'released' && !lease.allocation))) return state;
      const allocation: Allocation = {
        kind: 'lease',
        key: d.leaseId,
        tenantId: d.tenantId,
        node,
        gpuModel: d.gpuModel,
        gpus: d.gpus,
        gpuIndices: d.gpuIndices,
        leaseEpoch: d.leaseEpoch,
        attempt: 1,
        classRank: lease.classRank,
        priority: 0,
        preemptible: lease.classRank === CLASS_RANK.preemptible,
        placedAtMs: ms(d.grantedAt),
        eventId: e.id,
        lease,
      };
      allocate(state, allocation);
      lease.allocation = allocation;
      if (lease.status === 'released') {
        // The release was asked while the grant was in flight: give the GPUs back at once.
        lease.status = 'releasing';
        state.attentionLeases.add(lease);
        return state;
      }
      lease.status = 'granted';
      markQueueDirty(state, lease.classRank, lease.tenantId);
      return state;
    }
    case 'LeaseReleased': {
      const d = e.data;
      const node = state.nodes.get(d.nodeId);
      if (node) node.schedulerSubjectSequence = sequence;
      const lease = state.leases.get(d.leaseId);
      if (!lease) return state;
      if (lease.allocation) release(state, lease.allocation);
      lease.allocation = undefined;
      lease.status = 'released';
      rememberStop(state, { nodeId: d.nodeId, command: { kind: 'DetachLease', commandId: e.id, leaseId: d.leaseId, leaseEpoch: d.leaseEpoch, reason: d.reason, issuedAt: d.releasedAt } });
      state.attentionLeases.delete(lease);
      state.leases.delete(d.leaseId);
      return state;
    }
    default: {
      const unreachable: never = e;
      void unreachable;
      return state;
    }
  }
}
