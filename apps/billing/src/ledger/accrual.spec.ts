/**
 * Proves the accrual rules as given (allocation events) / when (a period close, or the stop) /
 * then (what is cut, what the stop still bills): an allocation is running once placed and started
 * under its placement's epoch (stale reports never start it, a start is clamped into the lease),
 * ended by any end report; a close cuts a running allocation from its start (or the last cut) to
 * the period's end; the stop bills only the rest, with a zero-length piece at the end carrying the
 * rounding when the cut reached it; accrued time past the real end is reported as an overrun;
 * external starts metering refuses are never accrued.
 */
import { describe, expect, it } from 'vitest';
import type { DomainEvent, EventData, EventType, StoredEvent } from '@fastgpu/contracts';
import { accrualRange, emptyAllocation, evolveAllocation, externalKey, isRunning, loseNode, remainderRanges, stopPieces, subtaskKey, type OpenAllocation } from './accrual';

const T = (iso: string) => Date.parse(iso);
let sequence = 0;
function stored<K extends EventType>(type: K, data: EventData<K>, options: { subject?: string; receivedAt?: string; tenantid?: string | null } = {}): StoredEvent {
  sequence++;
  const event = { id: `e${sequence}`, type, data, tenantid: options.tenantid ?? null, time: '2026-11-30T00:00:00.000Z' } as unknown as DomainEvent;
  return { sequence, subject: options.subject ?? 'p.evt.x', event, ...(options.receivedAt ? { receivedAtMs: T(options.receivedAt) } : {}) };
}
const given = (key: string, kind: OpenAllocation['kind'], events: StoredEvent[]): OpenAllocation => events.reduce(evolveAllocation, emptyAllocation(key, kind));

const placed = (epoch: number, placedAt = '2026-11-30T20:00:00.000Z') =>
  stored('SubtaskPlaced', { jobId: 'j', tenantId: 'acme', projectId: 'p', subtaskId: 's', attempt: 1, nodeId: 'n1', gpuModel: 'a100', gpus: 2, gpuIndices: [0, 1], leaseEpoch: epoch, capacityType: 'on-demand', runtimeMs: 1000, placedAt });
const report = { jobId: 'j', tenantId: 'acme', subtaskId: 's', attempt: 1, nodeId: 'n1' };
const started = (epoch: number, startedAt: string, receivedAt = '2026-11-30T23:00:00.000Z') => stored('SubtaskStarted', { ...report, leaseEpoch: epoch, startedAt }, { receivedAt });
const key = subtaskKey('s', 1);
const decemberStart = T('2026-12-01T00:00:00.000Z');

describe('which allocations are running', () => {
  it('a placed and started sub-task is running; its end report stops it', () => {
    const a = given(key, 'subtask', [placed(1), started(1, '2026-11-30T22:00:00.000Z')]);
    expect([isRunning(a), a.startMs, a.gpus]).toEqual([true, T('2026-11-30T22:00:00.000Z'), 2]);
    expect(isRunning(evolveAllocation(a, stored('SubtaskCompleted', { ...report, leaseEpoch: 1, exitCode: 0, endedAt: '2026-12-01T01:00:00.000Z' })))).toBe(false);
    expect(isRunning(loseNode(a))).toBe(false);
  });
  it('a start under another epoch is stale, before or after the placement', () => {
    expect(isRunning(given(key, 'subtask', [placed(2), started(1, '2026-11-30T22:00:00.000Z')]))).toBe(false);
    expect(isRunning(given(key, 'subtask', [started(1, '2026-11-30T22:00:00.000Z'), placed(2)]))).toBe(false);
    // An end under another epoch does not stop the current attempt.
    const a = given(key, 'subtask', [placed(2), started(2, '2026-11-30T22:00:00.000Z'), stored('SubtaskFailed', { ...report, leaseEpoch: 1, exitCode: 1, fault: 'user', reason: 'x', endedAt: '2026-11-30T22:30:00.000Z' })]);
    expect(isRunning(a)).toBe(true);
  });
  it('clamps a start into the lease: not before the placement, not after receipt plus skew', () => {
    expect(given(key, 'subtask', [placed(1), started(1, '2026-11-30T10:00:00.000Z')]).startMs).toBe(T('2026-11-30T20:00:00.000Z'));
    expect(given(key, 'subtask', [placed(1), started(1, '2026-12-02T00:00:00.000Z', '2026-11-30T23:00:00.000Z')]).startMs).toBe(T('2026-11-30T23:00:05.000Z'));
  });
  it('never accrues an external start that metering refuses', () => {
    const start = (subject: string, startedAt: string) =>
      stored('ExternalAllocationStarted', { allocationId: 'x1', tenantId: 'acme', projectId: 'p', gpuModel: 'a100', gpus: 1, capacityType: 'on-demand', startedAt }, { subject, receivedAt: '2026-11-30T23:00:00.000Z', tenantid: 'acme' });
    expect(isRunning(given(externalKey('acme', 'x1'), 'external', [start('p.evt.external.tenant.acme', '2026-11-30T22:00:00.000Z')]))).toBe(true);
    expect(isRunning(given(externalKey('acme', 'x1'), 'external', [start('p.evt.external.tenant.globex', '2026-11-30T22:00:00.000Z')]))).toBe(false);
    expect(isRunning(given(externalKey('acme', 'x1'), 'external', [start('p.evt.external.tenant.acme', '2026-09-01T00:00:00.000Z')]))).toBe(false);
  });
});

