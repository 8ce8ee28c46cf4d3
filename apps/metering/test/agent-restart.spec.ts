/**
 * Proves on real NATS and Postgres that an attempt whose node agent restarted is billed only up
 * to the agent's new registration: the usage projection loads the node's open rows when
 * NodeRegistered comes (in a later batch than the placement), ends them there, publishes their
 * UsageRecorded from the registration, ignores the lost run's late end report, and the requeued
 * attempt placed on the same GPUs does not overlap it. A registration with an older agent epoch
 * than the node's current one (a zombie or forged registration) ends and changes nothing: the
 * attempt runs on and is billed to its own end (libs/contracts `registrationEndsRuns`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEvent } from '@fastgpu/contracts';
import { ProjectionRunner } from '@fastgpu/messaging';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { streamTimesFrom, UsageProjection } from '../src/usage/usage.projection';
import { History, usageIdFor } from './history';

let env: TestEnvironment;
let history: History;
let runner: ProjectionRunner | undefined;

/** Ids of the UsageRecorded events metering published so far. */
async function usageRecordedIds(): Promise<string[]> {
  const ids: string[] = [];
  const consumer = await env.bus.js.consumers.get(env.bus.topology.streams.events, { filter_subjects: `${env.bus.topology.prefix}.evt.metering.>` });
  let pending = (await consumer.info(true)).num_pending;
  while (pending > 0) {
    const m = await consumer.next({ expires: 2000 });
    if (!m) break;
    const decoded = decodeEvent(m.data);
    if (decoded.ok) ids.push(decoded.event.id);
    pending = m.info.pending;
  }
  return ids;
}

beforeAll(async () => {
  env = await createTestEnvironment();
  history = new History(env.bus);
});

afterAll(async () => {
  await runner?.stop();
  await env?.cleanup();
});

/** The usage projection over the test's stream, started once. Batches of three: a registration comes in another batch than the placement it ends. */
async function usageRunner(): Promise<ProjectionRunner> {
  if (!runner) {
    runner = new ProjectionRunner(env.bus, env.database.db, new UsageProjection({ publisher: history.publisher, streamTimes: streamTimesFrom(env.bus) }), { batchMax: 3 });
    await runner.start();
  }
  return runner;
}

