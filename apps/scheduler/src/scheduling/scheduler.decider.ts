import { deriveId, type NodeCommand } from '@fastgpu/contracts';
import {
  CLASS_NAMES,
  CLASS_RANK,
  hasAwaiting,
  isQueued,
  compareEntries,
  completedOutcome,
  tidyQueue,
  type Allocation,
  type ClassRank,
  type JobState,
  type LeaseState,
  type NodeState,
  type QueueEntry,
  type SchedulerState,
  type SubtaskState,
  type TenantQueue,
} from './scheduler.state';
import type { CycleCommand, CycleResult, Decision, HypotheticalJob, Reservation, SchedulerPolicy, Waiting } from './scheduler.types';

/**
 * The placement function: `decide(state, command) → decisions`, pure. Given the folded state and
 * the cycle's instant and policy it returns the events to publish (with deterministic ids) and
 * the node commands that follow them. It never mutates the state's meaning (it may tidy queue
 * arrays: sorting and dropping finished entries), and works on scratch copies of free GPUs and
 * usage, so a dry-run is the same call with a hypothetical job.
 *
 * Order: priority class (high > standard > preemptible); within a class the tenant with the lowest
 * weighted dominant share goes next (DRF over GPU models); within a tenant, job priority, then
 * submit time. Placement: allowed models in fallback order, best-fit bin packing on a node,
 * quotas with borrowing, gangs all-or-nothing (optionally within one topology domain),
 * preemption of lower-class preemptible work and of borrowed capacity, EASY backfill behind one
 * reservation for the first blocked entry.
 */
export const PLACEMENTS_PER_CYCLE_MAX = 1000;

const ms = (iso: string): number => Date.parse(iso);

// ---------------------------------------------------------------------------- scratch fleet

interface ModelPool {
  model: string;
  nodes: NodeState[];
  maxGpuCount: number;
  /** buckets[f] = ordinals of ready nodes with exactly f free GPUs (scratch). */
  buckets: number[][];
  /** GPUs of nodes that are not lost (fair-share denominator). */
  capacity: number;
  /** Smallest size that found no free node this cycle; and the same for units ending after the reservation starts. */
  minFailedGpus: number;
  minFailedLongGpus: number;
  /** Smallest size, per preemptor class, for which preemption found no node. */
  preemptFailedGpus: [number, number, number];
}

interface CycleAllocation {
  gpus: number;
  endMs: number;
}

class Scratch {
  readonly free: Int32Array;
  readonly position: Int32Array;
  readonly pools = new Map<string, ModelPool>();
  private readonly taken = new Map<number, Uint8Array>();
  private readonly usage = new Map<string, Map<string, number>>();
  readonly victims = new Set<Allocation>();
  readonly placedInCycle = new Map<number, CycleAllocation[]>();
  /** Smallest gang size (per topology key, models, GPUs) that found no domain. */
  readonly domainFailed = new Map<string, number>();
  /**
   * Preemptible GPUs per node: [0] held by preemptible standard-class work (victims of high),
   * [1] held by the preemptible class (victims of high and standard); nodes with any, per model.
   * Built on the first preemption attempt of a cycle.
   */
  private preemptibleIndex?: { byRank: [Int32Array, Int32Array]; nodesByModel: Map<string, NodeState[]> };

  constructor(private readonly state: SchedulerState) {
    const nodes = state.nodeList;
    this.free = new Int32Array(nodes.length);
    this.position = new Int32Array(nodes.length).fill(-1);
    for (const node of nodes) {
      this.free[node.ordinal] = node.freeGpus;
      let pool = this.pools.get(node.gpuModel);
      if (!pool) {
        pool = { model: node.gpuModel, nodes: [], maxGpuCount: 0, buckets: [], capacity: 0, minFailedGpus: Infinity, minFailedLongGpus: Infinity, preemptFailedGpus: [Infinity, Infinity, Infinity] };
        this.pools.set(node.gpuModel, pool);
      }
      if (node.status === 'lost') continue;
      pool.capacity += node.gpuCount;
      if (node.status !== 'ready') continue;
      pool.nodes.push(node);
      if (node.gpuCount > pool.maxGpuCount) {
        for (let f = pool.buckets.length; f <= node.gpuCount; f++) pool.buckets.push([]);
        pool.maxGpuCount = node.gpuCount;
      }
      const bucket = pool.buckets[node.freeGpus]!;
      this.position[node.ordinal] = bucket.length;
      bucket.push(node.ordinal);
    }
  }

  node(ordinal: number): NodeState {
    return this.state.nodeList[ordinal]!;
  }

  private setFree(node: NodeState, next: number): void {
    const ordinal = node.ordinal;
    const previous = this.free[ordinal]!;
    this.free[ordinal] = next;
    const pool = this.pools.get(node.gpuModel)!;
    if (this.position[ordinal]! < 0) return;
    const from = pool.buckets[previous]!;
    const at = this.position[ordinal]!;
    const last = from.pop()!;
    if (last !== ordinal) {
      from[at] = last;
      this.position[last] = at;
    }
    const to = pool.buckets[next]!;
    this.position[ordinal] = to.length;
    to.push(ordinal);
  }

  private takenOf(node: NodeState): Uint8Array {
    let flags = this.taken.get(node.ordinal);
    if (!flags) {
      flags = new Uint8Array(node.gpuCount);
      for (let i = 0; i < node.gpuCount; i++) flags[i] = node.gpuOwner[i] === undefined ? 0 : 1;
      this.taken.set(node.ordinal, flags);
    }
    return flags;
  }

  /** Takes `gpus` free GPU indices on the node (lowest first). */
  take(node: NodeState, gpus: number, endMs: number): number[] {
    const flags = this.takenOf(node);
    const indices: number[] = [];
    for (let i = 0; i < flags.length && indices.length < gpus; i++) {
      if (flags[i] === 0) {
        flags[i] = 1;
        indices.push(i);
      }
    }
    if (indices.length !== gpus) throw new Error(`node ${node.nodeId} has ${indices.length} free GPUs, not ${gpus}`);
    this.setFree(node, this.free[node.ordinal]! - gpus);
    const list = this.placedInCycle.get(node.ordinal) ?? [];
    list.push({ gpus, endMs });
    this.placedInCycle.set(node.ordinal, list);
    return indices;
  }

  untake(node: NodeState, indices: number[]): void {
    const flags = this.takenOf(node);
    for (const i of indices) flags[i] = 0;
    this.setFree(node, this.free[node.ordinal]! + indices.length);
    this.placedInCycle.get(node.ordinal)?.pop();
  }

  /** Frees a running allocation's GPUs in the scratch (preemption). */
  evict(allocation: Allocation): void {
    const flags = this.takenOf(allocation.node);
    for (const i of allocation.gpuIndices) flags[i] = 0;
    this.setFree(allocation.node, this.free[allocation.node.ordinal]! + allocation.gpus);
    this.victims.add(allocation);
    this.addUsage(allocation.tenantId, allocation.gpuModel, -allocation.gpus);
    for (const pool of this.pools.values()) {
      pool.minFailedGpus = Infinity;
      pool.minFailedLongGpus = Infinity;
    }
    this.domainFailed.clear();
    this.countPreemptible(allocation, -1);
  }

  unevict(allocation: Allocation): void {
    const flags = this.takenOf(allocation.node);
    for (const i of allocation.gpuIndices) flags[i] = 1;
    this.setFree(allocation.node, this.free[allocation.node.ordinal]! - allocation.gpus);
    this.victims.delete(allocation);
    this.addUsage(allocation.tenantId, allocation.gpuModel, allocation.gpus);
    this.countPreemptible(allocation, 1);
  }