describe('a period close', () => {
  const running = given(key, 'subtask', [placed(1), started(1, '2026-11-30T22:00:00.000Z')]);
  it('cuts a running allocation from its start to the period end', () => {
    expect(accrualRange(running, decemberStart)).toEqual({ fromMs: T('2026-11-30T22:00:00.000Z'), toMs: decemberStart });
  });
  it('cuts from where the last cut stopped, and nothing twice', () => {
    const cut = { ...running, accruedFromMs: T('2026-11-30T22:00:00.000Z'), accruedUntilMs: decemberStart };
    expect(accrualRange(cut, decemberStart)).toBeNull();
    expect(accrualRange(cut, T('2027-01-01T00:00:00.000Z'))).toEqual({ fromMs: decemberStart, toMs: T('2027-01-01T00:00:00.000Z') });
  });
  it('cuts nothing of an allocation that starts after the period or has ended', () => {
    expect(accrualRange(running, T('2026-11-30T21:00:00.000Z'))).toBeNull();
    expect(accrualRange({ ...running, ended: true }, decemberStart)).toBeNull();
  });
});

describe('the stop after a close', () => {
  const accrued = { startMs: T('2026-11-30T22:00:00.000Z'), endMs: decemberStart };
  it('bills only the remainder after the cut', () => {
    expect(remainderRanges(accrued.startMs, T('2026-12-01T03:00:00.000Z'), accrued)).toEqual({ ranges: [{ startMs: decemberStart, endMs: T('2026-12-01T03:00:00.000Z') }], overrunMs: 0 });
    expect(stopPieces(accrued.startMs, T('2026-12-01T03:00:00.000Z'), accrued, 'UTC').pieces).toEqual([{ period: '2026-12', startMs: decemberStart, endMs: T('2026-12-01T03:00:00.000Z') }]);
  });
  it('bills what metering saw before the cut began (a start the ledger clamped later)', () => {
    expect(remainderRanges(T('2026-11-30T21:59:00.000Z'), T('2026-12-01T01:00:00.000Z'), accrued).ranges).toEqual([
      { startMs: T('2026-11-30T21:59:00.000Z'), endMs: accrued.startMs },
      { startMs: decemberStart, endMs: T('2026-12-01T01:00:00.000Z') },
    ]);
  });
  it('keeps a zero-length piece at the end for the rounding when the cut reached the end', () => {
    expect(stopPieces(accrued.startMs, decemberStart, accrued, 'UTC')).toEqual({ pieces: [{ period: '2026-11', startMs: decemberStart, endMs: decemberStart }], overrunMs: 0 });
  });
  it('reports accrued time after the real end as an overrun', () => {
    const stop = stopPieces(accrued.startMs, T('2026-11-30T23:00:00.000Z'), accrued, 'UTC');
    expect(stop.overrunMs).toBe(3_600_000);
    expect(stop.pieces).toEqual([{ period: '2026-11', startMs: T('2026-11-30T23:00:00.000Z'), endMs: T('2026-11-30T23:00:00.000Z') }]);
  });
  it('without a cut is exactly the split at period boundaries', () => {
    expect(stopPieces(accrued.startMs, T('2026-12-01T01:00:00.000Z'), null, 'UTC').pieces).toEqual([
      { period: '2026-11', startMs: accrued.startMs, endMs: decemberStart },
      { period: '2026-12', startMs: decemberStart, endMs: T('2026-12-01T01:00:00.000Z') },
    ]);
    expect(stopPieces(decemberStart, decemberStart, null, 'UTC').pieces).toEqual([]);
  });
});
