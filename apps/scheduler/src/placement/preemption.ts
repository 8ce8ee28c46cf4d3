import type { Cycle, Placement, Unit } from './cycle';
import { quotaVerdict } from './quotas';
import { CLASS_NAMES, CLASS_RANK, type Allocation, type NodeState } from './scheduler.state';
import { preempt } from './stops';

/**
 * Preemption: making room for a unit by stopping preemptible work of a lower class, or work
 * running on borrowed quota when the unit's tenant is within its own. The node chosen is the
 * one where room costs the fewest preempted GPUs (a gang counts whole: it is stopped whole).
 */

/** Victims on a node that make room for `unit`, cheapest first; undefined if the node cannot make room. */
export function victimsOn(c: Cycle, node: NodeState, unit: Unit, reclaim: boolean): { victims: Allocation[]; gpusFreed: number } | undefined {
  const need = unit.gpus - c.scratch.free[node.ordinal]!;
  if (need <= 0) return { victims: [], gpusFreed: 0 };
  const candidates: Allocation[] = [];
  for (const allocation of node.allocations) {
    if (c.scratch.victims.has(allocation) || (allocation.tenantId === unit.tenantId && !allocation.preemptible)) continue;
    const lowerClass = allocation.preemptible && allocation.classRank > unit.classRank;
    const borrowed = reclaim && allocation.tenantId !== unit.tenantId && allocation.classRank >= unit.classRank && isBorrowing(c, allocation);
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
    if (job?.gang) for (const s of job.subtasks) gpusFreed += s?.allocation && !c.scratch.victims.has(s.allocation) ? s.allocation.gpus : 0;
    else gpusFreed += victim.gpus;
  }
  return { victims, gpusFreed };
}

export function isBorrowing(c: Cycle, allocation: Allocation): boolean {
  const quota = c.command.policy.tenants[allocation.tenantId]?.quotas[allocation.gpuModel];
  return quota !== undefined && c.scratch.usageOf(allocation.tenantId, allocation.gpuModel) > quota.nominal;
}

/** Preemption: the node where making room costs the fewest preempted GPUs; undefined when none can. */
export function fitByPreemption(c: Cycle, unit: Unit, byJobId: string): Placement | undefined {
  const { scratch } = c;
  const policy = c.command.policy;
  for (const model of unit.gpuModels) {
    const pool = scratch.pools.get(model);
    if (!pool || pool.maxGpuCount < unit.gpus) continue;
    let reclaim = false;
    if (c.quotasInPolicy) {
      const quota = quotaVerdict(scratch, policy, unit.tenantId, model, unit.gpus);
      if (!quota.ok) continue;
      // Reclaiming borrowed GPUs is for an owner within its nominal quota.
      reclaim = policy.tenants[unit.tenantId]?.quotas[model] !== undefined && !quota.borrowing;
    }
    if (unit.classRank === CLASS_RANK.preemptible && !reclaim) continue;
    // Victims only become fewer within a cycle: a size that found none finds none again.
    if (reclaim ? (c.reclaimFailed.get(`${model}|${unit.classRank}|${unit.tenantId}`) ?? Number.POSITIVE_INFINITY) <= unit.gpus : pool.preemptFailedGpus[unit.classRank] <= unit.gpus) continue;
    let best: { node: NodeState; victims: Allocation[]; cost: number } | undefined;
    // Without quota reclaim, only nodes whose free plus preemptible GPUs reach the size can make room.
    const candidates = reclaim ? pool.nodes : scratch.preemptible(model);
    for (const node of candidates) {
      if (node.gpuCount < unit.gpus) continue;
      if (!reclaim && scratch.free[node.ordinal]! + scratch.preemptibleGpus(node.ordinal, unit.classRank) < unit.gpus) continue;
      const option = victimsOn(c, node, unit, reclaim);
      if (!option || option.victims.length === 0) continue;
      if (!best || option.gpusFreed < best.cost || (option.gpusFreed === best.cost && option.victims.length < best.victims.length)) best = { node, victims: option.victims, cost: option.gpusFreed };
      // Freeing exactly what is missing with one victim cannot be beaten.
      if (best.cost === unit.gpus - scratch.free[best.node.ordinal]! && best.victims.length === 1) break;
    }
    if (!best) {
      if (reclaim) {
        const key = `${model}|${unit.classRank}|${unit.tenantId}`;
        c.reclaimFailed.set(key, Math.min(unit.gpus, c.reclaimFailed.get(key) ?? Number.POSITIVE_INFINITY));
      } else pool.preemptFailedGpus[unit.classRank] = Math.min(pool.preemptFailedGpus[unit.classRank], unit.gpus);
      continue;
    }
    for (const victim of best.victims) {
      const job = victim.subtask?.job;
      const reason = `${CLASS_NAMES[unit.classRank]} ${unit.key} needs ${unit.gpus} ${model} GPUs${victim.classRank > unit.classRank ? '' : ' (reclaiming borrowed quota)'}`;
      if (job?.gang) {
        for (const s of job.subtasks) if (s?.allocation) preempt(c, s.allocation, reason, byJobId);
      } else {
        preempt(c, victim, reason, byJobId);
      }
    }
    return { node: best.node, indices: [] };
  }
  return undefined;
}