  private countPreemptible(allocation: Allocation, sign: 1 | -1): void {
    if (!this.preemptibleIndex || !allocation.preemptible || allocation.classRank === 0) return;
    this.preemptibleIndex.byRank[allocation.classRank - 1]![allocation.node.ordinal]! += sign * allocation.gpus;
  }

  /** Nodes of a model holding preemptible work, and how many GPUs a preemptor of `classRank` could free on a node. */
  preemptible(model: string): NodeState[] {
    if (!this.preemptibleIndex) {
      const n = this.state.nodeList.length;
      const index = { byRank: [new Int32Array(n), new Int32Array(n)] as [Int32Array, Int32Array], nodesByModel: new Map<string, NodeState[]>() };
      for (const pool of this.pools.values()) {
        const nodes: NodeState[] = [];
        for (const node of pool.nodes) {
          let any = false;
          for (const a of node.allocations) {
            if (!a.preemptible || a.classRank === 0 || this.victims.has(a)) continue;
            index.byRank[a.classRank - 1]![node.ordinal]! += a.gpus;
            any = true;
          }
          if (any) nodes.push(node);
        }
        index.nodesByModel.set(pool.model, nodes);
      }
      this.preemptibleIndex = index;
    }
    return this.preemptibleIndex.nodesByModel.get(model) ?? [];
  }

  private readonly domainIndex = new Map<string, Array<[string, NodeState[]]>>();

  /** Ready nodes of a model grouped by a topology label (e.g. NVLink domain), by label value, ordinals ascending. */
  domains(model: string, key: string): Array<[string, NodeState[]]> {
    const cacheKey = `${model}\u0000${key}`;
    let domains = this.domainIndex.get(cacheKey);
    if (!domains) {
      const byValue = new Map<string, NodeState[]>();
      for (const node of this.pools.get(model)?.nodes ?? []) {
        const value = node.labels[key];
        if (value === undefined) continue;
        const list = byValue.get(value) ?? [];
        list.push(node);
        byValue.set(value, list);
      }
      domains = [...byValue.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      this.domainIndex.set(cacheKey, domains);
    }
    return domains;
  }

  preemptibleGpus(ordinal: number, classRank: ClassRank): number {
    const byRank = this.preemptibleIndex!.byRank;
    // High preempts preemptible standard work and the preemptible class; standard only the latter.
    return classRank === 0 ? byRank[0][ordinal]! + byRank[1][ordinal]! : classRank === 1 ? byRank[1][ordinal]! : 0;
  }

  usageOf(tenantId: string, model: string): number {
    const own = this.usage.get(tenantId);
    if (own) return own.get(model) ?? 0;
    return this.state.usage.get(tenantId)?.get(model) ?? 0;
  }

  addUsage(tenantId: string, model: string, gpus: number): void {
    let own = this.usage.get(tenantId);
    if (!own) {
      own = new Map(this.state.usage.get(tenantId) ?? []);
      this.usage.set(tenantId, own);
    }
    own.set(model, (own.get(model) ?? 0) + gpus);
  }

  usageModels(tenantId: string): Map<string, number> | undefined {
    return this.usage.get(tenantId) ?? this.state.usage.get(tenantId);
  }
}

// ---------------------------------------------------------------------------- helpers

function weightOf(policy: SchedulerPolicy, tenantId: string): number {
  return policy.tenants[tenantId]?.weight ?? policy.defaultWeight;
}

/** Weighted dominant share: the tenant's largest share of any GPU model's capacity, over its weight. */
function dominantShare(scratch: Scratch, policy: SchedulerPolicy, tenantId: string): number {
  const usage = scratch.usageModels(tenantId);
  let share = 0;
  if (usage) {
    for (const [model, gpus] of usage) {
      const capacity = scratch.pools.get(model)?.capacity ?? 0;
      if (capacity > 0 && gpus / capacity > share) share = gpus / capacity;
    }
  }
  return share / weightOf(policy, tenantId);
}

type QuotaVerdict = { ok: true; borrowing: boolean } | { ok: false; reason: string };

function quotaVerdict(scratch: Scratch, policy: SchedulerPolicy, tenantId: string, model: string, gpus: number): QuotaVerdict {
  const quota = policy.tenants[tenantId]?.quotas[model];
  if (!quota) return { ok: true, borrowing: false };
  const used = scratch.usageOf(tenantId, model);
  if (used + gpus <= quota.nominal) return { ok: true, borrowing: false };
  const limit = policy.borrowing ? (quota.borrowingLimit ?? Number.POSITIVE_INFINITY) : 0;
  if (used + gpus <= quota.nominal + limit) return { ok: true, borrowing: true };
  return { ok: false, reason: `quota: tenant ${tenantId} uses ${used} of its ${quota.nominal} ${model} GPUs${policy.borrowing ? ` (borrowing limit ${limit})` : ''} and asks ${gpus} more` };
}

function dependencyState(state: SchedulerState, job: JobState): { ready: true } | { ready: false; reason: string; failed: boolean } {
  for (const dependency of job.dependsOn) {
    const outcome = completedOutcome(state, job.tenantId, dependency.jobId);
    if (outcome === undefined) return { ready: false, failed: false, reason: `waiting for job ${dependency.jobId} to end (${dependency.condition})` };
    if (dependency.condition === 'afterSuccess' && outcome !== 'succeeded') return { ready: false, failed: true, reason: `dependency ${dependency.jobId} ended ${outcome}; ${job.jobId} needed it to succeed` };
  }
  return { ready: true };
}

function expectedEndMs(allocation: Allocation, nowMs: number): number {
  if (allocation.runtimeMs === undefined) return Number.POSITIVE_INFINITY;
  return Math.max(nowMs, (allocation.startedAtMs ?? allocation.placedAtMs) + allocation.runtimeMs);
}

interface Unit {
  key: string;
  tenantId: string;
  classRank: ClassRank;
  gpuModels: string[];
  gpus: number;
  runtimeMs: number;
}

interface Placement {
  node: NodeState;
  indices: number[];
}

class MinHeap<T> {
  private readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}
  get size(): number {
    return this.items.length;
  }
  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }
  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.less(items[l]!, items[m]!)) m = l;
        if (r < items.length && this.less(items[r]!, items[m]!)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top;
  }
}

// ---------------------------------------------------------------------------- the cycle

class Cycle {
  readonly scratch: Scratch;
  readonly nowMs: number;
  readonly decisions: Decision[] = [];
  readonly waiting = new Map<string, Waiting>();
  placements = 0;
  preemptions = 0;
  private epoch: number;
  reservation?: Reservation & { extraByNode: Map<number, number>; label: string };
  private journal?: Array<() => void>;
  private readonly placementsMax: number;
  private readonly reclaimFailed = new Map<string, number>();
  private reservationTried = false;
  private readonly quotasInPolicy: boolean;
  private lastQuotaReason?: string;

  constructor(
    private readonly state: SchedulerState,
    private readonly command: CycleCommand,
  ) {
    this.nowMs = ms(command.now);
    this.scratch = new Scratch(state);
    this.epoch = state.lastLeaseEpoch;
    this.placementsMax = command.placementsMax ?? PLACEMENTS_PER_CYCLE_MAX;
    this.quotasInPolicy = Object.values(command.policy.tenants).some((t) => Object.keys(t.quotas).length > 0);
  }

  get explaining(): boolean {
    return this.command.explain === true;
  }

  get full(): boolean {
    return this.placements >= this.placementsMax;
  }

  private wait(key: string, waiting: Waiting): void {
    if (this.command.explain) this.waiting.set(key, waiting);
  }

  // ------------------------------------------------------------------------ housekeeping

