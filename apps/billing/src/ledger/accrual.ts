import { allocationKeyOf, externalGpusRefusal, externalTenantRefusal, externalTimeVerdict, judgeNodeReport, reportTimeMs, streamTimeHorizon, type AllocationKind, type DomainEvent, type StoredEvent } from '@fastgpu/contracts';
import { instantMs, periodOf, splitAtPeriods } from '@fastgpu/money';

/**
 * Accrual at period close, pure: which allocations are open, what a period close cuts of them,
 * and what their stop later bills. No clock, no I/O; every instant is an event time.
 *
 * Billing learns that an allocation is open from the same events metering folds, judged by the
 * rules metering judges them by, which live once in libs/contracts: a sub-task attempt is open once
 * it is placed and started by a node report the report rule accepts (`judgeNodeReport`: the placed
 * node, on its own subject, under the placement's attempt and lease epoch), its start the report's
 * time bounded by the server's (`reportTimeMs`: not before the placement, not after the receipt
 * plus the tolerance); a lease from its grant; an external allocation from its start, when the
 * external-usage rule accepts it (external-usage.ts: subject and envelope name its tenant, GPU count
 * within bounds, producer time within the lateness horizon of its stream time). A late start is
 * never accrued (metering records it as late usage for review). Any accepted end report, a late
 * external stop, the attempt's requeue or the node's loss makes it no longer open: its usage
 * follows from metering. The
 * UsageRecorded
 * (matched by sub-task and attempt, lease, or — external — by the start event's sequence among its
 * source sequences) closes it for good.
 *
 * A close of period P (`BillingPeriodClosed`) cuts every open allocation of the tenant that started
 * before P's end at that end: [from, end(P)) where `from` is where the last cut stopped (else the
 * start), split at period boundaries onto each period's invoice. Cut pieces bill exactly their GPU
 * time (no minimum, no rounding: those belong to the piece holding the allocation's end). When the
 * stop arrives, it bills only what the cuts did not: [start, end) less the accrued range, with the
 * allocation's rounding and minimum on its last piece (a zero-length piece at the end when the
 * accrual already reached it).
 */
export { AllocationKind, externalKey, leaseKey, subtaskKey } from '@fastgpu/contracts';

/**
 * The allocation end of an accrued piece: not known yet. A piece whose allocation ends later than
 * the piece bills exactly its own time (libs/money puts the rounding where the allocation ends).
 */
export const OPEN_ALLOCATION_END_MS = Number.MAX_SAFE_INTEGER;

export interface OpenAllocation {
  allocationKey: string;
  kind: AllocationKind;
  tenantId: string | null;
  projectId: string | null;
  gpuModel: string | null;
  capacityType: string | null;
  gpus: number | null;
  nodeId: string | null;
  /** The placement's lease epoch (reports under another epoch are stale); null before placement. */
  leaseEpoch: number | null;
  placedMs: number | null;
  startMs: number | null;
  startEpoch: number | null;
  startSequence: number | null;
  endEpoch: number | null;
  ended: boolean;
  /** The range cut by period closes so far: [accruedFromMs, accruedUntilMs). */
  accruedFromMs: number | null;
  accruedUntilMs: number | null;
}

export function emptyAllocation(allocationKey: string, kind: AllocationKind): OpenAllocation {
  return {
    allocationKey,
    kind,
    tenantId: null,
    projectId: null,
    gpuModel: null,
    capacityType: null,
    gpus: null,
    nodeId: null,
    leaseEpoch: null,
    placedMs: null,
    startMs: null,
    startEpoch: null,
    startSequence: null,
    endEpoch: null,
    ended: false,
    accruedFromMs: null,
    accruedUntilMs: null,
  };
}

/** The allocation an event is about (its key and kind), or null for events that touch none. */
export function allocationOf(stored: StoredEvent): { key: string; kind: AllocationKind } | null {
  return allocationKeyOf(stored.event);
}

/** A node report's time on the server's clock (libs/contracts `reportTimeMs`), bounded by the placement when it is known. */
function reportedMs(a: OpenAllocation, stored: StoredEvent, reportedAtMs: number): number {
  return reportTimeMs(reportedAtMs, { placedAtMs: a.placedMs, receivedAtMs: stored.receivedAtMs });
}

/**
 * Whether a node report counts, by the shared report rule (libs/contracts `judgeNodeReport`):
 * against the placement once known; before it, against the node of the reports already waiting
 * (the placement judges them again when it comes, in `place`).
 */
