import { consumeReservation, reservationAllows, reserveFor } from './backfill';
import type { Cycle, Unit } from './cycle';
import { describe, emitPlaced, hopeless, placeOne, unitOf } from './placement';
import type { Waiting } from './placement.types';
import { quotaVerdict } from './quotas';
import { CLASS_RANK, type JobState, type NodeState } from './scheduler.state';

/**
 * Gangs: all members placed in one cycle or none (a member that does not fit takes back what
 * the others took, through the cycle's journal), optionally all within one topology domain
 * (a node label such as an NVLink domain): the domain that fits with the fewest free GPUs left.
 */

export function attemptGang(c: Cycle, job: JobState): boolean {
  const members = job.pending.filter((s) => s.status === 'pending');
  const open = job.subtaskCount - job.succeeded - job.failed - job.cancelled;
  if (members.length === 0 || members.length !== open || job.runningCount > 0) {
    c.wait(job.jobId, { code: 'gang', reason: `gang incomplete: ${members.length} of ${open} members are queued` });
    return false;
  }
  const unit = unitOf(c, job, members[0]!);
  if (hopeless(c, unit, members.length, job.classRank < CLASS_RANK.preemptible)) {
    c.wait(job.jobId, { code: 'gang', reason: `gang incomplete: fewer than ${members.length} free blocks of ${unit.gpus} ${unit.gpuModels.join(' / ')} GPUs, and none can be made by preemption` });
    reserveFor(c, job.jobId, `gang ${job.jobId}`, unit, members.length);
    return false;
  }
  c.journal = [];
  let placedCount = 0;
  let failure: Waiting | undefined;
  if (job.gangTopologyKey) {
    const domain = chooseDomain(c, job, unit, members.length);
    if (!domain) failure = { code: 'gang', reason: `gang incomplete: no ${job.gangTopologyKey} domain has room for ${members.length} × ${unit.gpus} GPUs` };
    else {
      for (let i = 0; i < members.length; i++) {
        const node = domain[i]!;
        const indices = c.scratch.take(node, unit.gpus, c.nowMs + unit.runtimeMs);
        c.scratch.addUsage(unit.tenantId, node.gpuModel, unit.gpus);
        consumeReservation(c, node.ordinal, unit);
        emitPlaced(c, job, members[i]!, { node, indices });
        placedCount++;
      }
    }
  } else {
    for (const subtask of members) {
      const memberUnit = unitOf(c, job, subtask);
      const result = placeOne(c, memberUnit, job.jobId, job.classRank < CLASS_RANK.preemptible);
      if (!result.placement) {
        const why = c.explaining ? describe(c, result.waiting ?? 'capacity', memberUnit).reason : result.waiting;
        failure = { code: 'gang', reason: `gang incomplete: only ${placedCount} of ${members.length} members fit (${why})` };
        break;
      }
      emitPlaced(c, job, subtask, result.placement);
      placedCount++;
    }
  }
  const journal = c.journal;
  c.journal = undefined;
  if (failure) {
    for (let i = journal.length - 1; i >= 0; i--) journal[i]!();
    c.wait(job.jobId, failure);
    reserveFor(c, job.jobId, `gang ${job.jobId}`, unit, members.length);
    return false;
  }
  return true;
}

/** The topology domain (label value) that fits the gang with the least free GPUs left over; members' nodes in order. */
export function chooseDomain(c: Cycle, job: JobState, unit: Unit, count: number): NodeState[] | undefined {
  const key = job.gangTopologyKey!;
  const failKey = `${key}|${unit.gpuModels.join(',')}|${count}`;
  if ((c.scratch.domainFailed.get(failKey) ?? Number.POSITIVE_INFINITY) <= unit.gpus) return undefined;
  const chosen = findDomain(c, key, unit, count);
  if (!chosen) c.scratch.domainFailed.set(failKey, Math.min(unit.gpus, c.scratch.domainFailed.get(failKey) ?? Number.POSITIVE_INFINITY));
  return chosen;
}

export function findDomain(c: Cycle, key: string, unit: Unit, count: number): NodeState[] | undefined {
  const { scratch } = c;
  const g = unit.gpus;
  let best: { nodes: NodeState[]; leftover: number; key: string } | undefined;
  for (const model of unit.gpuModels) {
    const pool = scratch.pools.get(model);
    if (!pool || pool.maxGpuCount < g) continue;
    if (c.quotasInPolicy && !quotaVerdict(scratch, c.command.policy, unit.tenantId, model, g * count).ok) continue;
    for (const [value, nodes] of scratch.domains(model, key)) {
      // Cheap test first: enough g-GPU slots in the domain at all?
      let slots = 0;
      for (const node of nodes) if (reservationAllows(c, node.ordinal, unit)) slots += Math.floor(scratch.free[node.ordinal]! / g);
      if (slots < count) continue;
      const free = nodes.map((n) => (reservationAllows(c, n.ordinal, unit) ? scratch.free[n.ordinal]! : 0));
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