  housekeeping(): void {
    const now = this.command.now;
    for (const subtask of this.state.attentionSubtasks) {
      const job = subtask.job;
      const cause = subtask.endCauseId ?? subtask.causeId;
      if (subtask.status === 'awaitingRequeue') {
        const id = deriveId(cause, `requeued/${subtask.subtaskId}/${subtask.attempt}`);
        this.decisions.push({
          type: 'SubtaskRequeued',
          id,
          causationId: cause,
          correlationId: job.jobId,
          tenantId: job.tenantId,
          data: { jobId: job.jobId, tenantId: job.tenantId, subtaskId: subtask.subtaskId, previousAttempt: subtask.attempt, reason: (subtask.endReason ?? 'requeued').slice(0, 500), requeuedAt: now },
        });
      } else if (subtask.status === 'awaitingAbandon') {
        const id = deriveId(cause, `abandoned/${subtask.subtaskId}/${subtask.attempt}`);
        this.decisions.push({
          type: 'SubtaskAbandoned',
          id,
          causationId: cause,
          correlationId: job.jobId,
          tenantId: job.tenantId,
          data: {
            jobId: job.jobId,
            tenantId: job.tenantId,
            subtaskId: subtask.subtaskId,
            attempt: subtask.attempt,
            reason: `${subtask.platformFailures} platform failures: ${subtask.endReason ?? ''}`.slice(0, 500),
            abandonedAt: now,
          },
        });
      }
    }
    for (const job of this.state.attentionJobs) this.reviewJob(job);
    for (const lease of this.state.attentionLeases) {
      if (lease.status !== 'releasing' || !lease.allocation) continue;
      this.releaseLease(lease, lease.releaseReason ?? 'released');
    }
  }

  private reviewJob(job: JobState): void {
    const stopReason = job.cancelReason !== undefined ? `cancelled: ${job.cancelReason}` : job.doomedReason;
    if (stopReason !== undefined) {
      // A tenant's own cancellation is not a platform interruption: it is never credited back.
      const fault = job.cancelReason !== undefined ? 'user' : 'platform';
      for (const subtask of job.subtasks) if (subtask?.allocation && !this.scratch.victims.has(subtask.allocation)) this.preempt(subtask.allocation, stopReason, undefined, fault);
      if (job.runningCount === 0 && !hasAwaiting(job)) this.complete(job, job.cancelReason !== undefined ? 'cancelled' : 'failed', stopReason);
      return;
    }
    if (job.dependsOn.length && job.runningCount === 0) {
      const dependencies = dependencyState(this.state, job);
      if (!dependencies.ready && dependencies.failed) {
        this.complete(job, 'failed', dependencies.reason);
        return;
      }
    }
    if (job.gang && job.runningCount > 0 && (job.pendingCount > 0 || hasAwaiting(job))) {
      // Never a partial gang: a member went back to the queue, so the rest stops and the gang restarts whole.
      for (const subtask of job.subtasks) if (subtask?.allocation && !this.scratch.victims.has(subtask.allocation)) this.preempt(subtask.allocation, 'gang restart: a member was interrupted');
      return;
    }
    const created = job.subtasks.reduce((n, s) => (s ? n + 1 : n), 0);
    const terminal = job.succeeded + job.failed + job.cancelled;
    if (created === job.subtaskCount && terminal === job.subtaskCount) this.complete(job, job.failed > 0 ? 'failed' : 'succeeded', job.failed > 0 ? `${job.failed} of ${job.subtaskCount} sub-tasks failed` : undefined);
  }

  private complete(job: JobState, outcome: 'succeeded' | 'failed' | 'cancelled', reason?: string): void {
    const id = deriveId(job.eventId, 'completed');
    const notRun = job.subtaskCount - job.succeeded - job.failed;
    this.decisions.push({
      type: 'JobCompleted',
      id,
      causationId: job.eventId,
      correlationId: job.jobId,
      tenantId: job.tenantId,
      data: {
        jobId: job.jobId,
        tenantId: job.tenantId,
        projectId: job.projectId,
        outcome,
        ...(reason ? { reason: reason.slice(0, 500) } : {}),
        subtasksSucceeded: job.succeeded,
        subtasksFailed: job.failed,
        subtasksCancelled: Math.max(0, notRun),
        gpuMsObserved: job.gpuMsObserved,
        completedAt: this.command.now,
      },
    });
  }

  private releaseLease(lease: LeaseState, reason: string): void {
    const allocation = lease.allocation!;
    const id = deriveId(allocation.eventId, 'released');
    this.decisions.push({
      type: 'LeaseReleased',
      id,
      causationId: allocation.eventId,
      correlationId: lease.leaseId,
      tenantId: lease.tenantId,
      nodeId: allocation.node.nodeId,
      command: { kind: 'DetachLease', commandId: id, leaseId: lease.leaseId, leaseEpoch: allocation.leaseEpoch, reason: reason.slice(0, 500), issuedAt: this.command.now },
      data: { leaseId: lease.leaseId, tenantId: lease.tenantId, nodeId: allocation.node.nodeId, leaseEpoch: allocation.leaseEpoch, reason: reason.slice(0, 500), releasedAt: this.command.now },
    });
  }

  /** Stops a running allocation: SubtaskPreempted (or LeaseReleased) then a StopSubtask command. */
  private preempt(allocation: Allocation, reason: string, byJobId?: string, fault: 'user' | 'platform' = 'platform'): void {
    if (this.scratch.victims.has(allocation)) return;
    const undoLength = this.decisions.length;
    this.scratch.evict(allocation);
    this.preemptions++;
    if (this.journal) {
      this.journal.push(() => {
        this.scratch.unevict(allocation);
        this.preemptions--;
        this.decisions.length = undoLength;
      });
    }
    if (allocation.lease) {
      this.releaseLease(allocation.lease, `preempted: ${reason}`);
      return;
    }
    const subtask = allocation.subtask!;
    const job = subtask.job;
    const id = deriveId(allocation.eventId, 'preempted');
    const command: NodeCommand = {
      kind: 'StopSubtask',
      // The command stream dedupes on its own: the event id serves as the command id.
      commandId: id,
      subtaskId: subtask.subtaskId,
      attempt: allocation.attempt,
      leaseEpoch: allocation.leaseEpoch,
      reason: reason.slice(0, 500),
      issuedAt: this.command.now,
    };
    this.decisions.push({
      type: 'SubtaskPreempted',
      id,
      causationId: allocation.eventId,
      correlationId: job.jobId,
      tenantId: job.tenantId,
      nodeId: allocation.node.nodeId,
      command,
      data: {
        jobId: job.jobId,
        tenantId: job.tenantId,
        subtaskId: subtask.subtaskId,
        attempt: allocation.attempt,
        nodeId: allocation.node.nodeId,
        leaseEpoch: allocation.leaseEpoch,
        reason: reason.slice(0, 500),
        ...(byJobId ? { preemptedByJobId: byJobId } : {}),
        fault,
        preemptedAt: this.command.now,
      },
    });
  }

  // ------------------------------------------------------------------------ placement

  /** Whether a unit ends after the reservation's start (then it may use only GPUs the reservation leaves over). */
  private endsAfterReservation(unit: Unit): boolean {
    const reservation = this.reservation;
    return reservation !== undefined && reservation.entryKey !== unit.key && this.nowMs + unit.runtimeMs > reservation.startAtMs;
  }