function reportAccepted(a: OpenAllocation, stored: StoredEvent, d: DomainEvent<'SubtaskStarted' | 'SubtaskCompleted' | 'SubtaskFailed'>['data']): boolean {
  const placement = { nodeId: a.nodeId ?? d.nodeId, subtaskId: d.subtaskId, attempt: d.attempt, leaseEpoch: a.leaseEpoch ?? d.leaseEpoch };
  return judgeNodeReport(placement, { ...d, subject: stored.subject }).ok;
}

/**
 * Why the external-usage rule (libs/contracts external-usage.ts) refuses an external event, or
 * null; `late` when its producer time is beyond the lateness horizon of its stream time (kept by
 * metering for review: a late start is never accrued, a late stop still ends the allocation).
 */
export function externalRefusal(stored: StoredEvent, atMs: number): string | null {
  const { event } = stored;
  if (event.type !== 'ExternalAllocationStarted' && event.type !== 'ExternalAllocationStopped') return null;
  const refusal = externalTenantRefusal(stored.subject, event.data.tenantId, event.tenantid) ?? (event.type === 'ExternalAllocationStarted' ? externalGpusRefusal(event.data.gpus) : null);
  if (refusal !== null) return refusal;
  const verdict = externalTimeVerdict(atMs, stored.receivedAtMs, streamTimeHorizon());
  return verdict === 'within' ? null : verdict;
}

function place(a: OpenAllocation, placement: Partial<OpenAllocation>): void {
  if (a.leaseEpoch !== null || a.placedMs !== null) return;
  const reporterNodeId = a.kind === 'subtask' ? a.nodeId : null;
  Object.assign(a, placement);
  // Reports that waited for the placement came from one node; from another than the placed one, they do not count.
  if (reporterNodeId !== null && reporterNodeId !== a.nodeId) {
    a.startMs = a.startEpoch = a.startSequence = a.endEpoch = null;
    a.ended = false;
  }
  // Reports that came before their placement are judged now, as if in order.
  if (a.leaseEpoch !== null && a.startEpoch !== null && a.startEpoch !== a.leaseEpoch) a.startMs = a.startEpoch = a.startSequence = null;
  if (a.leaseEpoch !== null && a.endEpoch !== null && a.endEpoch !== a.leaseEpoch) {
    a.endEpoch = null;
    a.ended = false;
  }
  if (a.placedMs !== null && a.startMs !== null && a.startMs < a.placedMs) a.startMs = a.placedMs;
}

function start(a: OpenAllocation, stored: StoredEvent, atMs: number, epoch: number | null): void {
  if (a.startSequence !== null) return;
  if (epoch !== null && a.leaseEpoch !== null && epoch !== a.leaseEpoch) return;
  a.startMs = atMs;
  a.startEpoch = epoch;
  a.startSequence = stored.sequence;
}

function end(a: OpenAllocation, epoch: number | null): void {
  if (a.ended) return;
  if (epoch !== null && a.leaseEpoch !== null && epoch !== a.leaseEpoch) return;
  a.ended = true;
  a.endEpoch = epoch;
}

/** Folds one allocation event into the allocation it is about (a copy; `current` is not changed). */
export function evolveAllocation(current: OpenAllocation, stored: StoredEvent): OpenAllocation {
  const a: OpenAllocation = { ...current };
  const { event } = stored;
  const identify = (d: { tenantId: string; nodeId: string }) => {
    if (a.tenantId === null) a.tenantId = d.tenantId;
    if (a.nodeId === null) a.nodeId = d.nodeId;
  };
  switch (event.type) {
    case 'SubtaskPlaced': {
      const d = event.data;
      place(a, { tenantId: d.tenantId, projectId: d.projectId, gpuModel: d.gpuModel, gpus: d.gpus, capacityType: d.capacityType, nodeId: d.nodeId, leaseEpoch: d.leaseEpoch, placedMs: instantMs(d.placedAt) });
      return a;
    }
    case 'SubtaskStarted':
      if (!reportAccepted(a, stored, event.data)) return current;
      identify(event.data);
      start(a, stored, reportedMs(a, stored, instantMs(event.data.startedAt)), event.data.leaseEpoch);
      return a;
    case 'SubtaskCompleted':
    case 'SubtaskFailed':
      if (!reportAccepted(a, stored, event.data)) return current;
      identify(event.data);
      end(a, event.data.leaseEpoch);
      return a;
    case 'SubtaskPreempted':
      identify(event.data);
      end(a, event.data.leaseEpoch);
      return a;
    case 'SubtaskRequeued':
      // The scheduler requeued the attempt (its agent restarted, say): metering ends it there too.
      if (a.tenantId === null) a.tenantId = event.data.tenantId;
      end(a, null);
      return a;
    case 'LeaseGranted': {
      const d = event.data;
      const grantedMs = instantMs(d.grantedAt);
      if (a.placedMs !== null) return a;
      place(a, { tenantId: d.tenantId, projectId: d.projectId, gpuModel: d.gpuModel, gpus: d.gpus, capacityType: d.capacityType, nodeId: d.nodeId, leaseEpoch: d.leaseEpoch, placedMs: grantedMs });
      start(a, stored, grantedMs, d.leaseEpoch);
      return a;
    }
    case 'LeaseReleased':
      if (a.tenantId === null) a.tenantId = event.data.tenantId;
      end(a, event.data.leaseEpoch);
      return a;
    case 'ExternalAllocationStarted': {
      const d = event.data;
      const atMs = instantMs(d.startedAt);
      if (externalRefusal(stored, atMs) !== null || a.placedMs !== null) return a;
      place(a, { tenantId: d.tenantId, projectId: d.projectId, gpuModel: d.gpuModel, gpus: d.gpus, capacityType: d.capacityType, placedMs: atMs });
      start(a, stored, atMs, null);
      return a;
    }
    case 'ExternalAllocationStopped': {
      const refusal = externalRefusal(stored, instantMs(event.data.stoppedAt));
      if (refusal !== null && refusal !== 'late') return a;
      if (a.tenantId === null) a.tenantId = event.data.tenantId;
      end(a, null);
      return a;
    }
    default:
      return a;
  }
}

