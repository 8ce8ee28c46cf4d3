/**
 * Proves the node-report rules every consumer shares, pure: a report counts only from the placed
 * node, on that node's subject, with the placement's sub-task, attempt and epoch (each mismatch
 * refused with its code); a reported time is bounded by the placement and the receipt plus one
 * heartbeat interval; an agent whose clock is behind keeps its duration (the run moves to the
 * placement) and one ahead is pinned near receipt on both ends.
 */
import { describe, expect, it } from 'vitest';
import { judgeNodeReport, REPORT_TIME_TOLERANCE_MS, reportedIntervalMs, reportSubjectNodeId, reportTimeMs } from './report-fencing';

const placement = { nodeId: 'n1', subtaskId: 's1', attempt: 2, leaseEpoch: 41 };
const report = { nodeId: 'n1', subtaskId: 's1', attempt: 2, leaseEpoch: 41, subject: 'p.evt.agent.node.n1' };

describe('judgeNodeReport', () => {
  it('accepts the placed node on its own subject, with or without the subject known', () => {
    expect(judgeNodeReport(placement, report)).toEqual({ ok: true });
    expect(judgeNodeReport(placement, { ...report, subject: undefined })).toEqual({ ok: true });
  });

  it('refuses each mismatch with its code', () => {
    expect(judgeNodeReport(undefined, report)).toMatchObject({ ok: false, code: 'no-placement' });
    expect(judgeNodeReport(placement, { ...report, subtaskId: 's2' })).toMatchObject({ ok: false, code: 'no-placement' });
    expect(judgeNodeReport(placement, { ...report, subject: 'p.evt.agent.node.n2' })).toEqual({ ok: false, code: 'wrong-subject', reason: 'report naming node n1 was published on the subject of node n2' });
    expect(judgeNodeReport(placement, { ...report, subject: 'p.evt.intake.job.j1' })).toMatchObject({ ok: false, code: 'wrong-subject' });
    expect(judgeNodeReport(placement, { ...report, leaseEpoch: 40 })).toMatchObject({ ok: false, code: 'stale-epoch' });
    expect(judgeNodeReport(placement, { ...report, attempt: 1 })).toMatchObject({ ok: false, code: 'stale-epoch' });
    expect(judgeNodeReport(placement, { ...report, nodeId: 'n2', subject: 'p.evt.agent.node.n2' })).toEqual({ ok: false, code: 'wrong-node', reason: 'sub-task is placed on node n1, not n2' });
  });

  it('reads the node of a report subject only from a node agent subject', () => {
    expect(reportSubjectNodeId('fastgpu.evt.agent.node.gpu-7')).toBe('gpu-7');
    expect(reportSubjectNodeId('fastgpu.evt.scheduler.node.gpu-7')).toBeUndefined();
    expect(reportSubjectNodeId('fastgpu.evt.agent.node.')).toBeUndefined();
  });
});

describe('report times', () => {
  const placedAtMs = 1_000_000;

  it('bounds one time by the placement, and by its receipt once the agent is more than the tolerance ahead', () => {
    expect(reportTimeMs(900_000, { placedAtMs, receivedAtMs: 2_000_000 })).toBe(placedAtMs);
    expect(reportTimeMs(1_500_000, { placedAtMs, receivedAtMs: 2_000_000 })).toBe(1_500_000);
    // A little ahead (within the tolerance) is trusted; further ahead, the receipt is the time.
    expect(reportTimeMs(2_000_000 + REPORT_TIME_TOLERANCE_MS, { placedAtMs, receivedAtMs: 2_000_000 })).toBe(2_000_000 + REPORT_TIME_TOLERANCE_MS);
    expect(reportTimeMs(9_000_000, { placedAtMs, receivedAtMs: 2_000_000 })).toBe(2_000_000);
    expect(reportTimeMs(9_000_000, {})).toBe(9_000_000);
  });

  it('keeps the duration of an agent whose clock is behind, starting the run at the placement', () => {
    const behindMs = 10 * 60_000;
    // Placed at P, started 200 ms later and ran 30 s; the agent's clock reads 10 minutes early.
    const run = reportedIntervalMs({ startMs: placedAtMs + 200 - behindMs, endMs: placedAtMs + 30_200 - behindMs, endFromAgent: true }, { placedAtMs, latestMs: placedAtMs + 30_250 + REPORT_TIME_TOLERANCE_MS });
    expect(run).toEqual({ startMs: placedAtMs, endMs: placedAtMs + 30_000 });
  });

  it('never moves an end past its receipt plus the tolerance, nor an end the platform decided', () => {
    const run = reportedIntervalMs({ startMs: placedAtMs - 86_400_000, endMs: placedAtMs + 1000, endFromAgent: true }, { placedAtMs, latestMs: placedAtMs + 2000 });
    expect(run).toEqual({ startMs: placedAtMs, endMs: placedAtMs + 2000 });
    expect(reportedIntervalMs({ startMs: placedAtMs - 5000, endMs: placedAtMs + 1000, endFromAgent: false }, { placedAtMs })).toEqual({ startMs: placedAtMs, endMs: placedAtMs + 1000 });
  });

  it('ends a run reported by a clock far ahead at the receipt of its end, before the next placement on its GPUs', () => {
    const aheadMs = 60 * 60_000;
    // Started 100 ms after the placement, ran 2 s; each report reached the log 50 ms after it was sent.
    const startMs = reportTimeMs(placedAtMs + 100 + aheadMs, { receivedAtMs: placedAtMs + 150 });
    const endMs = reportTimeMs(placedAtMs + 2_100 + aheadMs, { receivedAtMs: placedAtMs + 2_150 });
    const nextPlacementMs = placedAtMs + 2_160;
    expect({ startMs, endMs }).toEqual({ startMs: placedAtMs + 150, endMs: placedAtMs + 2_150 });
    expect(endMs).toBeLessThan(nextPlacementMs);
  });

  it('leaves a clock in step alone', () => {
    expect(reportedIntervalMs({ startMs: placedAtMs + 10, endMs: placedAtMs + 5000, endFromAgent: true }, { placedAtMs, latestMs: placedAtMs + 5001 })).toEqual({ startMs: placedAtMs + 10, endMs: placedAtMs + 5000 });
  });
});