  /** Best fit on free GPUs: the node of the first allowed model whose free count is the smallest that fits. */
  private fitFree(unit: Unit, quotaReasons: string[] | undefined): Placement | undefined {
    const { scratch } = this;
    const long = this.endsAfterReservation(unit);
    for (const model of unit.gpuModels) {
      const pool = scratch.pools.get(model);
      if (!pool || pool.maxGpuCount < unit.gpus) continue;
      if (this.quotasInPolicy) {
        const quota = quotaVerdict(scratch, this.command.policy, unit.tenantId, model, unit.gpus);
        if (!quota.ok) {
          quotaReasons?.push(quota.reason);
          continue;
        }
      }
      // Free blocks only shrink while placing (until a preemption frees some): a size that failed fails again.
      if (pool.minFailedGpus <= unit.gpus || (long && pool.minFailedLongGpus <= unit.gpus)) continue;
      let blockedByReservation = false;
      for (let f = unit.gpus; f <= pool.maxGpuCount; f++) {
        const bucket = pool.buckets[f]!;
        for (let i = bucket.length - 1; i >= 0; i--) {
          const ordinal = bucket[i]!;
          if (long && !this.reservationAllows(ordinal, unit)) {
            blockedByReservation = true;
            continue;
          }
          return { node: scratch.node(ordinal), indices: [] };
        }
      }
      if (!blockedByReservation) pool.minFailedGpus = Math.min(pool.minFailedGpus, unit.gpus);
      else pool.minFailedLongGpus = Math.min(pool.minFailedLongGpus, unit.gpus);
    }
    return undefined;
  }

  /** EASY backfill: a unit may use a reserved node only if it ends before the reservation starts or uses GPUs the reservation leaves over. */
  private reservationAllows(ordinal: number, unit: Unit): boolean {
    const reservation = this.reservation;
    if (!reservation || reservation.entryKey === unit.key) return true;
    const extra = reservation.extraByNode.get(ordinal);
    if (extra === undefined) return true;
    if (this.nowMs + unit.runtimeMs <= reservation.startAtMs) return true;
    return extra >= unit.gpus;
  }

  private consumeReservation(ordinal: number, unit: Unit): void {
    const reservation = this.reservation;
    if (!reservation || reservation.entryKey === unit.key) return;
    const extra = reservation.extraByNode.get(ordinal);
    if (extra === undefined || this.nowMs + unit.runtimeMs <= reservation.startAtMs) return;
    reservation.extraByNode.set(ordinal, extra - unit.gpus);
  }

  /** Victims on a node that make room for `unit`, cheapest first; undefined if the node cannot make room. */
  private victimsOn(node: NodeState, unit: Unit, reclaim: boolean): { victims: Allocation[]; gpusFreed: number } | undefined {
    const need = unit.gpus - this.scratch.free[node.ordinal]!;
    if (need <= 0) return { victims: [], gpusFreed: 0 };
    const candidates: Allocation[] = [];
    for (const allocation of node.allocations) {
      if (this.scratch.victims.has(allocation) || (allocation.tenantId === unit.tenantId && !allocation.preemptible)) continue;
      const lowerClass = allocation.preemptible && allocation.classRank > unit.classRank;
      const borrowed = reclaim && allocation.tenantId !== unit.tenantId && allocation.classRank >= unit.classRank && this.isBorrowing(allocation);
      if (lowerClass || borrowed) candidates.push(allocation);
    }
    if (candidates.length === 0) return undefined;
    candidates.sort((a, b) => b.classRank - a.classRank || a.priority - b.priority || b.placedAtMs - a.placedAtMs || a.leaseEpoch - b.leaseEpoch);
    const victims: Allocation[] = [];
    let freed = 0;
    for (const candidate of candidates) {
      victims.push(candidate);
      freed += candidate.gpus;
      if (freed >= need) break;
    }
    if (freed < need) return undefined;
    // A gang is preempted whole: count what its other members cost too.
    let gpusFreed = 0;
    for (const victim of victims) {
      const job = victim.subtask?.job;
      if (job?.gang) for (const s of job.subtasks) gpusFreed += s?.allocation && !this.scratch.victims.has(s.allocation) ? s.allocation.gpus : 0;
      else gpusFreed += victim.gpus;
    }
    return { victims, gpusFreed };
  }

  private isBorrowing(allocation: Allocation): boolean {
    const quota = this.command.policy.tenants[allocation.tenantId]?.quotas[allocation.gpuModel];
    return quota !== undefined && this.scratch.usageOf(allocation.tenantId, allocation.gpuModel) > quota.nominal;
  }

  /** Preemption: the node where making room costs the fewest preempted GPUs; undefined when none can. */
  private fitByPreemption(unit: Unit, byJobId: string): Placement | undefined {
    const { scratch } = this;
    const policy = this.command.policy;
    for (const model of unit.gpuModels) {
      const pool = scratch.pools.get(model);
      if (!pool || pool.maxGpuCount < unit.gpus) continue;
      let reclaim = false;
      if (this.quotasInPolicy) {
        const quota = quotaVerdict(scratch, policy, unit.tenantId, model, unit.gpus);
        if (!quota.ok) continue;
        // Reclaiming borrowed GPUs is for an owner within its nominal quota.
        reclaim = policy.tenants[unit.tenantId]?.quotas[model] !== undefined && !quota.borrowing;
      }
      if (unit.classRank === CLASS_RANK.preemptible && !reclaim) continue;
      // Victims only become fewer within a cycle: a size that found none finds none again.
      if (reclaim ? (this.reclaimFailed.get(`${model}|${unit.classRank}|${unit.tenantId}`) ?? Number.POSITIVE_INFINITY) <= unit.gpus : pool.preemptFailedGpus[unit.classRank] <= unit.gpus) continue;
      let best: { node: NodeState; victims: Allocation[]; cost: number } | undefined;
      // Without quota reclaim, only nodes whose free plus preemptible GPUs reach the size can make room.
      const candidates = reclaim ? pool.nodes : scratch.preemptible(model);
      for (const node of candidates) {
        if (node.gpuCount < unit.gpus) continue;
        if (!reclaim && scratch.free[node.ordinal]! + scratch.preemptibleGpus(node.ordinal, unit.classRank) < unit.gpus) continue;
        const option = this.victimsOn(node, unit, reclaim);
        if (!option || option.victims.length === 0) continue;
        if (!best || option.gpusFreed < best.cost || (option.gpusFreed === best.cost && option.victims.length < best.victims.length)) best = { node, victims: option.victims, cost: option.gpusFreed };
        // Freeing exactly what is missing with one victim cannot be beaten.
        if (best.cost === unit.gpus - scratch.free[best.node.ordinal]! && best.victims.length === 1) break;
      }
      if (!best) {
        if (reclaim) {
          const key = `${model}|${unit.classRank}|${unit.tenantId}`;
          this.reclaimFailed.set(key, Math.min(unit.gpus, this.reclaimFailed.get(key) ?? Number.POSITIVE_INFINITY));
        } else pool.preemptFailedGpus[unit.classRank] = Math.min(pool.preemptFailedGpus[unit.classRank], unit.gpus);
        continue;
      }
      for (const victim of best.victims) {
        const job = victim.subtask?.job;
        const reason = `${CLASS_NAMES[unit.classRank]} ${unit.key} needs ${unit.gpus} ${model} GPUs${victim.classRank > unit.classRank ? '' : ' (reclaiming borrowed quota)'}`;
        if (job?.gang) {
          for (const s of job.subtasks) if (s?.allocation) this.preempt(s.allocation, reason, byJobId);
        } else {
          this.preempt(victim, reason, byJobId);
        }
      }
      return { node: best.node, indices: [] };
    }
    return undefined;
  }

