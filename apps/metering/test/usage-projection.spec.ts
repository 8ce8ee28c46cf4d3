/**
 * Proves the usage projection on real NATS and Postgres: usage is written per hour exactly and
 * UsageRecorded is published once per allocation; a duplicate event (same id, new message) is
 * applied once, forever; a batch that fails after publishing is retried without double usage or
 * a second UsageRecorded; a process killed right after a commit (and one killed inside a rebuild
 * batch) resumes from its checkpoint with nothing repeated; a rebuild equals the live projection
 * row for row (with every live index, though the rebuild builds some only at its end), swaps in
 * one transaction, and the live runner goes on writing the new tables; free text (quotes,
 * backslashes, braces, "NULL") survives the bulk writes verbatim.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { decodeEvent } from '@fastgpu/contracts';
import { lastSequence, ProjectionRunner, type Projection } from '@fastgpu/messaging';
import { HOUR_MS } from '@fastgpu/money';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { Rebuild } from '@fastgpu/replay';
import { streamTimesFrom, UsageProjection } from '../src/usage/usage.projection';
import { usageReplayable } from '../src/usage/usage.replayable';
import { History, usageIdFor } from './history';

const here = path.dirname(fileURLToPath(import.meta.url));
const T = Date.UTC(2026, 2, 1, 10, 30);
let env: TestEnvironment;
let history: History;

function liveProjection(): UsageProjection {
  return new UsageProjection({ publisher: history.publisher, streamTimes: streamTimesFrom(env.bus) });
}

async function usageRecordedIds(): Promise<string[]> {
  const ids: string[] = [];
  const last = await lastSequence(env.bus, env.bus.topology.streams.events);
  if (last === 0) return ids;
  const consumer = await env.bus.js.consumers.get(env.bus.topology.streams.events, { filter_subjects: `${env.bus.topology.prefix}.evt.metering.>` });
  const info = await consumer.info(true);
  let pending = info.num_pending;
  while (pending > 0) {
    const m = await consumer.next({ expires: 2000 });
    if (!m) break;
    const decoded = decodeEvent(m.data);
    if (decoded.ok) ids.push(decoded.event.id);
    pending = m.info.pending;
  }
  return ids;
}

async function jobGpuMs(jobId: string): Promise<number> {
  const row = await env.database.db.selectFrom('metering_usage_hourly').select(sql<number>`coalesce(sum(gpu_ms), 0)::int8`.as('total')).where('job_id', '=', jobId).executeTakeFirstOrThrow();
  return Number(row.total);
}

const awkwardModel = 'H100 "SXM5" \\ {80GB},NULL';

/** A table's index definitions without index and table names: what must match after a rebuild. */
async function indexShapes(table: string): Promise<string[]> {
  const { rows } = await sql<{ indexdef: string }>`SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ${table}`.execute(env.database.db);
  return rows.map((r) => r.indexdef.replace(/^CREATE (UNIQUE )?INDEX \S+ ON \S+ /, '$1')).sort();
}

async function runChild(mode: 'live' | 'rebuild'): Promise<number | null> {
  const tsx = path.resolve(here, '../../../node_modules/.bin/tsx');
  const child = spawn(tsx, [path.join(here, 'fixtures/crash-runner.ts'), mode, env.config.natsUrl, env.config.subjectPrefix, env.config.databaseUrl!], { stdio: ['ignore', 'inherit', 'inherit'] });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(signal === 'SIGKILL' || code === 137 ? null : code)));
}

beforeAll(async () => {
  env = await createTestEnvironment();
  history = new History(env.bus);
});

afterAll(async () => {
  await env?.cleanup();
});

