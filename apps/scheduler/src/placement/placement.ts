import { endsAfterReservation, consumeReservation, reservationAllows, reserveFor } from './backfill';
import { deriveId } from '@fastgpu/contracts';
import type { Cycle, Placement, Unit } from './cycle';
import { runSubtaskCommand, attachLeaseCommand } from './node-commands';
import type { Waiting } from './placement.types';
import { fitByPreemption } from './preemption';
import { quotaVerdict } from './quotas';
import { CLASS_RANK, type ClassRank, type JobState, type LeaseState, type QueueEntry, type SubtaskState } from './scheduler.state';

/**
 * Placement of one unit: best fit on free GPUs (allowed models in fallback order, the node
 * whose free count is the smallest that fits, within quotas and the backfill reservation),
 * else preemption; and the attempts of a job (sub-task by sub-task, within the cycle's budget)
 * and of a lease. Waiting reasons are written only when the cycle explains.
 */

export function unitOf(c: Cycle, job: JobState, subtask: SubtaskState): Unit {
  return { key: job.jobId, tenantId: job.tenantId, classRank: job.classRank, gpuModels: job.gpuModels, gpus: subtask.gpus, runtimeMs: subtask.runtimeMs };
}

/** Records, for an entry not tried, that the fleet has no room left (explanations only). */
export function waitFull(c: Cycle, entry: QueueEntry): void {
  const key = entry.kind === 'job' ? entry.job.jobId : entry.lease.leaseId;
  c.wait(key, { code: 'capacity', reason: 'no capacity: every allowed GPU is in use and nothing can be preempted for this class' });
}

/** Finds and takes GPUs for one unit: free best fit first, then preemption. */
export function placeOne(c: Cycle, unit: Unit, byJobId: string, allowPreemption: boolean): { placement?: Placement; waiting?: Waiting['code'] } {
  const quotaReasons: string[] | undefined = c.quotasInPolicy ? [] : undefined;
  let placement = fitFree(c, unit, quotaReasons);
  if (!placement && allowPreemption) placement = fitByPreemption(c, unit, byJobId);
  if (!placement) {
    if (quotaReasons && quotaReasons.length === unit.gpuModels.length) {
      c.lastQuotaReason = quotaReasons.join('; ');
      return { waiting: 'quota' };
    }
    return { waiting: c.reservation && c.reservation.entryKey !== unit.key && anyFreeFit(c, unit) ? 'reserved' : 'capacity' };
  }
  const node = placement.node;
  consumeReservation(c, node.ordinal, unit);
  placement.indices = c.scratch.take(node, unit.gpus, c.nowMs + unit.runtimeMs);
  c.scratch.addUsage(unit.tenantId, node.gpuModel, unit.gpus);
  if (c.journal) {
    const indices = placement.indices;
    c.journal.push(() => {
      c.scratch.untake(node, indices);
      c.scratch.addUsage(unit.tenantId, node.gpuModel, -unit.gpus);
    });
  }
  return { placement };
}