  /** Finds and takes GPUs for one unit: free best fit first, then preemption. */
  private placeOne(unit: Unit, byJobId: string, allowPreemption: boolean): { placement?: Placement; waiting?: Waiting['code'] } {
    const quotaReasons: string[] | undefined = this.quotasInPolicy ? [] : undefined;
    let placement = this.fitFree(unit, quotaReasons);
    if (!placement && allowPreemption) placement = this.fitByPreemption(unit, byJobId);
    if (!placement) {
      if (quotaReasons && quotaReasons.length === unit.gpuModels.length) {
        this.lastQuotaReason = quotaReasons.join('; ');
        return { waiting: 'quota' };
      }
      return { waiting: this.reservation && this.reservation.entryKey !== unit.key && this.anyFreeFit(unit) ? 'reserved' : 'capacity' };
    }
    const node = placement.node;
    this.consumeReservation(node.ordinal, unit);
    placement.indices = this.scratch.take(node, unit.gpus, this.nowMs + unit.runtimeMs);
    this.scratch.addUsage(unit.tenantId, node.gpuModel, unit.gpus);
    if (this.journal) {
      const indices = placement.indices;
      this.journal.push(() => {
        this.scratch.untake(node, indices);
        this.scratch.addUsage(unit.tenantId, node.gpuModel, -unit.gpus);
      });
    }
    return { placement };
  }

  /** The waiting reason for a code, written only when explanations are asked for. */
  private describe(code: Waiting['code'], unit: Unit): Waiting {
    switch (code) {
      case 'quota':
        return { code, reason: this.lastQuotaReason ?? 'quota' };
      case 'reserved': {
        const r = this.reservation!;
        return { code, reason: `GPUs that fit are reserved for ${r.label}, which starts at ${new Date(r.startAtMs).toISOString()}` };
      }
      default:
        return { code, reason: `no capacity: needs ${unit.gpus} GPUs on one node of ${unit.gpuModels.join(' / ')}; largest free block is ${this.largestFree(unit.gpuModels)}` };
    }
  }

  private anyFreeFit(unit: Unit): boolean {
    for (const model of unit.gpuModels) {
      const pool = this.scratch.pools.get(model);
      if (!pool) continue;
      for (let f = unit.gpus; f <= pool.maxGpuCount; f++) if (pool.buckets[f]!.length > 0) return true;
    }
    return false;
  }

  private largestFree(models: string[]): number {
    let largest = 0;
    for (const model of models) {
      const pool = this.scratch.pools.get(model);
      if (!pool) continue;
      for (let f = pool.maxGpuCount; f > largest; f--) if (pool.buckets[f]!.length > 0) largest = f;
    }
    return largest;
  }

  /**
   * Nothing more can be placed in this class: no pool has a free GPU and none can make room by
   * preemption for this class. The traversal stops (explanations still get a reason).
   */
  nothingFits(classRank: ClassRank): boolean {
    if (this.quotasInPolicy) return false;
    for (const pool of this.scratch.pools.values()) {
      if (pool.nodes.length === 0) continue;
      // A 1-GPU unit found no free GPU here even ignoring the reservation, or there is none at all.
      if (pool.minFailedGpus > 1) for (let f = 1; f <= pool.maxGpuCount; f++) if (pool.buckets[f]!.length > 0) return false;
      if (classRank === CLASS_RANK.preemptible) continue;
      if (pool.preemptFailedGpus[classRank] > 1 && this.scratch.preemptible(pool.model).some((n) => this.scratch.preemptibleGpus(n.ordinal, classRank) > 0)) return false;
    }
    return true;
  }

  private emitPlaced(job: JobState, subtask: SubtaskState, placement: Placement): void {
    const epoch = ++this.epoch;
    const id = deriveId(subtask.causeId, `placed/${subtask.attempt}`);
    const node = placement.node;
    this.decisions.push({
      type: 'SubtaskPlaced',
      id,
      causationId: subtask.causeId,
      correlationId: job.jobId,
      tenantId: job.tenantId,
      nodeId: node.nodeId,
      command: {
        kind: 'RunSubtask',
        commandId: id,
        jobId: job.jobId,
        tenantId: job.tenantId,
        subtaskId: subtask.subtaskId,
        attempt: subtask.attempt,
        leaseEpoch: epoch,
        gpuIndices: placement.indices,
        runtimeMs: subtask.runtimeMs,
        issuedAt: this.command.now,
      },
      data: {
        jobId: job.jobId,
        tenantId: job.tenantId,
        projectId: job.projectId,
        subtaskId: subtask.subtaskId,
        attempt: subtask.attempt,
        nodeId: node.nodeId,
        gpuModel: node.gpuModel,
        gpus: subtask.gpus,
        gpuIndices: placement.indices,
        leaseEpoch: epoch,
        capacityType: job.capacityType,
        runtimeMs: subtask.runtimeMs,
        placedAt: this.command.now,
      },
    });
    this.placements++;
    if (this.journal) {
      const undoLength = this.decisions.length - 1;
      this.journal.push(() => {
        this.decisions.length = undoLength;
        this.placements--;
        this.epoch--;
      });
    }
  }

  private unitOf(job: JobState, subtask: SubtaskState): Unit {
    return { key: job.jobId, tenantId: job.tenantId, classRank: job.classRank, gpuModels: job.gpuModels, gpus: subtask.gpus, runtimeMs: subtask.runtimeMs };
  }

  /** Records, for an entry not tried, that the fleet has no room left (explanations only). */
  waitFull(entry: QueueEntry): void {
    const key = entry.kind === 'job' ? entry.job.jobId : entry.lease.leaseId;
    this.wait(key, { code: 'capacity', reason: 'no capacity: every allowed GPU is in use and nothing can be preempted for this class' });
  }

  /** Tries an entry; true when something was placed. */
  attempt(entry: QueueEntry): boolean {
    if (entry.kind === 'lease') return this.attemptLease(entry.lease);
    const job = entry.job;
    if (job.dependsOn.length) {
      const dependencies = dependencyState(this.state, job);
      if (!dependencies.ready) {
        this.wait(job.jobId, { code: 'dependency', reason: dependencies.reason });
        return false;
      }
    }
    return job.gang ? this.attemptGang(job) : this.attemptJob(job);
  }

  /**
   * A quick "cannot place now": fewer free blocks of the size than needed (from the buckets, no
   * node scan), and preemption already failed for this size and class (or is not allowed).
   */
  private hopeless(unit: Unit, count: number, allowPreemption: boolean): boolean {
    if (this.quotasInPolicy) return false;
    let slots = 0;
    for (const model of unit.gpuModels) {
      const pool = this.scratch.pools.get(model);
      if (!pool || pool.maxGpuCount < unit.gpus) continue;
      if (pool.minFailedGpus > unit.gpus) for (let f = unit.gpus; f <= pool.maxGpuCount; f++) slots += pool.buckets[f]!.length * Math.floor(f / unit.gpus);
      if (slots >= count) return false;
      if (allowPreemption && unit.classRank < CLASS_RANK.preemptible && pool.preemptFailedGpus[unit.classRank] > unit.gpus) return false;
    }
    return true;
  }

  private attemptJob(job: JobState): boolean {
    let placed = 0;
    let waiting: Waiting['code'] | undefined;
    let unit: Unit | undefined;
    const first = job.pending.find((s) => s.status === 'pending');
    if (first) {
      const probe = this.unitOf(job, first);
      if (this.hopeless(probe, 1, job.classRank < CLASS_RANK.preemptible)) {
        this.reserveFor(job.jobId, `job ${job.jobId}`, probe, 1);
        if (this.explaining) this.wait(job.jobId, this.describe('capacity', probe));
        return false;
      }
    }
    for (const subtask of job.pending) {
      if (subtask.status !== 'pending') continue;
      if (this.full) {
        waiting = 'fairShare';
        break;
      }
      unit = this.unitOf(job, subtask);
      const result = this.placeOne(unit, job.jobId, job.classRank < CLASS_RANK.preemptible || this.reclaimPossible(unit));
      if (!result.placement) {
        waiting = result.waiting;
        if (waiting === 'capacity') this.reserveFor(job.jobId, `job ${job.jobId}`, unit, 1);
        break;
      }
      this.emitPlaced(job, subtask, result.placement);
      placed++;
    }
    if (waiting && unit && this.explaining) {
      const described = waiting === 'fairShare' ? { code: waiting, reason: 'cycle budget reached; placed in the next cycle' } : this.describe(waiting, unit);
      this.wait(job.jobId, placed ? { ...described, reason: `${placed} placed this cycle; rest: ${described.reason}` } : described);
    }
    return placed > 0;
  }

