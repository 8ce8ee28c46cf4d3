import type { Cycle, Unit } from './cycle';
import type { Allocation } from './scheduler.state';

/**
 * EASY backfill: the first entry blocked on capacity in a cycle gets a reservation at the
 * earliest instant enough GPUs free up (from running allocations' declared runtimes); later
 * entries may use the reserved nodes only if they end before it starts, or with the GPUs it
 * leaves over.
 */

function expectedEndMs(allocation: Allocation, nowMs: number): number {
  if (allocation.runtimeMs === undefined) return Number.POSITIVE_INFINITY;
  return Math.max(nowMs, (allocation.startedAtMs ?? allocation.placedAtMs) + allocation.runtimeMs);
}

/** Whether a unit ends after the reservation's start (then it may use only GPUs the reservation leaves over). */
export function endsAfterReservation(c: Cycle, unit: Unit): boolean {
  const reservation = c.reservation;
  return reservation !== undefined && reservation.entryKey !== unit.key && c.nowMs + unit.runtimeMs > reservation.startAtMs;
}

/** EASY backfill: a unit may use a reserved node only if it ends before the reservation starts or uses GPUs the reservation leaves over. */
export function reservationAllows(c: Cycle, ordinal: number, unit: Unit): boolean {
  const reservation = c.reservation;
  if (!reservation || reservation.entryKey === unit.key) return true;
  const extra = reservation.extraByNode.get(ordinal);
  if (extra === undefined) return true;
  if (c.nowMs + unit.runtimeMs <= reservation.startAtMs) return true;
  return extra >= unit.gpus;
}

export function consumeReservation(c: Cycle, ordinal: number, unit: Unit): void {
  const reservation = c.reservation;
  if (!reservation || reservation.entryKey === unit.key) return;
  const extra = reservation.extraByNode.get(ordinal);
  if (extra === undefined || c.nowMs + unit.runtimeMs <= reservation.startAtMs) return;
  reservation.extraByNode.set(ordinal, extra - unit.gpus);
}

/**
 * EASY backfill: the first entry blocked for capacity gets a reservation at the earliest time
 * enough GPUs free up (from running allocations' declared runtimes); later entries may use
 * those nodes only without delaying it.
 */
export function reserveFor(c: Cycle, key: string, label: string, unit: Unit, count: number): void {
  // EASY backfill: one reservation per cycle, for the first entry blocked on capacity.
  if (c.reservationTried) return;
  c.reservationTried = true;
  const { scratch, nowMs } = c;
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
  c.reservation = { entryKey: key, startAtMs, gpusByNode, extraByNode, label };
}
