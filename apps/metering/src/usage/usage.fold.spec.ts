/**
 * Proves the usage fold's interval arithmetic, pure: GPU-ms split exactly at UTC hours (and so
 * at day and month boundaries), zero and one-millisecond and year-long allocations, out-of-order
 * pairs equal to ordered ones, stale lease epochs ignored, duplicates applied once, preemption and
 * node loss ending at the preemption time and the last heartbeat (a cancel is no interruption),
 * node clocks clamped into the lease, and the external horizon: reports beyond it (by the door's
 * verdict, ExternalAllocationReportedLate, or by stream time) close into late usage, in any
 * order, while a late duplicate of an applied report changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { makeEvent, subjectFor, topology, type DomainEvent, type EventData, type EventType, type StoredEvent } from '@fastgpu/contracts';
import { HOUR_MS, DAY_MS } from '@fastgpu/money';
import { foldUsage } from './usage.fold';
import { subtaskKey, type Allocation } from './usage.model';

const topo = topology('unit');
let counter = 0;
function stored<T extends EventType>(type: T, data: EventData<T>, sequence = ++counter): StoredEvent {
  const id = `00000000-0000-7000-8000-${String(sequence).padStart(12, '0')}`;
  const event = makeEvent(type, data, { id, source: 'test', time: '2026-01-01T00:00:00.000Z', tenantId: (data as { tenantId?: string }).tenantId ?? null, correlationId: id }, subjectFor(topo, type, data));
  return { sequence, subject: event.subject, event: event as DomainEvent };
}
const iso = (ms: number) => new Date(ms).toISOString();
const T0 = Date.UTC(2026, 0, 31, 22, 30);

function placed(subtaskId = 'st1', attempt = 1, leaseEpoch = 1, gpus = 8, extra: Partial<EventData<'SubtaskPlaced'>> = {}) {
  return stored('SubtaskPlaced', { jobId: 'job1', tenantId: 'acme', projectId: 'p1', subtaskId, attempt, nodeId: 'n1', gpuModel: 'H100', gpus, gpuIndices: [], leaseEpoch, capacityType: 'on-demand', runtimeMs: 1000, placedAt: iso(T0 - 1000), ...extra });
}
const report = (subtaskId: string, attempt: number, leaseEpoch: number) => ({ jobId: 'job1', tenantId: 'acme', subtaskId, attempt, nodeId: 'n1', leaseEpoch });
const started = (atMs: number, subtaskId = 'st1', attempt = 1, leaseEpoch = 1) => stored('SubtaskStarted', { ...report(subtaskId, attempt, leaseEpoch), startedAt: iso(atMs) });
const completed = (atMs: number, subtaskId = 'st1', attempt = 1, leaseEpoch = 1) => stored('SubtaskCompleted', { ...report(subtaskId, attempt, leaseEpoch), exitCode: 0, endedAt: iso(atMs) });

function fold(events: StoredEvent[], allocations = new Map<string, Allocation>(), streamTimeMs = new Map<number, number>()) {
  return { out: foldUsage(events, { allocations, appliedNodeEvents: new Set(), nodeEpochs: new Map(), streamTimeMs }), allocations };
}
const hoursOf = (out: ReturnType<typeof foldUsage>) => out.closures.flatMap((c) => c.hours.map((h) => [iso(h.hourStartMs), h.gpuMs, h.interruptedGpuMs]));

describe('usage fold: interval arithmetic', () => {
  it('splits an allocation exactly at UTC hours, across a day and a month boundary', () => {
    const end = T0 + 2 * HOUR_MS + 45 * 60_000; // 2026-02-01T01:15Z
    const { out } = fold([placed(), started(T0), completed(end)]);
    expect(out.closures).toHaveLength(1);
    expect(hoursOf(out)).toEqual([
      ['2026-01-31T22:00:00.000Z', 8 * 30 * 60_000, 0],
      ['2026-01-31T23:00:00.000Z', 8 * HOUR_MS, 0],
      ['2026-02-01T00:00:00.000Z', 8 * HOUR_MS, 0],
      ['2026-02-01T01:00:00.000Z', 8 * 15 * 60_000, 0],
    ]);
    expect(out.closures[0]!.allocation.gpuMs).toBe(8 * (end - T0));
  });

  it('handles the minimum durations: zero length gives no usage, one millisecond gives gpus ms', () => {
    const zero = fold([placed('z'), started(T0, 'z'), completed(T0, 'z')]).out;
    expect(zero.closures[0]!.allocation.gpuMs).toBe(0);
    expect(zero.closures[0]!.hours).toEqual([]);
    const one = fold([placed('o', 1, 1, 8, { placedAt: iso(HOUR_MS * 1000 - 2) }), started(HOUR_MS * 1000 - 1, 'o'), completed(HOUR_MS * 1000, 'o')]).out;
    expect(hoursOf(one)).toEqual([[iso(HOUR_MS * 999), 8, 0]]);
  });

  it('handles the maximum durations: a year-long 1,024-GPU allocation stays exact integer milliseconds', () => {
    const start = Date.UTC(2025, 0, 1);
    const end = Date.UTC(2026, 0, 1);
    const { out } = fold([placed('y', 1, 1, 1024, { placedAt: iso(start) }), started(start, 'y'), completed(end, 'y')]);
    const hours = out.closures[0]!.hours;
    expect(hours).toHaveLength(365 * 24);
    expect(hours.reduce((sum, h) => sum + h.gpuMs, 0)).toBe(1024 * 365 * DAY_MS);
    expect(Number.isSafeInteger(out.closures[0]!.allocation.gpuMs)).toBe(true);
  });

  it('gives an out-of-order pair (end before start, reports before the placement) the same result', () => {
    const ordered = fold([placed(), started(T0), completed(T0 + HOUR_MS)]).out;
    const endFirst = fold([placed(), completed(T0 + HOUR_MS), started(T0)]).out;
    const reportsFirst = fold([completed(T0 + HOUR_MS), started(T0), placed()]).out;
    for (const other of [endFirst, reportsFirst]) {
      expect(hoursOf(other)).toEqual(hoursOf(ordered));
      expect(other.closures[0]!.allocation.gpuMs).toBe(ordered.closures[0]!.allocation.gpuMs);
    }
  });

  it('counts an end earlier than the start as zero length rather than negative', () => {
    const { out } = fold([placed(), started(T0 + 5000), completed(T0)]);
    expect(out.closures[0]!.allocation.gpuMs).toBe(0);
  });

  it('ignores reports whose lease epoch differs from the placement, in either order', () => {
    const { out, allocations } = fold([placed('e', 1, 2), started(T0, 'e', 1, 1), started(T0 + 1000, 'e', 1, 2), completed(T0 + 5000, 'e', 1, 1), completed(T0 + 9000, 'e', 1, 2)]);
    expect(out.closures[0]!.allocation.gpuMs).toBe(8 * 8000);
    expect(allocations.get(subtaskKey('e', 1))!.staleReports).toBe(2);
    const early = fold([started(T0, 'f', 1, 1), completed(T0 + 5000, 'f', 1, 1), placed('f', 1, 2), started(T0 + 1000, 'f', 1, 2), completed(T0 + 9000, 'f', 1, 2)]);
    expect(early.out.closures[0]!.allocation.gpuMs).toBe(8 * 8000);
  });

  it('applies a duplicate or a second end once: the first end in log order wins', () => {
    const end = completed(T0 + HOUR_MS);
    const { out } = fold([placed(), started(T0), end, end, completed(T0 + 2 * HOUR_MS)]);
    expect(out.closures).toHaveLength(1);
    expect(out.closures[0]!.allocation.gpuMs).toBe(8 * HOUR_MS);
  });

  it('ends a preempted sub-task at the preemption time, interrupted', () => {
    const preempted = stored('SubtaskPreempted', { jobId: 'job1', tenantId: 'acme', subtaskId: 'st1', attempt: 1, nodeId: 'n1', leaseEpoch: 1, reason: 'higher class', preemptedAt: iso(T0 + 60_000) });
    const { out } = fold([placed(), started(T0), preempted, completed(T0 + HOUR_MS)]);
    expect(out.closures[0]!.allocation).toMatchObject({ gpuMs: 8 * 60_000, interrupted: true, endReason: 'preempted' });
    expect(hoursOf(out)).toEqual([['2026-01-31T22:00:00.000Z', 8 * 60_000, 8 * 60_000]]);
  });

  it("clamps a node's reported times into the lease: not before placement, not past the end's receipt", () => {
    const early = started(T0 - 60_000); // the node's clock claims a start a minute before its placement (T0 − 1 s)
    const late = { ...completed(T0 + 60_000), receivedAtMs: T0 + 5_000 }; // stored at T0 + 5 s, claiming an end at T0 + 60 s
    const a = fold([placed(), early, late]).out.closures[0]!.allocation;
    expect([a.startMs, a.endMs]).toEqual([T0 - 1000, T0 + 5_000]);
    expect(a.gpuMs).toBe(8 * (5_000 + 1000));
    const honest = fold([placed('st2'), started(T0, 'st2'), { ...completed(T0 + 10_000, 'st2'), receivedAtMs: T0 + 10_001 }]).out.closures[0]!.allocation;
    expect([honest.startMs, honest.endMs, honest.gpuMs]).toEqual([T0, T0 + 10_000, 8 * 10_000]);
  });

  it("ends a sub-task stopped by the tenant's cancel at that time, not interrupted (never credited back)", () => {
    const cancelled = stored('SubtaskPreempted', { jobId: 'job1', tenantId: 'acme', subtaskId: 'st1', attempt: 1, nodeId: 'n1', leaseEpoch: 1, reason: 'cancelled: user asked', fault: 'user', preemptedAt: iso(T0 + 60_000) });
    const { out } = fold([placed(), started(T0), cancelled]);
    expect(out.closures[0]!.allocation).toMatchObject({ gpuMs: 8 * 60_000, interrupted: false, endReason: 'preempted' });
    expect(hoursOf(out)).toEqual([['2026-01-31T22:00:00.000Z', 8 * 60_000, 0]]);
  });

  it('ends every not-ended allocation on a lost node at its last heartbeat, once', () => {
    const lost = stored('NodeLost', { nodeId: 'n1', lastHeartbeatAt: iso(T0 + 30_000), detectedAt: iso(T0 + 45_000), reason: 'missed heartbeats' });
    const events = [placed('a'), started(T0, 'a'), placed('b'), started(T0 + 10_000, 'b'), placed('c', 1, 1, 8, { nodeId: 'n2' }), started(T0, 'c'), lost, lost];
    const { out } = fold(events);
    expect(out.closures.map((c) => [c.allocation.subtaskId, c.allocation.gpuMs, c.allocation.interrupted])).toEqual([
      ['a', 8 * 30_000, true],
      ['b', 8 * 20_000, true],
    ]);
    expect(out.nodeEventsApplied).toHaveLength(1);
  });

  it('meters leases and external allocations, keeping external times beyond the horizon as late', () => {
    const granted = stored('LeaseGranted', { leaseId: 'L1', tenantId: 'acme', projectId: 'p1', nodeId: 'n1', gpuModel: 'A100', gpus: 2, gpuIndices: [0, 1], leaseEpoch: 1, capacityType: 'reserved', grantedAt: iso(T0) });
    const staleRelease = stored('LeaseReleased', { leaseId: 'L1', tenantId: 'acme', nodeId: 'n1', leaseEpoch: 9, reason: 'x', releasedAt: iso(T0 + 1) });
    const released = stored('LeaseReleased', { leaseId: 'L1', tenantId: 'acme', nodeId: 'n1', leaseEpoch: 1, reason: 'done', releasedAt: iso(T0 + HOUR_MS) });
    const extStart = stored('ExternalAllocationStarted', { allocationId: 'x1', tenantId: 'acme', projectId: 'p1', gpuModel: 'L4', gpus: 1, capacityType: 'preemptible', startedAt: iso(T0) });
    const extStop = stored('ExternalAllocationStopped', { allocationId: 'x1', tenantId: 'acme', stoppedAt: iso(T0 + 1000) });
    const tooOld = stored('ExternalAllocationStarted', { allocationId: 'x2', tenantId: 'acme', projectId: 'p1', gpuModel: 'L4', gpus: 1, capacityType: 'preemptible', startedAt: iso(T0 - 40 * DAY_MS) });
    const tooMany = stored('ExternalAllocationStarted', { allocationId: 'x3', tenantId: 'acme', projectId: 'p1', gpuModel: 'L4', gpus: 2 ** 31, capacityType: 'preemptible', startedAt: iso(T0) });
    const times = new Map([extStart, extStop, tooOld, tooMany].map((e) => [e.sequence, T0 + 2000]));
    const { out, allocations } = fold([granted, staleRelease, released, extStop, extStart, tooOld, tooMany], new Map(), times);
    expect(out.closures.map((c) => [c.allocation.key, c.allocation.gpuMs, c.allocation.late])).toEqual([
      ['l:L1', 2 * HOUR_MS, false],
      ['x:acme:x1', 1000, false],
    ]);
    expect(allocations.get('x:acme:x2')).toMatchObject({ late: true, lateReceivedMs: T0 + 2000, startMs: T0 - 40 * DAY_MS, gpuMs: null });
    expect(out.rejections.map((r) => r.reason)).toEqual([expect.stringMatching(/gpus 2147483648 is more than 10000/)]);
  });
});

describe('usage fold: late external usage', () => {
  const RECEIVED = T0 + 50 * DAY_MS;
  const dims = { projectId: 'p1', gpuModel: 'L4', gpus: 2, capacityType: 'on-demand' } as const;
  const lateStart = (allocationId: string, atMs: number, receivedMs = RECEIVED) => stored('ExternalAllocationReportedLate', { allocationId, tenantId: 'acme', report: 'started', ...dims, at: iso(atMs), receivedAt: iso(receivedMs) });
  const lateStop = (allocationId: string, atMs: number, receivedMs = RECEIVED) => stored('ExternalAllocationReportedLate', { allocationId, tenantId: 'acme', report: 'stopped', at: iso(atMs), receivedAt: iso(receivedMs) });
  const start = (allocationId: string, atMs: number) => stored('ExternalAllocationStarted', { allocationId, tenantId: 'acme', ...dims, startedAt: iso(atMs) });
  const stop = (allocationId: string, atMs: number) => stored('ExternalAllocationStopped', { allocationId, tenantId: 'acme', stoppedAt: iso(atMs) });
  const closed = (out: ReturnType<typeof foldUsage>) => out.closures.map((c) => [c.allocation.key, c.allocation.gpuMs, c.allocation.late, c.allocation.lateReceivedMs]);

  it('closes an allocation reported late into late usage, in either order, with hours for the record', () => {
    const ordered = fold([lateStart('l1', T0), lateStop('l1', T0 + HOUR_MS, RECEIVED + 5)]).out;
    const reversed = fold([lateStop('l1', T0 + HOUR_MS, RECEIVED + 5), lateStart('l1', T0)]).out;
    expect(closed(ordered)).toEqual([['x:acme:l1', 2 * HOUR_MS, true, RECEIVED]]);
    expect(closed(reversed)).toEqual(closed(ordered));
  });

  it('makes an allocation late when only its stop is late, and when a plain report is beyond the horizon of the stream time', () => {
    const times = new Map<number, number>();
    const onTime = start('l2', T0);
    times.set(onTime.sequence, T0 + 1000);
    const { out } = fold([onTime, lateStop('l2', T0 + HOUR_MS)], new Map(), times);
    expect(closed(out)).toEqual([['x:acme:l2', 2 * HOUR_MS, true, RECEIVED]]);
    const oldStart = start('l3', T0);
    const oldStop = stop('l3', T0 + HOUR_MS);
    times.set(oldStart.sequence, RECEIVED);
    times.set(oldStop.sequence, RECEIVED + 1);
    expect(closed(fold([oldStart, oldStop], new Map(), times).out)).toEqual([['x:acme:l3', 2 * HOUR_MS, true, RECEIVED]]);
  });

  it('does not make a closed or started allocation late through a late duplicate that changes nothing', () => {
    const times = new Map<number, number>();
    const onTime = [start('l4', T0), stop('l4', T0 + HOUR_MS)];
    for (const e of onTime) times.set(e.sequence, T0 + HOUR_MS);
    const { out, allocations } = fold([...onTime, lateStart('l4', T0 - HOUR_MS), lateStop('l4', T0)], new Map(), times);
    expect(closed(out)).toEqual([['x:acme:l4', 2 * HOUR_MS, false, null]]);
    expect(allocations.get('x:acme:l4')).toMatchObject({ late: false, startMs: T0, endMs: T0 + HOUR_MS });
  });

  it("refuses a late start without its dimensions, or on another tenant's subject", () => {
    const bare = stored('ExternalAllocationReportedLate', { allocationId: 'l5', tenantId: 'acme', report: 'started', at: iso(T0), receivedAt: iso(RECEIVED) });
    const foreign: StoredEvent = { ...lateStart('l6', T0), subject: 'unit.evt.external.tenant.globex' };
    const { out } = fold([bare, foreign]);
    expect(out.rejections.map((r) => r.reason)).toEqual([expect.stringMatching(/must carry projectId/), expect.stringMatching(/does not match the subject/)]);
    expect(out.closures).toEqual([]);
  });
});
