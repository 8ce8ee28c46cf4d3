/**
 * Proves the fencing rule: a report counts only with the current placement's epoch, from that
 * placement's node, while the placement holds its lease; stale reports yield a ReportRejected and
 * a StopSubtask with ids derived from the report (the same on every retry or standby); a report
 * published on another node's subject is rejected even with the right node, attempt and epoch.
 */
import { describe, expect, it } from 'vitest';
import { deriveId } from '@fastgpu/contracts';
import { event } from '../testkit';
import { decideReport, evolveFencing, initialFencingState, judgeReport, staleRunningWork, type FencingState } from './fencing.decider';

const placed = (attempt: number, leaseEpoch: number, nodeId: string) =>
  event('SubtaskPlaced', {
    jobId: 'job-1',
    tenantId: 'acme',
    projectId: 'p',
    subtaskId: 'st-1',
    attempt,
    nodeId,
    gpuModel: 'a100',
    gpus: 2,
    gpuIndices: [0, 1],
    leaseEpoch,
    capacityType: 'on-demand',
    runtimeMs: 60_000,
    placedAt: '2026-11-01T00:00:00.000Z',
  });
const started = (attempt: number, leaseEpoch: number, nodeId: string) => event('SubtaskStarted', { jobId: 'job-1', tenantId: 'acme', subtaskId: 'st-1', attempt, nodeId, leaseEpoch, startedAt: '2026-11-01T00:00:01.000Z' });
const completed = (attempt: number, leaseEpoch: number, nodeId: string) => event('SubtaskCompleted', { jobId: 'job-1', tenantId: 'acme', subtaskId: 'st-1', attempt, nodeId, leaseEpoch, exitCode: 0, endedAt: '2026-11-01T00:01:00.000Z' });

function given(...events: Parameters<typeof evolveFencing>[1][]): FencingState {
  const state = initialFencingState();
  for (const e of events) evolveFencing(state, e);
  return state;
}