/** A node's loss ends every allocation on it that is not external (metering ends them at the last heartbeat). */
export function loseNode(a: OpenAllocation): OpenAllocation {
  return a.kind === 'external' || a.ended ? a : { ...a, ended: true };
}

/** Whether the allocation is running as far as the log says: placed, started, not ended. */
export function isRunning(a: OpenAllocation): boolean {
  return !a.ended && a.tenantId !== null && a.gpus !== null && a.gpuModel !== null && a.capacityType !== null && a.projectId !== null && a.startMs !== null;
}

/** What a close at `periodEndMs` cuts of an allocation: [from, periodEnd), or null when nothing. */
export function accrualRange(a: OpenAllocation, periodEndMs: number): { fromMs: number; toMs: number } | null {
  if (!isRunning(a)) return null;
  const fromMs = Math.max(a.startMs!, a.accruedUntilMs ?? a.startMs!);
  return fromMs < periodEndMs ? { fromMs, toMs: periodEndMs } : null;
}

export interface Range {
  startMs: number;
  endMs: number;
}

/**
 * What the stop of an allocation [startMs, endMs) still bills when [accruedFromMs, accruedUntilMs)
 * was already cut at period closes: the rest, in time order. `overrunMs` is accrued time outside
 * the allocation (it ended before the accrual's end): billed already, for finance to review.
 */
export function remainderRanges(startMs: number, endMs: number, accrued: Range | null): { ranges: Range[]; overrunMs: number } {
  if (endMs <= startMs) return { ranges: [], overrunMs: accrued ? accrued.endMs - accrued.startMs : 0 };
  if (!accrued || accrued.endMs <= accrued.startMs) return { ranges: [{ startMs, endMs }], overrunMs: 0 };
  const ranges: Range[] = [];
  if (startMs < Math.min(accrued.startMs, endMs)) ranges.push({ startMs, endMs: Math.min(accrued.startMs, endMs) });
  if (Math.max(accrued.endMs, startMs) < endMs) ranges.push({ startMs: Math.max(accrued.endMs, startMs), endMs });
  const overlapMs = Math.max(0, Math.min(accrued.endMs, endMs) - Math.max(accrued.startMs, startMs));
  return { ranges, overrunMs: accrued.endMs - accrued.startMs - overlapMs };
}

export interface UsagePieceRange {
  period: string;
  startMs: number;
  endMs: number;
}

/**
 * The pieces a stop bills, split at period boundaries: the remainder ranges, and — when the
 * accrual already reached the allocation's end — a zero-length piece at the end that carries the
 * allocation's rounding and minimum (in the period of its last instant). Without an accrual this
 * is exactly `splitAtPeriods(start, end)`.
 */
export function stopPieces(startMs: number, endMs: number, accrued: Range | null, timeZone: string): { pieces: UsagePieceRange[]; overrunMs: number } {
  const { ranges, overrunMs } = remainderRanges(startMs, endMs, accrued);
  const pieces = ranges.flatMap((r) => splitAtPeriods(r.startMs, r.endMs, timeZone));
  const last = pieces[pieces.length - 1];
  if (endMs > startMs && (!last || last.endMs !== endMs)) pieces.push({ period: periodOf(endMs - 1, timeZone), startMs: endMs, endMs });
  return { pieces, overrunMs };
}
