import type { ClassRank, QueueEntry, SchedulerState, TenantQueue } from './scheduler.state';

/**
 * The queues: one per priority class and tenant, in queue order. The fold appends and marks
 * them; the cycle tidies a queue (sort, compact) just before it reads it.
 */

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

export function enqueue(state: SchedulerState, entry: QueueEntry, classRank: ClassRank, tenantId: string): void {
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

export function markQueueDirty(state: SchedulerState, classRank: ClassRank, tenantId: string): void {
  const queue = state.queues[classRank].get(tenantId);
  if (queue) queue.dirty = true;
}
