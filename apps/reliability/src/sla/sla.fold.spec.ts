/**
 * Proves the SLA read model's rules on a batch, without a database: a node loss ends the open
 * attempts on it at the last heartbeat and marks them interrupted; the next placement resumes the
 * work and records the wait; a stale report from the lost node changes nothing; a preemption on a
 * drained node counts as a drain; a stop the tenant caused (cancel) is no interruption; SLI
 * minutes count good and total starts.
 */
import { describe, expect, it } from 'vitest';
import type { DomainEvent, StoredEvent } from '@fastgpu/contracts';
import { event } from '../testkit';
import { attemptKey, foldSla, type SlaRows } from './sla.fold';

const options = { jobStartLatencyThresholdMs: 60_000, meteringFreshnessThresholdMs: 300_000 };
const stored = (events: DomainEvent[]): StoredEvent[] => events.map((e, i) => ({ sequence: i + 1, subject: e.subject, event: e }));
const emptyRows = (): SlaRows => ({ jobs: new Map(), attempts: new Map(), nodes: new Map(), incidents: new Map() });
const placed = (attempt: number, nodeId: string, placedAt: string) =>
  event('SubtaskPlaced', { jobId: 'j', tenantId: 'acme', projectId: 'p', subtaskId: 's', attempt, nodeId, gpuModel: 'a100', gpus: 2, gpuIndices: [0, 1], leaseEpoch: attempt, capacityType: 'on-demand', runtimeMs: 1, placedAt });
const submitted = event('JobSubmitted', {
  jobId: 'j',
  tenantId: 'acme',
  projectId: 'p',
  gpuModels: ['a100'],
  gpusPerSubtask: 2,
  subtaskCount: 1,
  runtimeMs: 1,
  priorityClass: 'standard',
  priority: 0,
  preemptible: false,
  gang: false,
  capacityType: 'on-demand',
  dependsOn: [],
  submittedAt: '2026-10-01T00:00:00.000Z',
});

describe('SLA fold', () => {
  it("ends work at a lost node's last heartbeat, resumes it at the next placement, and ignores the stale report", () => {
    const rows = emptyRows();
    const changes = foldSla(
      rows,
      stored([
        submitted,
        placed(1, 'n1', '2026-10-01T00:02:00.000Z'),
        event('NodeLost', { nodeId: 'n1', lastHeartbeatAt: '2026-10-01T01:00:00.000Z', detectedAt: '2026-10-01T01:00:15.000Z', reason: 'silent' }),
        placed(2, 'n2', '2026-10-01T01:00:20.000Z'),
        event('SubtaskCompleted', { jobId: 'j', tenantId: 'acme', subtaskId: 's', attempt: 1, nodeId: 'n1', leaseEpoch: 1, exitCode: 0, endedAt: '2026-10-01T02:00:00.000Z' }),
      ]),
      options,
    );
    expect(rows.attempts.get(attemptKey('s', 1))).toMatchObject({
      queue_wait_ms: 120_000,
      ended_at_ms: Date.parse('2026-10-01T01:00:00.000Z'),
      end_kind: 'node-lost',
      interruption_cause: 'node-lost',
      resumed_at_ms: Date.parse('2026-10-01T01:00:20.000Z'),
      resumed_by: 'placement',
    });
    expect(rows.attempts.get(attemptKey('s', 2))).toMatchObject({ ended_at_ms: null, queue_wait_ms: null });
    expect([...rows.incidents.values()]).toEqual([expect.objectContaining({ node_id: 'n1', kind: 'lost', started_at_ms: Date.parse('2026-10-01T01:00:00.000Z'), ended_at_ms: null })]);
    expect([...changes.attempts].sort()).toEqual([attemptKey('s', 1), attemptKey('s', 2)]);
    // A 2-minute wait is over the 60 s threshold: one bad start.
    expect([...changes.sliMinutes.values()]).toEqual([{ sli: 'job-start-latency', minute_ms: Date.parse('2026-10-01T00:02:00.000Z'), total: 1, good: 0 }]);
  });

  it('counts a preemption on a drained node as a drain', () => {
    const rows = emptyRows();
    foldSla(
      rows,
      stored([
        placed(1, 'n1', '2026-10-01T00:00:00.000Z'),
        event('NodeDrained', { nodeId: 'n1', reason: 'gpu 0: 9 ECC errors (threshold 8)', drainedAt: '2026-10-01T00:10:00.000Z', automatic: true }),
        event('SubtaskPreempted', { jobId: 'j', tenantId: 'acme', subtaskId: 's', attempt: 1, nodeId: 'n1', leaseEpoch: 1, reason: 'drain', preemptedAt: '2026-10-01T00:11:00.000Z' }),
      ]),
      options,
    );
    expect(rows.attempts.get(attemptKey('s', 1))).toMatchObject({ end_kind: 'preempted', interruption_cause: 'drained', interrupted_at_ms: Date.parse('2026-10-01T00:11:00.000Z') });
  });

  it("does not count a tenant's own cancellation as an interruption", () => {
    const rows = emptyRows();
    foldSla(
      rows,
      stored([
        placed(1, 'n1', '2026-10-01T00:00:00.000Z'),
        event('SubtaskPreempted', { jobId: 'j', tenantId: 'acme', subtaskId: 's', attempt: 1, nodeId: 'n1', leaseEpoch: 1, reason: 'cancelled: user asked', fault: 'user', preemptedAt: '2026-10-01T00:05:00.000Z' }),
      ]),
      options,
    );
    expect(rows.attempts.get(attemptKey('s', 1))).toMatchObject({ end_kind: 'cancelled', ended_at_ms: Date.parse('2026-10-01T00:05:00.000Z'), interruption_cause: null, interrupted_at_ms: null });
  });

  it("ends a node's report at its receipt when its clock is further ahead than the skew allows (a fast clock cannot stretch the work)", () => {
    const rows = emptyRows();
    const events = stored([
      placed(1, 'n1', '2026-10-01T00:00:00.000Z'),
      event('SubtaskCompleted', { jobId: 'j', tenantId: 'acme', subtaskId: 's', attempt: 1, nodeId: 'n1', leaseEpoch: 1, exitCode: 0, endedAt: '2026-10-01T05:00:00.000Z' }),
    ]);
    events[1] = { ...events[1]!, receivedAtMs: Date.parse('2026-10-01T01:00:00.000Z') };
    foldSla(rows, events, { ...options, clockSkewMs: 5_000 });
    expect(rows.attempts.get(attemptKey('s', 1))).toMatchObject({ end_kind: 'completed', ended_at_ms: Date.parse('2026-10-01T01:00:00.000Z') });
  });
});
