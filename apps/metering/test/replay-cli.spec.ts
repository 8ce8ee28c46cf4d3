/**
 * Proves the operator commands on real NATS and Postgres: `replay usage` rebuilds, reports
 * progress and an identical comparison while the live projection runs; with the live projection
 * standing still behind (stopped or stalled), `--swap` still swaps and moves its checkpoint to
 * the rebuild's; `--discard` drops the copy; `reconcile` lists differing jobs with exit code 1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProjectionRunner } from '@fastgpu/messaging';
import { HOUR_MS } from '@fastgpu/money';
import { runReplayCommand } from '@fastgpu/replay';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { replayableProjections } from '../../fastgpu/src/cli/replay.registry';
import { runReconcile } from '../src/cli/reconcile';
import { streamTimesFrom, UsageProjection } from '../src/usage/usage.projection';
import { History } from './history';

const T = Date.UTC(2026, 4, 1, 8);
let env: TestEnvironment;
let history: History;

function io() {
  const lines: string[] = [];
  return { lines, io: { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) } };
}

beforeAll(async () => {
  env = await createTestEnvironment();
  history = new History(env.bus);
});

afterAll(async () => {
  await env?.cleanup();
});

describe('replay and reconcile commands', () => {
  it('rebuilds usage next to the live projection and finds it identical', async () => {
    const last = await history.publish(
      ...history.subtask({ jobId: 'c1', subtaskId: 'c1a', startMs: T, endMs: T + HOUR_MS }),
      history.event('JobCompleted', { jobId: 'c1', tenantId: 'acme', projectId: 'p1', outcome: 'succeeded', subtasksSucceeded: 1, subtasksFailed: 0, subtasksCancelled: 0, gpuMsObserved: 4 * HOUR_MS - 1000, completedAt: new Date(T + HOUR_MS).toISOString() }),
    );
    const live = new ProjectionRunner(env.bus, env.database.db, new UsageProjection({ publisher: history.publisher, streamTimes: streamTimesFrom(env.bus) }));
    await live.start();
    expect(await live.waitFor(last)).toBe(true);
    const { lines, io: out } = io();
    expect(await runReplayCommand(['usage'], replayableProjections, { bus: env.bus, db: env.database.db, io: out })).toBe(0);
    expect(lines.join('\n')).toMatch(/rebuilding from sequence 1/);
    expect(lines.join('\n')).toMatch(/usage: compared at sequence \d+: identical/);
    expect(lines.join('\n')).toMatch(/metering_usage_hourly: live 1 rows, rebuilt 1 rows, identical/);
    await live.stop();

    const reconcile = io();
    expect(await runReconcile([], env.database.db, reconcile.io)).toBe(1);
    expect(reconcile.lines.join('\n')).toMatch(/job c1 \(tenant acme, succeeded\): metered 14400000 GPU-ms, scheduler observed 14399000, delta \+1000/);
  });

  it('swaps over a live projection that stands still behind the rebuild, moving its checkpoint', async () => {
    const last = await history.publish(...history.subtask({ jobId: 'c2', subtaskId: 'c2a', startMs: T, endMs: T + 1000 }));
    const { lines, io: out } = io();
    expect(await runReplayCommand(['usage', '--swap'], replayableProjections, { bus: env.bus, db: env.database.db, io: out, alignWaitIntervalMs: 20 })).toBe(0);
    expect(lines.join('\n')).toMatch(/resuming the rebuild after sequence/);
    expect(lines.join('\n')).toMatch(/behind the rebuild at \d+ \(stopped or stalled\): compared unaligned/);
    expect(lines.join('\n')).toMatch(/swapped/);
    const checkpoint = await env.database.db.selectFrom('projection_checkpoints').select('last_sequence').where('projection', '=', 'usage').executeTakeFirstOrThrow();
    expect(Number(checkpoint.last_sequence)).toBeGreaterThanOrEqual(last);
    const rows = await env.database.db.selectFrom('metering_usage_hourly').select('job_id').orderBy('job_id').execute();
    expect(rows.map((r) => r.job_id)).toEqual(['c1', 'c2']);

    const discard = io();
    expect(await runReplayCommand(['usage', '--discard'], replayableProjections, { bus: env.bus, db: env.database.db, io: discard.io })).toBe(0);
    expect(await runReplayCommand(['nope'], replayableProjections, { bus: env.bus, db: env.database.db, io: discard.io })).toBe(2);
  });
});