describe('fencing', () => {
  it('accepts a report with the current epoch from the placed node', () => {
    const state = given(placed(1, 7, 'n1'));
    expect(decideReport(state, started(1, 7, 'n1'), 0)).toEqual([]);
  });

  it('rejects a report with an old epoch after a requeue, and tells its node to stop', () => {
    const state = given(placed(1, 7, 'n1'), event('NodeLost', { nodeId: 'n1', lastHeartbeatAt: '2026-11-01T00:00:30.000Z', detectedAt: '2026-11-01T00:00:45.000Z', reason: 'silent' }), placed(2, 8, 'n2'));
    const late = completed(1, 7, 'n1');
    const effects = decideReport(state, late, Date.parse('2026-11-01T00:02:00.000Z'));
    expect(effects).toHaveLength(2);
    const [stop, rejected] = effects;
    expect(stop).toMatchObject({ kind: 'command', nodeId: 'n1', command: { kind: 'StopSubtask', subtaskId: 'st-1', attempt: 1, leaseEpoch: 7, commandId: deriveId(late.id, 'StopSubtask') } });
    expect(rejected).toMatchObject({ kind: 'event', type: 'ReportRejected', id: deriveId(late.id, 'ReportRejected'), data: { nodeId: 'n1', subtaskId: 'st-1', reportType: 'SubtaskCompleted', rejectedAt: '2026-11-01T00:02:00.000Z' } });
    expect((rejected as { data: { reason: string } }).data.reason).toMatch(/stale lease epoch 7 .*current is epoch 8/);
    // The same report decided again (a retry, a standby) yields the same ids.
    expect(decideReport(state, late, 0).map((e) => (e.kind === 'event' ? e.id : e.command.commandId))).toEqual([deriveId(late.id, 'StopSubtask'), deriveId(late.id, 'ReportRejected')]);
  });

  it('rejects reports from a lost node before the scheduler has requeued its work', () => {
    const state = given(placed(1, 7, 'n1'), event('NodeLost', { nodeId: 'n1', lastHeartbeatAt: '2026-11-01T00:00:30.000Z', detectedAt: '2026-11-01T00:00:45.000Z', reason: 'silent' }));
    const judgement = judgeReport(state.placements.get('st-1'), { subtaskId: 'st-1', attempt: 1, leaseEpoch: 7, nodeId: 'n1' });
    expect(judgement).toEqual({ ok: false, code: 'revoked', reason: expect.stringMatching(/revoked: node n1 lost/) });
  });

  it('rejects a report from another node, a preempted lease, and a sub-task whose job is done', () => {
    expect(judgeReport(given(placed(1, 7, 'n1')).placements.get('st-1'), { subtaskId: 'st-1', attempt: 1, leaseEpoch: 7, nodeId: 'n9' })).toMatchObject({ ok: false, reason: 'sub-task is placed on node n1, not n9' });
    const preempted = given(placed(1, 7, 'n1'), event('SubtaskPreempted', { jobId: 'job-1', tenantId: 'acme', subtaskId: 'st-1', attempt: 1, nodeId: 'n1', leaseEpoch: 7, reason: 'higher class', preemptedAt: '2026-11-01T00:00:10.000Z' }));
    expect(decideReport(preempted, completed(1, 7, 'n1'), 0)).toHaveLength(2);
    const done = given(
      placed(1, 7, 'n1'),
      event('JobCompleted', { jobId: 'job-1', tenantId: 'acme', projectId: 'p', outcome: 'succeeded', subtasksSucceeded: 1, subtasksFailed: 0, subtasksCancelled: 0, gpuMsObserved: 1, completedAt: '2026-11-01T00:02:00.000Z' }),
    );
    expect(done.placements.size).toBe(0);
    expect(done.byNode.size).toBe(0);
    expect(judgeReport(done.placements.get('st-1'), { subtaskId: 'st-1', attempt: 1, leaseEpoch: 7, nodeId: 'n1' })).toMatchObject({ ok: false, reason: 'no current placement for sub-task st-1' });
  });

  it('ignores a placement older than the one it knows (out-of-order delivery never rolls back an epoch)', () => {
    const state = given(placed(2, 8, 'n2'), placed(1, 7, 'n1'));
    expect(state.placements.get('st-1')).toMatchObject({ leaseEpoch: 8, nodeId: 'n2' });
  });

  it('finds stale work in a heartbeat but leaves unknown or newer work alone', () => {
    const state = given(placed(1, 7, 'n1'), placed(2, 8, 'n2'));
    const stale = staleRunningWork(state, 'n1', [
      { subtaskId: 'st-1', attempt: 1, leaseEpoch: 7 },
      { subtaskId: 'unknown', attempt: 1, leaseEpoch: 1 },
    ]);
    expect(stale).toEqual([{ subtaskId: 'st-1', attempt: 1, leaseEpoch: 7, reason: expect.stringMatching(/stale lease epoch 7/) }]);
    expect(staleRunningWork(state, 'n2', [{ subtaskId: 'st-1', attempt: 2, leaseEpoch: 8 }])).toEqual([]);
  });

  it("rejects a report of the right node and epoch published on another node's subject (a forgery)", () => {
    const state = given(placed(1, 7, 'n1'));
    const forged = completed(1, 7, 'n1');
    const effects = decideReport(state, forged, 0, 'spec.evt.agent.node.n2');
    expect(effects).toHaveLength(2);
    // The stop goes to the sender (n2), never to n1, whose work is real.
    expect(effects[0]).toMatchObject({ kind: 'command', nodeId: 'n2' });
    expect(effects[1]).toMatchObject({ kind: 'event', data: { nodeId: 'n2', reason: 'report naming node n1 was published on the subject of node n2' } });
    expect(decideReport(state, forged, 0, 'spec.evt.agent.node.n1')).toEqual([]);
  });
});