  private reclaimPossible(unit: Unit): boolean {
    if (!this.quotasInPolicy) return false;
    const quotas = this.command.policy.tenants[unit.tenantId]?.quotas;
    return quotas !== undefined && unit.gpuModels.some((m) => quotas[m] !== undefined);
  }

  private attemptGang(job: JobState): boolean {
    const members = job.pending.filter((s) => s.status === 'pending');
    const open = job.subtaskCount - job.succeeded - job.failed - job.cancelled;
    if (members.length === 0 || members.length !== open || job.runningCount > 0) {
      this.wait(job.jobId, { code: 'gang', reason: `gang incomplete: ${members.length} of ${open} members are queued` });
      return false;
    }
    const unit = this.unitOf(job, members[0]!);
    if (this.hopeless(unit, members.length, job.classRank < CLASS_RANK.preemptible)) {
      this.wait(job.jobId, { code: 'gang', reason: `gang incomplete: fewer than ${members.length} free blocks of ${unit.gpus} ${unit.gpuModels.join(' / ')} GPUs, and none can be made by preemption` });
      this.reserveFor(job.jobId, `gang ${job.jobId}`, unit, members.length);
      return false;
    }
    this.journal = [];
    let placedCount = 0;
    let failure: Waiting | undefined;
    if (job.gangTopologyKey) {
      const domain = this.chooseDomain(job, unit, members.length);
      if (!domain) failure = { code: 'gang', reason: `gang incomplete: no ${job.gangTopologyKey} domain has room for ${members.length} × ${unit.gpus} GPUs` };
      else {
        for (let i = 0; i < members.length; i++) {
          const node = domain[i]!;
          const indices = this.scratch.take(node, unit.gpus, this.nowMs + unit.runtimeMs);
          this.scratch.addUsage(unit.tenantId, node.gpuModel, unit.gpus);
          this.consumeReservation(node.ordinal, unit);
          this.emitPlaced(job, members[i]!, { node, indices });
          placedCount++;
        }
      }
    } else {
      for (const subtask of members) {
        const memberUnit = this.unitOf(job, subtask);
        const result = this.placeOne(memberUnit, job.jobId, job.classRank < CLASS_RANK.preemptible);
        if (!result.placement) {
          const why = this.explaining ? this.describe(result.waiting ?? 'capacity', memberUnit).reason : result.waiting;
          failure = { code: 'gang', reason: `gang incomplete: only ${placedCount} of ${members.length} members fit (${why})` };
          break;
        }
        this.emitPlaced(job, subtask, result.placement);
        placedCount++;
      }
    }
    const journal = this.journal;
    this.journal = undefined;
    if (failure) {
      for (let i = journal.length - 1; i >= 0; i--) journal[i]!();
      this.wait(job.jobId, failure);
      this.reserveFor(job.jobId, `gang ${job.jobId}`, unit, members.length);
      return false;
    }
    return true;
  }

  /** The topology domain (label value) that fits the gang with the least free GPUs left over; members' nodes in order. */
  private chooseDomain(job: JobState, unit: Unit, count: number): NodeState[] | undefined {
    const key = job.gangTopologyKey!;
    const failKey = `${key}|${unit.gpuModels.join(',')}|${count}`;
    if ((this.scratch.domainFailed.get(failKey) ?? Number.POSITIVE_INFINITY) <= unit.gpus) return undefined;
    const chosen = this.findDomain(key, unit, count);
    if (!chosen) this.scratch.domainFailed.set(failKey, Math.min(unit.gpus, this.scratch.domainFailed.get(failKey) ?? Number.POSITIVE_INFINITY));
    return chosen;
  }

  private findDomain(key: string, unit: Unit, count: number): NodeState[] | undefined {
    const { scratch } = this;
    const g = unit.gpus;
    let best: { nodes: NodeState[]; leftover: number; key: string } | undefined;
    for (const model of unit.gpuModels) {
      const pool = scratch.pools.get(model);
      if (!pool || pool.maxGpuCount < g) continue;
      if (this.quotasInPolicy && !quotaVerdict(scratch, this.command.policy, unit.tenantId, model, g * count).ok) continue;
      for (const [value, nodes] of scratch.domains(model, key)) {
        // Cheap test first: enough g-GPU slots in the domain at all?
        let slots = 0;
        for (const node of nodes) if (this.reservationAllows(node.ordinal, unit)) slots += Math.floor(scratch.free[node.ordinal]! / g);
        if (slots < count) continue;
        const free = nodes.map((n) => (this.reservationAllows(n.ordinal, unit) ? scratch.free[n.ordinal]! : 0));
        const chosen: NodeState[] = [];
        for (let i = 0; i < count; i++) {
          let pick = -1;
          for (let j = 0; j < nodes.length; j++) if (free[j]! >= g && (pick < 0 || free[j]! < free[pick]!)) pick = j;
          free[pick]! -= g;
          chosen.push(nodes[pick]!);
        }
        let leftover = 0;
        for (const f of free) leftover += f;
        const domainKey = `${model}\u0000${value}`;
        if (!best || leftover < best.leftover || (leftover === best.leftover && domainKey < best.key)) best = { nodes: chosen, leftover, key: domainKey };
      }
    }
    return best?.nodes;
  }

  private attemptLease(lease: LeaseState): boolean {
    const unit: Unit = { key: lease.leaseId, tenantId: lease.tenantId, classRank: lease.classRank, gpuModels: lease.gpuModels, gpus: lease.gpus, runtimeMs: Number.MAX_SAFE_INTEGER };
    const result = this.placeOne(unit, lease.leaseId, lease.classRank < CLASS_RANK.preemptible);
    if (!result.placement) {
      if (result.waiting && this.explaining) this.wait(lease.leaseId, this.describe(result.waiting, unit));
      if (result.waiting === 'capacity') this.reserveFor(lease.leaseId, `lease ${lease.leaseId}`, unit, 1);
      return false;
    }
    const { node, indices } = result.placement;
    const epoch = ++this.epoch;
    const id = deriveId(lease.eventId, 'granted');
    this.decisions.push({
      type: 'LeaseGranted',
      id,
      causationId: lease.eventId,
      correlationId: lease.leaseId,
      tenantId: lease.tenantId,
      nodeId: node.nodeId,
      command: { kind: 'AttachLease', commandId: id, leaseId: lease.leaseId, tenantId: lease.tenantId, leaseEpoch: epoch, gpuIndices: indices, issuedAt: this.command.now },
      data: {
        leaseId: lease.leaseId,
        tenantId: lease.tenantId,
        projectId: lease.projectId,
        nodeId: node.nodeId,
        gpuModel: node.gpuModel,
        gpus: lease.gpus,
        gpuIndices: indices,
        leaseEpoch: epoch,
        capacityType: lease.capacityType,
        grantedAt: this.command.now,
      },
    });
    this.placements++;
    return true;
  }

