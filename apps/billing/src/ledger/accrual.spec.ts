/**
 * Proves the accrual rules as given (allocation events) / when (a period close, or the stop) /
 * then (what is cut, what the stop still bills): an allocation is running once placed and started
 * by a node report the shared report rule accepts (libs/contracts `judgeNodeReport`: stale epochs,
 * another node, another node's subject never start or stop it), its start bounded as metering
 * bounds it (`reportTimeMs`: not before the placement, not after receipt plus the tolerance), ended
 * by any accepted end report or the attempt's requeue; a close cuts a running allocation from its
 * start (or the last cut) to the period's end; the stop bills only the rest, with a zero-length piece at the end carrying the
 * rounding when the cut reached it; accrued time past the real end is reported as an overrun;
 * external starts the shared external-usage rule refuses (libs/contracts external-usage.ts) are
 * never accrued, and a late external stop still ends the allocation.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_LATENESS_HORIZON, reportTimeMs, type DomainEvent, type EventData, type EventType, type StoredEvent } from '@fastgpu/contracts';
import { accrualRange, allocationOf, emptyAllocation, evolveAllocation, externalKey, isRunning, loseNode, remainderRanges, stopPieces, subtaskKey, type OpenAllocation } from './accrual';

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
const agentSubject = (nodeId: string) => `p.evt.agent.node.${nodeId}`;
const started = (epoch: number, startedAt: string, receivedAt = '2026-11-30T23:00:00.000Z', nodeId = 'n1', subject = agentSubject(nodeId)) => stored('SubtaskStarted', { ...report, nodeId, leaseEpoch: epoch, startedAt }, { receivedAt, subject });
const key = subtaskKey('s', 1);
const decemberStart = T('2026-12-01T00:00:00.000Z');

describe('which allocations are running', () => {
  it('a placed and started sub-task is running; its end report stops it', () => {
    const a = given(key, 'subtask', [placed(1), started(1, '2026-11-30T22:00:00.000Z')]);
    expect([isRunning(a), a.startMs, a.gpus]).toEqual([true, T('2026-11-30T22:00:00.000Z'), 2]);
    expect(isRunning(evolveAllocation(a, stored('SubtaskCompleted', { ...report, leaseEpoch: 1, exitCode: 0, endedAt: '2026-12-01T01:00:00.000Z' }, { subject: agentSubject('n1') })))).toBe(false);
    expect(isRunning(loseNode(a))).toBe(false);
  });
  it('a start under another epoch is stale, before or after the placement', () => {
    expect(isRunning(given(key, 'subtask', [placed(2), started(1, '2026-11-30T22:00:00.000Z')]))).toBe(false);
    expect(isRunning(given(key, 'subtask', [started(1, '2026-11-30T22:00:00.000Z'), placed(2)]))).toBe(false);
    // An end under another epoch does not stop the current attempt.
    const a = given(key, 'subtask', [placed(2), started(2, '2026-11-30T22:00:00.000Z'), stored('SubtaskFailed', { ...report, leaseEpoch: 1, exitCode: 1, fault: 'user', reason: 'x', endedAt: '2026-11-30T22:30:00.000Z' }, { subject: agentSubject('n1') })]);
    expect(isRunning(a)).toBe(true);
  });
  it('bounds a start as metering does (libs/contracts reportTimeMs): not before the placement, at its receipt when the clock is further ahead than the tolerance', () => {
    expect(given(key, 'subtask', [placed(1), started(1, '2026-11-30T10:00:00.000Z')]).startMs).toBe(T('2026-11-30T20:00:00.000Z'));
    expect(given(key, 'subtask', [placed(1), started(1, '2026-12-02T00:00:00.000Z', '2026-11-30T23:00:00.000Z')]).startMs).toBe(T('2026-11-30T23:00:00.000Z'));
    // In order or not, the start is the shared rule's answer for every reported time.
    const placedAtMs = T('2026-11-30T20:00:00.000Z');
    const receivedAtMs = T('2026-11-30T23:00:00.000Z');
    for (let offset = -3 * 3_600_000; offset <= 4 * 3_600_000; offset += 17 * 60_000 + 1) {
      const at = new Date(placedAtMs + offset).toISOString();
      const expected = reportTimeMs(placedAtMs + offset, { placedAtMs, receivedAtMs });
      expect(given(key, 'subtask', [placed(1), started(1, at)]).startMs, at).toBe(expected);
      expect(given(key, 'subtask', [started(1, at), placed(1)]).startMs, at).toBe(expected);
    }
  });
  it('judges node reports by the shared report rule: another node or another node\'s subject never starts or stops it', () => {
    // A start from a node the sub-task is not placed on, after or before the placement.
    expect(isRunning(given(key, 'subtask', [placed(1), started(1, '2026-11-30T22:00:00.000Z', undefined, 'n2')]))).toBe(false);
    expect(isRunning(given(key, 'subtask', [started(1, '2026-11-30T22:00:00.000Z', undefined, 'n2'), placed(1)]))).toBe(false);
    // Naming the placed node, published on another node's subject (a forged report).
    expect(isRunning(given(key, 'subtask', [placed(1), started(1, '2026-11-30T22:00:00.000Z', undefined, 'n1', agentSubject('n2'))]))).toBe(false);
    // A forged end does not stop the real run.
    const forgedEnd = stored('SubtaskCompleted', { ...report, leaseEpoch: 1, exitCode: 0, endedAt: '2026-11-30T23:00:00.000Z' }, { subject: agentSubject('n2') });
    expect(isRunning(given(key, 'subtask', [placed(1), started(1, '2026-11-30T22:00:00.000Z'), forgedEnd]))).toBe(true);
  });
  it('ends an external allocation at a stop reported beyond the horizon (metering records it late), and accrues no late start', () => {
    const receivedAt = '2026-11-30T23:00:00.000Z';
    const lateAt = new Date(T(receivedAt) - DEFAULT_LATENESS_HORIZON.backMs - 60 * 60_000).toISOString();
    const start = stored('ExternalAllocationStarted', { allocationId: 'x2', tenantId: 'acme', projectId: 'p', gpuModel: 'a100', gpus: 1, capacityType: 'on-demand', startedAt: '2026-11-30T22:00:00.000Z' }, { subject: 'p.evt.external.tenant.acme', receivedAt, tenantid: 'acme' });
    const lateStop = stored('ExternalAllocationStopped', { allocationId: 'x2', tenantId: 'acme', stoppedAt: lateAt }, { subject: 'p.evt.external.tenant.acme', receivedAt, tenantid: 'acme' });
    expect(isRunning(given(externalKey('acme', 'x2'), 'external', [start]))).toBe(true);
    expect(isRunning(given(externalKey('acme', 'x2'), 'external', [start, lateStop]))).toBe(false);
  });
  it("a requeue of the attempt (its agent restarted) stops it, as it ends metering's allocation; another attempt's requeue does not", () => {
    const running = given(key, 'subtask', [placed(1), started(1, '2026-11-30T22:00:00.000Z')]);
    const requeued = (previousAttempt: number) => stored('SubtaskRequeued', { jobId: 'j', tenantId: 'acme', subtaskId: 's', previousAttempt, reason: 'node n1 agent restarted', requeuedAt: '2026-11-30T22:30:00.000Z' });
    expect(allocationOf(requeued(1))).toEqual({ key, kind: 'subtask' });
    expect(isRunning(evolveAllocation(running, requeued(1)))).toBe(false);
    expect(allocationOf(requeued(2))!.key).not.toBe(key);
    expect(accrualRange(evolveAllocation(running, requeued(1)), decemberStart)).toBeNull();
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
