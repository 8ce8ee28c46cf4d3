import type { StoredEvent } from '@fastgpu/contracts';
import type { Decider } from '@fastgpu/eventsourcing';
import { Cycle } from './cycle';
import { hypotheticalEntry, hypotheticalOutcome } from './dry-run';
import { dominantShare } from './fair-share';
import { attemptGang } from './gangs';
import { dependencyState } from './dependencies';
import { housekeeping } from './housekeeping';
import { MinHeap } from './min-heap';
import { attemptJob, attemptLease, nothingFits, waitFull } from './placement';
import type { CycleCommand, CycleResult, Decision } from './placement.types';
import { compareEntries, isQueued, tidyQueue } from './queues';
import { evolve } from './scheduler.evolve';
import { initialState, type QueueEntry, type SchedulerState, type TenantQueue } from './scheduler.state';

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
 *
 * Each of those rules has its file in this folder (docs/scheduler.md lists them); this one holds
 * only the order in which the queues are visited.
 */

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

/** Tries an entry; true when something was placed. */
function attempt(c: Cycle, entry: QueueEntry): boolean {
  if (entry.kind === 'lease') return attemptLease(c, entry.lease);
  const job = entry.job;
  if (job.dependsOn.length) {
    const dependencies = dependencyState(c.state, job);
    if (!dependencies.ready) {
      c.wait(job.jobId, { code: 'dependency', reason: dependencies.reason });
      return false;
    }
  }
  return job.gang ? attemptGang(c, job) : attemptJob(c, job);
}

/** One scheduling cycle: housekeeping decisions, then placements in queue order. Pure. */
export function decide(state: SchedulerState, command: CycleCommand): CycleResult {
  const cycle = new Cycle(state, command);
  housekeeping(cycle);
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
        waitFull(cycle, entry);
      } else if (attempt(cycle, entry)) cursor.share = dominantShare(cycle.scratch, policy, cursor.tenantId);
      else exhausted = nothingFits(cycle, rank);
      heap.push(cursor);
    }
  }
  const result: CycleResult = { decisions: cycle.decisions, placements: cycle.placements, preemptions: cycle.preemptions, waiting: cycle.waiting, reservation: cycle.reservation };
  if (hypothetical?.kind === 'job') result.hypothetical = hypotheticalOutcome(cycle.decisions, cycle.waiting, hypothetical.job.jobId);
  return result;
}

/**
 * The scheduler as the kernel's one Decider type (libs/eventsourcing): a cycle command decides
 * the cycle's events, and the fold reads stored events back (it needs their sequence and
 * subject: expected subject sequences, the subject a node report came on). Unlike a decider of
 * one aggregate, it decides over the whole log, so the engine publishes its decisions itself
 * (per node subject, with the expected sequence) instead of through `handleCommand`; and it calls
 * `decide` above for the rest of a cycle's result (waiting reasons, the reservation, a dry-run's
 * placements). Its evolve mutates the state it is given and returns it (one owner, a large fleet).
 */
export const schedulerDecider: Decider<SchedulerState, CycleCommand, Decision, StoredEvent> = {
  initialState,
  decide: (command, state) => decide(state, command).decisions,
  evolve,
};