  /**
   * EASY backfill: the first entry blocked for capacity gets a reservation at the earliest time
   * enough GPUs free up (from running allocations' declared runtimes); later entries may use
   * those nodes only without delaying it.
   */
  private reserveFor(key: string, label: string, unit: Unit, count: number): void {
    // EASY backfill: one reservation per cycle, for the first entry blocked on capacity.
    if (this.reservationTried) return;
    this.reservationTried = true;
    const { scratch, nowMs } = this;
    const g = unit.gpus;
    // Each node contributes "slot times": the instants at which it can hold one more g-GPU member.
    const times: number[] = [];
    const nodes: Array<{ ordinal: number; free: number; ends: Array<[number, number]> }> = [];
    let slotsNow = 0;
    for (const model of unit.gpuModels) {
      const pool = scratch.pools.get(model);
      if (!pool || pool.maxGpuCount < g) continue;
      for (const node of pool.nodes) {
        if (node.gpuCount < g) continue;
        const free = scratch.free[node.ordinal]!;
        let slots = Math.floor(free / g);
        slotsNow += slots;
        for (let i = 0; i < slots; i++) times.push(nowMs);
        if (slots * g + g > node.gpuCount) {
          if (slots > 0) nodes.push({ ordinal: node.ordinal, free, ends: [] });
          continue;
        }
        const ends: Array<[number, number]> = [];
        for (const allocation of node.allocations) {
          if (scratch.victims.has(allocation)) continue;
          const t = expectedEndMs(allocation, nowMs);
          if (Number.isFinite(t)) ends.push([t, allocation.gpus]);
        }
        for (const placed of scratch.placedInCycle.get(node.ordinal) ?? []) ends.push([placed.endMs, placed.gpus]);
        ends.sort((a, b) => a[0] - b[0]);
        let f = free;
        for (const [t, gpus] of ends) {
          f += gpus;
          while (slots < Math.floor(f / g)) {
            times.push(t);
            slots++;
          }
        }
        if (slots > 0) nodes.push({ ordinal: node.ordinal, free, ends });
      }
    }
    // It fits on free GPUs now (blocked by quota or fair share, not capacity), or never by declared runtimes.
    if (slotsNow >= count || times.length < count) return;
    const sorted = Float64Array.from(times).sort();
    const startAtMs = sorted[count - 1]!;
    // Reserve the best-fit slots at that instant: nodes with the fewest free GPUs then, lowest ordinal first.
    const candidates: Array<{ ordinal: number; freeAt: number }> = [];
    for (const n of nodes) {
      let freeAt = n.free;
      for (const [t, gpus] of n.ends) if (t <= startAtMs) freeAt += gpus;
      if (freeAt >= g) candidates.push({ ordinal: n.ordinal, freeAt });
    }
    candidates.sort((a, b) => a.freeAt - b.freeAt || a.ordinal - b.ordinal);
    const gpusByNode = new Map<number, number>();
    const extraByNode = new Map<number, number>();
    let remaining = count;
    for (const { ordinal, freeAt } of candidates) {
      if (remaining === 0) break;
      const take = Math.min(remaining, Math.floor(freeAt / g));
      remaining -= take;
      gpusByNode.set(ordinal, take * g);
      extraByNode.set(ordinal, freeAt - take * g);
    }
    this.reservation = { entryKey: key, startAtMs, gpusByNode, extraByNode, label };
  }
}

// ---------------------------------------------------------------------------- traversal

interface Cursor {
  queue: TenantQueue | undefined;
  tenantId: string;
  index: number;
  share: number;
  extra?: QueueEntry;
}

function nextEntry(cursor: Cursor): QueueEntry | undefined {
  const entries = cursor.queue?.entries ?? [];
  while (cursor.index < entries.length && !isQueued(entries[cursor.index]!)) cursor.index++;
  const real = entries[cursor.index];
  if (cursor.extra && (!real || compareEntries(cursor.extra, real) <= 0)) {
    const extra = cursor.extra;
    cursor.extra = undefined;
    return extra;
  }
  if (real) cursor.index++;
  return real;
}

/** A hypothetical job (dry-run) as a queue entry: a job state that the fold never saw. */
function hypotheticalEntry(h: HypotheticalJob, nowMs: number): QueueEntry {
  const job: JobState = {
    jobId: h.jobId,
    tenantId: h.tenantId,
    projectId: 'dry-run',
    eventId: deriveId('00000000-0000-7000-8000-000000000000', `dry-run/${h.jobId}`),
    gpuModels: h.gpuModels,
    gpusPerSubtask: h.gpusPerSubtask,
    subtaskCount: h.subtaskCount,
    runtimeMs: h.runtimeMs,
    classRank: CLASS_RANK[h.priorityClass],
    priority: h.priority,
    preemptible: h.preemptible || h.priorityClass === 'preemptible',
    gang: h.gang,
    gangTopologyKey: h.gangTopologyKey,
    capacityType: 'on-demand',
    dependsOn: [],
    submittedAtMs: nowMs,
    sequence: Number.MAX_SAFE_INTEGER,
    subtasks: [],
    pending: [],
    pendingCount: h.subtaskCount,
    runningCount: 0,
    succeeded: 0,
    failed: 0,
    cancelled: 0,
    gpuMsObserved: 0,
  };
  for (let index = 0; index < h.subtaskCount; index++) {
    const subtask: SubtaskState = {
      subtaskId: `${h.jobId}-${index}`,
      job,
      index,
      gpus: h.gpusPerSubtask,
      runtimeMs: h.runtimeMs,
      status: 'pending',
      attempt: 1,
      platformFailures: 0,
      userFailures: 0,
      causeId: deriveId(job.eventId, `subtask/${index}`),
    };
    job.subtasks.push(subtask);
    job.pending.push(subtask);
  }
  return { kind: 'job', job };
}

/** One scheduling cycle: housekeeping decisions, then placements in queue order. Pure. */
export function decide(state: SchedulerState, command: CycleCommand): CycleResult {
  const cycle = new Cycle(state, command);
  cycle.housekeeping();
  const hypothetical = command.hypothetical ? hypotheticalEntry(command.hypothetical, cycle.nowMs) : undefined;
  const hypotheticalRank = hypothetical?.kind === 'job' ? hypothetical.job.classRank : undefined;
  const policy = command.policy;
  for (const rank of [0, 1, 2] as const) {
    if (cycle.full) break;
    const byTenant = state.queues[rank];
    const heap = new MinHeap<Cursor>((a, b) => a.share < b.share || (a.share === b.share && a.tenantId < b.tenantId));
    for (const queue of byTenant.values()) {
      tidyQueue(queue);
      if (queue.entries.length === 0) continue;
      heap.push({ queue, tenantId: queue.tenantId, index: 0, share: dominantShare(cycle.scratch, policy, queue.tenantId) });
    }
    if (hypothetical?.kind === 'job' && hypotheticalRank === rank) {
      const tenantId = hypothetical.job.tenantId;
      const existing = byTenant.get(tenantId);
      if (existing && existing.entries.length > 0) {
        // Attach to that tenant's cursor: rebuild the heap entry with the extra entry.
        const cursors: Cursor[] = [];
        while (heap.size) cursors.push(heap.pop()!);
        for (const c of cursors) {
          if (c.tenantId === tenantId) c.extra = hypothetical;
          heap.push(c);
        }
      } else {
        heap.push({ queue: undefined, tenantId, index: 0, share: dominantShare(cycle.scratch, policy, tenantId), extra: hypothetical });
      }
    }
    let exhausted = false;
    while (heap.size && !cycle.full) {
      const cursor = heap.pop()!;
      const entry = nextEntry(cursor);
      if (!entry) continue;
      if (exhausted) {
        // Nothing fits any more in this class: the rest only learns why (when asked).
        if (!command.explain) break;
        cycle.waitFull(entry);
      } else if (cycle.attempt(entry)) cursor.share = dominantShare(cycle.scratch, policy, cursor.tenantId);
      else exhausted = cycle.nothingFits(rank);
      heap.push(cursor);
    }
  }
  const result: CycleResult = { decisions: cycle.decisions, placements: cycle.placements, preemptions: cycle.preemptions, waiting: cycle.waiting, reservation: cycle.reservation };
  if (hypothetical?.kind === 'job') {
    const jobId = hypothetical.job.jobId;
    const placed: NonNullable<CycleResult['hypothetical']>['placed'] = [];
    const preempted: NonNullable<CycleResult['hypothetical']>['preempted'] = [];
    for (const d of cycle.decisions) {
      if (d.type === 'SubtaskPlaced' && d.data.jobId === jobId) placed.push({ index: Number(d.data.subtaskId.slice(jobId.length + 1)), nodeId: d.data.nodeId, gpuModel: d.data.gpuModel, gpuIndices: d.data.gpuIndices });
      if (d.type === 'SubtaskPreempted' && d.data.preemptedByJobId === jobId) preempted.push({ subtaskId: d.data.subtaskId, jobId: d.data.jobId, nodeId: d.data.nodeId });
    }
    result.hypothetical = { placed, preempted, waiting: cycle.waiting.get(jobId) };
  }
  return result;
}