describe('usage projection: a node agent restarted under a running attempt', () => {
  it('ends the attempt at the new registration, before its requeued attempt on the same GPUs', async () => {
    // Event times an hour before the log receives them (real now), so receipt bounds nothing else.
    const T = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
    const at = (ms: number) => new Date(ms).toISOString();
    const node = { gpuModel: 'H100', gpuCount: 8, gpuMemoryGb: 80, labels: {} };
    const report = (attempt: number) => ({ jobId: 'j1', tenantId: 'acme', subtaskId: 's1', attempt, nodeId: 'n-restart', leaseEpoch: attempt });
    const placed = (attempt: number, placedAtMs: number) =>
      history.event('SubtaskPlaced', { ...report(attempt), projectId: 'p1', gpuModel: 'H100', gpus: 2, gpuIndices: [0, 1], capacityType: 'on-demand', runtimeMs: 600_000, placedAt: at(placedAtMs) });
    const restart = history.event('NodeRegistered', { nodeId: 'n-restart', ...node, agentEpoch: 2, registeredAt: at(T + 60_000) });
    const attempt2End = history.event('SubtaskCompleted', { ...report(2), exitCode: 0, endedAt: at(T + 121_000) });
    const events = [
      history.event('NodeRegistered', { nodeId: 'n-restart', ...node, agentEpoch: 1, registeredAt: at(T - 60_000) }),
      placed(1, T),
      history.event('SubtaskStarted', { ...report(1), startedAt: at(T + 500) }),
      restart,
      history.event('SubtaskRequeued', { jobId: 'j1', tenantId: 'acme', subtaskId: 's1', previousAttempt: 1, reason: 'node n-restart agent restarted', requeuedAt: at(T + 60_100) }),
      placed(2, T + 60_200),
      history.event('SubtaskStarted', { ...report(2), startedAt: at(T + 61_000) }),
      attempt2End,
      // The lost run's end, reported late: what kept the allocation open before.
      history.event('SubtaskCompleted', { ...report(1), exitCode: 0, endedAt: at(T + 180_000) }),
    ];
    const last = await history.publish(...events);
    expect(await (await usageRunner()).waitFor(last, 15_000)).toBe(true);

    const rows = await env.database.db.selectFrom('metering_allocations').select(['attempt', 'start_ms', 'end_ms', 'end_reason', 'interrupted', 'gpu_ms', 'closed_event_id']).where('subtask_id', '=', 's1').orderBy('attempt').execute();
    expect(rows.map((r) => [Number(r.attempt), Number(r.start_ms), Number(r.end_ms), r.end_reason, r.interrupted, Number(r.gpu_ms), r.closed_event_id])).toEqual([
      [1, T + 500, T + 60_000, 'agent-restarted', true, 2 * 59_500, restart.id],
      [2, T + 61_000, T + 121_000, 'completed', false, 2 * 60_000, attempt2End.id],
    ]);
    // The two intervals on GPUs 0–1 do not overlap.
    expect(Number(rows[0]!.end_ms)).toBeLessThanOrEqual(Number(rows[1]!.start_ms));
    const applied = await env.database.db.selectFrom('metering_applied_events').select('event_id').where('event_id', '=', restart.id).execute();
    expect(applied).toHaveLength(1);
    const usage = await env.database.db.selectFrom('metering_usage_hourly').select((eb) => eb.fn.sum<string>('interrupted_gpu_ms').as('interrupted')).where('subtask_id', '=', 's1').where('attempt', '=', 1).executeTakeFirstOrThrow();
    expect(Number(usage.interrupted)).toBe(2 * 59_500);
    // Its UsageRecorded comes from the registration (billing ends the accrual there).
    await eventually(async () => (await usageRecordedIds()).includes(usageIdFor(restart.id, 's:s1:1')));
  });

  it('ignores a registration with an older agent epoch than the node has: the attempt runs on to its own end', async () => {
    const T = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
    const at = (ms: number) => new Date(ms).toISOString();
    const node = { nodeId: 'n-zombie', gpuModel: 'H100', gpuCount: 8, gpuMemoryGb: 80, labels: {} };
    const report = { jobId: 'j2', tenantId: 'acme', subtaskId: 's2', attempt: 1, nodeId: 'n-zombie', leaseEpoch: 1 };
    const zombie = history.event('NodeRegistered', { ...node, agentEpoch: 2, registeredAt: at(T + 30_000) });
    const end = history.event('SubtaskCompleted', { ...report, exitCode: 0, endedAt: at(T + 90_000) });
    const last = await history.publish(
      history.event('NodeRegistered', { ...node, agentEpoch: 3, registeredAt: at(T - 60_000) }),
      history.event('SubtaskPlaced', { ...report, projectId: 'p1', gpuModel: 'H100', gpus: 2, gpuIndices: [0, 1], capacityType: 'on-demand', runtimeMs: 600_000, placedAt: at(T) }),
      history.event('SubtaskStarted', { ...report, startedAt: at(T + 1_000) }),
      zombie,
      end,
    );
    expect(await (await usageRunner()).waitFor(last, 15_000)).toBe(true);

    const rows = await env.database.db.selectFrom('metering_allocations').select(['start_ms', 'end_ms', 'end_reason', 'interrupted', 'gpu_ms', 'closed_event_id']).where('subtask_id', '=', 's2').execute();
    expect(rows.map((r) => [Number(r.start_ms), Number(r.end_ms), r.end_reason, r.interrupted, Number(r.gpu_ms), r.closed_event_id])).toEqual([[T + 1_000, T + 90_000, 'completed', false, 2 * 89_000, end.id]]);
    expect(await env.database.db.selectFrom('metering_applied_events').select('event_id').where('event_id', '=', zombie.id).execute()).toEqual([]);
    expect(await env.database.db.selectFrom('metering_node_epochs').select(['node_id', 'agent_epoch']).where('node_id', '=', 'n-zombie').execute()).toEqual([{ node_id: 'n-zombie', agent_epoch: 3 }]);
    const ids = await eventually(async () => {
      const published = await usageRecordedIds();
      return published.includes(usageIdFor(end.id, 's:s2:1')) && published;
    });
    expect(ids).not.toContain(usageIdFor(zombie.id, 's:s2:1'));
  });
});