/** Best fit on free GPUs: the node of the first allowed model whose free count is the smallest that fits. */
export function fitFree(c: Cycle, unit: Unit, quotaReasons: string[] | undefined): Placement | undefined {
  const { scratch } = c;
  const long = endsAfterReservation(c, unit);
  for (const model of unit.gpuModels) {
    const pool = scratch.pools.get(model);
    if (!pool || pool.maxGpuCount < unit.gpus) continue;
    if (c.quotasInPolicy) {
      const quota = quotaVerdict(scratch, c.command.policy, unit.tenantId, model, unit.gpus);
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
        if (long && !reservationAllows(c, ordinal, unit)) {
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

/**
 * A quick "cannot place now": fewer free blocks of the size than needed (from the buckets, no
 * node scan), and preemption already failed for this size and class (or is not allowed).
 */
export function hopeless(c: Cycle, unit: Unit, count: number, allowPreemption: boolean): boolean {
  if (c.quotasInPolicy) return false;
  let slots = 0;
  for (const model of unit.gpuModels) {
    const pool = c.scratch.pools.get(model);
    if (!pool || pool.maxGpuCount < unit.gpus) continue;
    if (pool.minFailedGpus > unit.gpus) for (let f = unit.gpus; f <= pool.maxGpuCount; f++) slots += pool.buckets[f]!.length * Math.floor(f / unit.gpus);
    if (slots >= count) return false;
    if (allowPreemption && unit.classRank < CLASS_RANK.preemptible && pool.preemptFailedGpus[unit.classRank] > unit.gpus) return false;
  }
  return true;
}

/** The waiting reason for a code, written only when explanations are asked for. */
export function describe(c: Cycle, code: Waiting['code'], unit: Unit): Waiting {
  switch (code) {
    case 'quota':
      return { code, reason: c.lastQuotaReason ?? 'quota' };
    case 'reserved': {
      const r = c.reservation!;
      return { code, reason: `GPUs that fit are reserved for ${r.label}, which starts at ${new Date(r.startAtMs).toISOString()}` };
    }
    default:
      return { code, reason: `no capacity: needs ${unit.gpus} GPUs on one node of ${unit.gpuModels.join(' / ')}; largest free block is ${largestFree(c, unit.gpuModels)}` };
  }
}

export function anyFreeFit(c: Cycle, unit: Unit): boolean {
  for (const model of unit.gpuModels) {
    const pool = c.scratch.pools.get(model);
    if (!pool) continue;
    for (let f = unit.gpus; f <= pool.maxGpuCount; f++) if (pool.buckets[f]!.length > 0) return true;
  }
  return false;
}

export function largestFree(c: Cycle, models: string[]): number {
  let largest = 0;
  for (const model of models) {
    const pool = c.scratch.pools.get(model);
    if (!pool) continue;
    for (let f = pool.maxGpuCount; f > largest; f--) if (pool.buckets[f]!.length > 0) largest = f;
  }
  return largest;
}

/**
 * Nothing more can be placed in this class: no pool has a free GPU and none can make room by
 * preemption for this class. The traversal stops (explanations still get a reason).
 */
export function nothingFits(c: Cycle, classRank: ClassRank): boolean {
  if (c.quotasInPolicy) return false;
  for (const pool of c.scratch.pools.values()) {
    if (pool.nodes.length === 0) continue;
    // A 1-GPU unit found no free GPU here even ignoring the reservation, or there is none at all.
    if (pool.minFailedGpus > 1) for (let f = 1; f <= pool.maxGpuCount; f++) if (pool.buckets[f]!.length > 0) return false;
    if (classRank === CLASS_RANK.preemptible) continue;
    if (pool.preemptFailedGpus[classRank] > 1 && c.scratch.preemptible(pool.model).some((n) => c.scratch.preemptibleGpus(n.ordinal, classRank) > 0)) return false;
  }
  return true;
}

export function emitPlaced(c: Cycle, job: JobState, subtask: SubtaskState, placement: Placement): void {
  const epoch = ++c.epoch;
  const id = deriveId(subtask.causeId, `placed/${subtask.attempt}`);
  const node = placement.node;
  c.decisions.push({
    type: 'SubtaskPlaced',
    id,
    causationId: subtask.causeId,
    correlationId: job.jobId,
    tenantId: job.tenantId,
    nodeId: node.nodeId,
    command: runSubtaskCommand(id, subtask, { attempt: subtask.attempt, leaseEpoch: epoch, gpuIndices: placement.indices }, c.command.now),
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
      placedAt: c.command.now,
    },
  });
  c.placements++;
  if (c.journal) {
    const undoLength = c.decisions.length - 1;
    c.journal.push(() => {
      c.decisions.length = undoLength;
      c.placements--;
      c.epoch--;
    });
  }
}

export function attemptJob(c: Cycle, job: JobState): boolean {
  let placed = 0;
  let waiting: Waiting['code'] | undefined;
  let unit: Unit | undefined;
  const first = job.pending.find((s) => s.status === 'pending');
  if (first) {
    const probe = unitOf(c, job, first);
    if (hopeless(c, probe, 1, job.classRank < CLASS_RANK.preemptible)) {
      reserveFor(c, job.jobId, `job ${job.jobId}`, probe, 1);
      if (c.explaining) c.wait(job.jobId, describe(c, 'capacity', probe));
      return false;
    }
  }
  for (const subtask of job.pending) {
    if (subtask.status !== 'pending') continue;
    if (c.full) {
      waiting = 'fairShare';
      break;
    }
    unit = unitOf(c, job, subtask);
    const result = placeOne(c, unit, job.jobId, job.classRank < CLASS_RANK.preemptible || reclaimPossible(c, unit));
    if (!result.placement) {
      waiting = result.waiting;
      if (waiting === 'capacity') reserveFor(c, job.jobId, `job ${job.jobId}`, unit, 1);
      break;
    }
    emitPlaced(c, job, subtask, result.placement);
    placed++;
  }
  if (waiting && unit && c.explaining) {
    const described = waiting === 'fairShare' ? { code: waiting, reason: 'cycle budget reached; placed in the next cycle' } : describe(c, waiting, unit);
    c.wait(job.jobId, placed ? { ...described, reason: `${placed} placed this cycle; rest: ${described.reason}` } : described);
  }
  return placed > 0;
}

export function reclaimPossible(c: Cycle, unit: Unit): boolean {
  if (!c.quotasInPolicy) return false;
  const quotas = c.command.policy.tenants[unit.tenantId]?.quotas;
  return quotas !== undefined && unit.gpuModels.some((m) => quotas[m] !== undefined);
}

export function attemptLease(c: Cycle, lease: LeaseState): boolean {
  const unit: Unit = { key: lease.leaseId, tenantId: lease.tenantId, classRank: lease.classRank, gpuModels: lease.gpuModels, gpus: lease.gpus, runtimeMs: Number.MAX_SAFE_INTEGER };
  const result = placeOne(c, unit, lease.leaseId, lease.classRank < CLASS_RANK.preemptible);
  if (!result.placement) {
    if (result.waiting && c.explaining) c.wait(lease.leaseId, describe(c, result.waiting, unit));
    if (result.waiting === 'capacity') reserveFor(c, lease.leaseId, `lease ${lease.leaseId}`, unit, 1);
    return false;
  }
  const { node, indices } = result.placement;
  const epoch = ++c.epoch;
  const id = deriveId(lease.eventId, 'granted');
  c.decisions.push({
    type: 'LeaseGranted',
    id,
    causationId: lease.eventId,
    correlationId: lease.leaseId,
    tenantId: lease.tenantId,
    nodeId: node.nodeId,
    command: attachLeaseCommand(id, lease, { leaseEpoch: epoch, gpuIndices: indices }, c.command.now),
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
      grantedAt: c.command.now,
    },
  });
  c.placements++;
  return true;
}