// ---------------------------------------------------------------------------- feasibility & explain

export interface FeasibilityRequest {
  gpuModels: string[];
  gpusPerSubtask: number;
  subtaskCount: number;
  gang?: boolean;
  gangTopologyKey?: string;
  /** The tenant asking: its dependencies resolve only among its own jobs (without one, none resolves). */
  tenantId?: string;
  dependsOn?: Array<{ jobId: string }>;
}

/**
 * Whether any node could ever run the job (not whether it fits now): models the fleet knows,
 * GPUs per sub-task within a node of an allowed model, a gang no larger than the fleet.
 */
export function feasibility(state: SchedulerState, request: FeasibilityRequest): { feasible: boolean; reason?: string; field?: string } {
  if (!Number.isInteger(request.gpusPerSubtask) || request.gpusPerSubtask <= 0) return { feasible: false, field: 'gpusPerSubtask', reason: 'GPUs per sub-task must be a positive integer' };
  if (!Number.isInteger(request.subtaskCount) || request.subtaskCount <= 0) return { feasible: false, field: 'subtaskCount', reason: 'the sub-task count must be a positive integer' };
  const models = new Map<string, NodeState[]>();
  for (const node of state.nodeList) {
    const list = models.get(node.gpuModel) ?? [];
    list.push(node);
    models.set(node.gpuModel, list);
  }
  const known = request.gpuModels.filter((m) => models.has(m));
  if (known.length === 0) {
    return { feasible: false, field: 'gpuModels', reason: `unknown GPU model ${request.gpuModels.join(', ')}: the fleet has ${[...models.keys()].sort().join(', ') || 'no nodes'}` };
  }
  let largest = 0;
  for (const m of known) for (const n of models.get(m)!) if (n.gpuCount > largest) largest = n.gpuCount;
  if (request.gpusPerSubtask > largest) {
    return { feasible: false, field: 'gpusPerSubtask', reason: `${request.gpusPerSubtask} GPUs per sub-task, but the largest ${known.join(' / ')} node has ${largest}` };
  }
  if (request.gang) {
    const slotsByDomain = new Map<string, number>();
    let slots = 0;
    for (const m of known) {
      for (const n of models.get(m)!) {
        const s = Math.floor(n.gpuCount / request.gpusPerSubtask);
        slots += s;
        if (request.gangTopologyKey) {
          const value = n.labels[request.gangTopologyKey];
          if (value === undefined) continue;
          const key = `${m}\u0000${value}`;
          slotsByDomain.set(key, (slotsByDomain.get(key) ?? 0) + s);
        }
      }
    }
    const available = request.gangTopologyKey ? Math.max(0, ...slotsByDomain.values()) : slots;
    if (request.subtaskCount > available) {
      const where = request.gangTopologyKey ? `one ${request.gangTopologyKey} domain` : 'the fleet';
      return { feasible: false, field: 'subtaskCount', reason: `a gang of ${request.subtaskCount} × ${request.gpusPerSubtask} GPUs is larger than ${where} (${available} such slots)` };
    }
  }
  for (const dependency of request.dependsOn ?? []) {
    // Another tenant's job, live or completed, is unknown to this one.
    const known = request.tenantId !== undefined && (state.jobs.get(dependency.jobId)?.tenantId === request.tenantId || completedOutcome(state, request.tenantId, dependency.jobId) !== undefined);
    if (!known) return { feasible: false, field: 'dependsOn', reason: `depends on unknown job ${dependency.jobId}` };
  }
  return { feasible: true };
}

export interface Explanation {
  state: 'queued' | 'running' | 'completed' | 'unknown';
  waiting?: string;
  code?: Waiting['code'];
  queuePosition?: number;
  pendingSubtasks?: number;
  runningSubtasks?: number;
  reservation?: { startAt: string; holder: boolean };
}

/**
 * Why a job waits and where it stands: position counts queued entries ahead of it in class order,
 * then job priority, then submit time (the order fair share interleaves tenants within).
 */
export function explain(state: SchedulerState, jobId: string, tenantId: string, lastWaiting: Map<string, Waiting>, reservation?: Reservation): Explanation {
  const job = state.jobs.get(jobId);
  if (!job || job.tenantId !== tenantId) {
    return completedOutcome(state, tenantId, jobId) ? { state: 'completed', waiting: undefined } : { state: 'unknown' };
  }
  const base = { pendingSubtasks: job.pendingCount, runningSubtasks: job.runningCount };
  if (job.pendingCount === 0) return { state: job.runningCount > 0 ? 'running' : 'queued', ...base };
  const self: QueueEntry = { kind: 'job', job };
  let ahead = 0;
  for (let rank = 0; rank < job.classRank; rank++) for (const q of state.queues[rank]!.values()) for (const e of q.entries) if (isQueued(e)) ahead++;
  for (const q of state.queues[job.classRank].values()) for (const e of q.entries) if (isQueued(e) && e !== self && !(e.kind === 'job' && e.job === job) && compareEntries(e, self) < 0) ahead++;
  const waiting = lastWaiting.get(jobId);
  const dependencies = job.dependsOn.length ? dependencyState(state, job) : { ready: true as const };
  const reason = !dependencies.ready ? { code: 'dependency' as const, reason: dependencies.reason } : waiting;
  return {
    state: 'queued',
    ...base,
    queuePosition: ahead + 1,
    ...(reason ? { waiting: reason.reason, code: reason.code } : { waiting: 'not yet considered by a scheduling cycle' }),
    ...(reservation ? { reservation: { startAt: new Date(reservation.startAtMs).toISOString(), holder: reservation.entryKey === jobId } } : {}),
  };
}

/** Free GPUs stranded on partly used nodes, as a fraction of all free GPUs (0 = perfectly packed). */
export function fragmentation(state: SchedulerState): { freeGpus: number; strandedGpus: number; ratio: number } {
  let free = 0;
  let stranded = 0;
  for (const node of state.nodeList) {
    if (node.status !== 'ready') continue;
    free += node.freeGpus;
    if (node.freeGpus > 0 && node.freeGpus < node.gpuCount) stranded += node.freeGpus;
  }
  return { freeGpus: free, strandedGpus: stranded, ratio: free === 0 ? 0 : stranded / free };
}

/** Free GPUs per model on ready nodes, right now. */
export function freeByModel(state: SchedulerState): Record<string, { freeGpus: number; totalGpus: number; nodes: number }> {
  const out: Record<string, { freeGpus: number; totalGpus: number; nodes: number }> = {};
  for (const node of [...state.nodeList].sort((a, b) => (a.gpuModel < b.gpuModel ? -1 : a.gpuModel > b.gpuModel ? 1 : 0))) {
    const entry = (out[node.gpuModel] ??= { freeGpus: 0, totalGpus: 0, nodes: 0 });
    if (node.status === 'lost') continue;
    entry.nodes++;
    entry.totalGpus += node.gpuCount;
    if (node.status === 'ready') entry.freeGpus += node.freeGpus;
  }
  return out;
}