describe('usage projection on NATS and Postgres', () => {
  let runner: ProjectionRunner;

  it('writes hourly GPU-ms exactly and publishes one UsageRecorded per closed allocation', async () => {
    const a = history.subtask({ jobId: 'j1', subtaskId: 's1', startMs: T, endMs: T + 2 * HOUR_MS });
    const b = history.subtask({ jobId: 'j1', subtaskId: 's2', gpus: 2, startMs: T + 1000, endMs: T + 61_000 });
    // Out of order: the completion is logged before the start.
    const c = history.subtask({ jobId: 'j2', subtaskId: 's3', startMs: T, endMs: T + HOUR_MS });
    const last = await history.publish(...a, ...b, c[0]!, c[2]!, c[1]!);
    runner = new ProjectionRunner(env.bus, env.database.db, liveProjection(), { batchMax: 5 });
    await runner.start();
    expect(await runner.waitFor(last, 15_000)).toBe(true);
    const rows = await env.database.db.selectFrom('metering_usage_hourly').select(['job_id', 'subtask_id', 'hour_start', 'gpu_ms']).orderBy('job_id').orderBy('subtask_id').orderBy('hour_start').execute();
    expect(rows.map((r) => [r.subtask_id, r.hour_start.toISOString(), Number(r.gpu_ms)])).toEqual([
      ['s1', '2026-03-01T10:00:00.000Z', 4 * 30 * 60_000],
      ['s1', '2026-03-01T11:00:00.000Z', 4 * HOUR_MS],
      ['s1', '2026-03-01T12:00:00.000Z', 4 * 30 * 60_000],
      ['s2', '2026-03-01T10:00:00.000Z', 2 * 60_000],
      ['s3', '2026-03-01T10:00:00.000Z', 4 * 30 * 60_000],
      ['s3', '2026-03-01T11:00:00.000Z', 4 * 30 * 60_000],
    ]);
    const expected = [usageIdFor(a[2]!.id, 's:s1:1'), usageIdFor(b[2]!.id, 's:s2:1'), usageIdFor(c[1]!.id, 's:s3:1')];
    await eventually(async () => (await usageRecordedIds()).length === 3);
    expect((await usageRecordedIds()).sort()).toEqual(expected.sort());
  });

  it('applies a duplicate event once, even when it arrives as a new message long after', async () => {
    const events = history.subtask({ jobId: 'j3', subtaskId: 's4', startMs: T, endMs: T + 10_000 });
    await history.publish(...events);
    // Beyond the bus dedupe window the same event comes back under another Nats-Msg-Id.
    const again = events.map((e) => ({ ...e }));
    let last = 0;
    for (const e of again) last = (await env.bus.js.publish(e.subject, new TextEncoder().encode(JSON.stringify(e)), { msgID: `${e.id}-again` })).seq;
    expect(await runner.waitFor(last, 15_000)).toBe(true);
    expect(await jobGpuMs('j3')).toBe(4 * 10_000);
    // A repeated NodeLost must not end an allocation placed on the node after the first one.
    const lost = history.event('NodeLost', { nodeId: 'n9', lastHeartbeatAt: new Date(T + 5000).toISOString(), detectedAt: new Date(T + 20_000).toISOString(), reason: 'missed heartbeats' });
    const before = history.subtask({ jobId: 'j4', subtaskId: 's5', nodeId: 'n9', startMs: T });
    await history.publish(...before, lost);
    const after = history.subtask({ jobId: 'j4', subtaskId: 's6', nodeId: 'n9', startMs: T + 60_000 });
    await history.publish(...after);
    last = (await env.bus.js.publish(lost.subject, new TextEncoder().encode(JSON.stringify(lost)), { msgID: `${lost.id}-again` })).seq;
    expect(await runner.waitFor(last, 15_000)).toBe(true);
    expect(await jobGpuMs('j4')).toBe(4 * 5000);
    const open = await env.database.db.selectFrom('metering_allocations').select(['allocation_key', 'end_ms']).where('job_id', '=', 'j4').orderBy('allocation_key').execute();
    expect(open.map((r) => [r.allocation_key, r.end_ms === null ? null : Number(r.end_ms)])).toEqual([
      ['s:s5:1', T + 5000],
      ['s:s6:1', null],
    ]);
  });

  it('retries a batch that failed after publishing: no double usage, no second UsageRecorded', async () => {
    await runner.stop();
    const inner = liveProjection();
    let failures = 0;
    const flaky: Projection = {
      name: inner.name,
      types: inner.types,
      apply: async (trx, events, context) => {
        await inner.apply(trx, events, context);
        if (failures++ === 0) throw new Error('connection reset after publishing');
      },
    };
    const events = history.subtask({ jobId: 'j5', subtaskId: 's7', startMs: T, endMs: T + 3000 });
    const last = await history.publish(...events);
    const before = (await usageRecordedIds()).length;
    const retrying = new ProjectionRunner(env.bus, env.database.db, flaky, { retryDelayMsMax: 200 });
    await retrying.start();
    expect(await retrying.waitFor(last, 15_000)).toBe(true);
    await retrying.stop();
    expect(failures).toBeGreaterThanOrEqual(2);
    expect(await jobGpuMs('j5')).toBe(4 * 3000);
    await eventually(async () => (await usageRecordedIds()).length === before + 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(await usageRecordedIds()).toHaveLength(before + 1);
  });

  it('resumes after a kill -9 right after a commit with nothing repeated or skipped', async () => {
    const events = [
      ...history.subtask({ jobId: 'j6', subtaskId: 's8', startMs: T, endMs: T + 7000 }),
      ...history.subtask({ jobId: 'j6', subtaskId: 's9', startMs: T, endMs: T + 9000 }),
      ...history.subtask({ jobId: 'j6', subtaskId: 's10', startMs: T, endMs: T + 11_000 }),
    ];
    const last = await history.publish(...events);
    const checkpointBefore = Number((await env.database.db.selectFrom('projection_checkpoints').select('last_sequence').where('projection', '=', 'usage').executeTakeFirstOrThrow()).last_sequence);
    expect(await runChild('live')).toBeNull();
    const checkpointAfterKill = Number((await env.database.db.selectFrom('projection_checkpoints').select('last_sequence').where('projection', '=', 'usage').executeTakeFirstOrThrow()).last_sequence);
    expect(checkpointAfterKill).toBeGreaterThan(checkpointBefore);
    expect(checkpointAfterKill).toBeLessThan(last);
    runner = new ProjectionRunner(env.bus, env.database.db, liveProjection());
    await runner.start();
    expect(await runner.waitFor(last, 15_000)).toBe(true);
    expect(await jobGpuMs('j6')).toBe(4 * (7000 + 9000 + 11_000));
    const ids = await usageRecordedIds();
    expect(new Set(ids).size).toBe(ids.length);
    for (const [closing, key] of [[events[2]!, 's:s8:1'], [events[5]!, 's:s9:1'], [events[8]!, 's:s10:1']] as const) expect(ids).toContain(usageIdFor(closing.id, key));
  });

  it('rebuilds into new tables equal row for row, resumes after kill -9, and swaps while live goes on', async () => {
    const extra = [
      history.event('LeaseGranted', { leaseId: 'L1', tenantId: 'acme', projectId: 'p2', nodeId: 'n3', gpuModel: 'A100', gpus: 2, gpuIndices: [0, 1], leaseEpoch: 1, capacityType: 'reserved', grantedAt: new Date(T).toISOString() }),
      history.event('LeaseReleased', { leaseId: 'L1', tenantId: 'acme', nodeId: 'n3', leaseEpoch: 1, reason: 'released', releasedAt: new Date(T + 5 * HOUR_MS).toISOString() }),
      history.event('SubtaskPreempted', { jobId: 'j4', tenantId: 'acme', subtaskId: 's6', attempt: 1, nodeId: 'n9', leaseEpoch: 1, reason: 'high class', preemptedAt: new Date(T + 90_000).toISOString() }),
      history.event('JobCompleted', { jobId: 'j1', tenantId: 'acme', projectId: 'p1', outcome: 'succeeded', subtasksSucceeded: 2, subtasksFailed: 0, subtasksCancelled: 0, gpuMsObserved: 4 * 2 * HOUR_MS + 2 * 60_000, completedAt: new Date(T + 2 * HOUR_MS).toISOString() }),
      // Free text the bulk writes must carry verbatim (they send Postgres array literals).
      ...history.subtask({ jobId: 'j9', subtaskId: 's13', gpuModel: awkwardModel, startMs: T, endMs: T + 3000 }),
    ];
    const last = await history.publish(...extra);
    expect(await runner.waitFor(last, 15_000)).toBe(true);
    const awkward = await env.database.db.selectFrom('metering_usage_hourly').select(['gpu_model', 'gpu_ms']).where('job_id', '=', 'j9').execute();
    expect(awkward).toEqual([{ gpu_model: awkwardModel, gpu_ms: 4 * 3000 }]);

    expect(await runChild('rebuild')).toBeNull();
    const interrupted = await env.database.db.selectFrom('projection_checkpoints').select('last_sequence').where('projection', '=', 'usage@rebuild').executeTakeFirstOrThrow();
    expect(Number(interrupted.last_sequence)).toBeGreaterThan(0);
    expect(Number(interrupted.last_sequence)).toBeLessThan(last);

    const progress: number[] = [];
    const rebuild = new Rebuild(env.bus, env.database.db, usageReplayable, { onProgress: (p) => progress.push(p.sequence), progressIntervalMs: 50 });
    const prepared = await rebuild.prepare();
    expect(prepared).toEqual({ resumedFrom: Number(interrupted.last_sequence), fresh: false });
    // The live runner's own UsageRecorded events follow `last` in the log: the rebuild passes them too.
    const caughtUp = await rebuild.catchUp();
    expect(caughtUp).toBeGreaterThanOrEqual(last);
    expect(progress[progress.length - 1]).toBe(caughtUp);
    // Indexes left off during the catch-up (usageReplayable.deferIndex) are built by its end.
    for (const table of usageReplayable.tables) expect(await indexShapes(`${table}_rebuild`)).toEqual(await indexShapes(table));

    // More history arrives while the rebuild waits: alignment applies it under the live lock.
    const more = history.subtask({ jobId: 'j7', subtaskId: 's11', startMs: T, endMs: T + 4000 });
    const newest = await history.publish(...more);
    expect(await runner.waitFor(newest, 15_000)).toBe(true);
    const compared = await rebuild.alignAndCompare();
    expect(compared.sequence).toBeGreaterThanOrEqual(newest);
    expect(compared.diffs.map((d) => [d.table, d.onlyLive, d.onlyRebuilt])).toEqual(usageReplayable.tables.map((t) => [t, 0, 0]));
    expect(compared.equal).toBe(true);
    expect(compared.diffs.find((d) => d.table === 'metering_usage_hourly')!.liveRows).toBeGreaterThan(5);

    // A damaged live row shows up in the diff.
    await sql`UPDATE metering_usage_hourly SET gpu_ms = gpu_ms + 1 WHERE job_id = 'j7'`.execute(env.database.db);
    const damaged = await rebuild.alignAndCompare();
    expect(damaged.equal).toBe(false);
    expect(damaged.diffs.find((d) => d.table === 'metering_usage_hourly')).toMatchObject({ onlyLive: 1, onlyRebuilt: 1 });

    const swapped = await rebuild.alignAndCompare({ swap: true });
    expect(swapped.swapped).toBe(true);
    expect(await jobGpuMs('j7')).toBe(4 * 4000);
    const checkpoints = await env.database.db.selectFrom('projection_checkpoints').select(['projection', 'last_sequence']).where('projection', 'like', 'usage%').execute();
    expect(checkpoints.map((c) => c.projection)).toEqual(['usage']);
    expect(Number(checkpoints[0]!.last_sequence)).toBe(swapped.sequence);
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int8 AS n FROM metering_usage_hourly_previous WHERE job_id = 'j7'`.execute(env.database.db);
    expect(Number(rows[0]!.n)).toBeGreaterThan(0);

    // The live runner keeps going, now on the swapped-in tables.
    const later = await history.publish(...history.subtask({ jobId: 'j8', subtaskId: 's12', startMs: T, endMs: T + 2000 }));
    expect(await runner.waitFor(later, 15_000)).toBe(true);
    expect(await jobGpuMs('j8')).toBe(4 * 2000);
    await runner.stop();

    // A fresh rebuild in one process trusts its memory of the keys it wrote (ownsTables): with
    // tiny batches every allocation spans batches, and still the tables come out equal.
    const second = new Rebuild(env.bus, env.database.db, usageReplayable, { batchMax: 2 });
    expect((await second.prepare()).fresh).toBe(true);
    await second.catchUp();
    const again = await second.alignAndCompare();
    expect(again.equal).toBe(true);
    await second.discard();
  });
});
