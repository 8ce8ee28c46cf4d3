/**
 * Proves what a projection does at an event it cannot apply (issue 14, defence in depth; issue
 * 16, poison handling), on real NATS and Postgres:
 * - a valid event the projection's writes refuse (a CHECK constraint here, like U+0000 in a
 *   column): every event before it is applied, even in the same batch; the projection stops at
 *   exactly that sequence; the stall is logged once at error level with projection, sequence,
 *   event id, type and reason however many retries follow; apply failures are counted per
 *   attempt and the stall once; health and the checkpoint row show it; a reader waiting past it
 *   is answered at once;
 * - an event that does not decode (U+0000 in a stored event): dead-lettered with the reason;
 *   a projection that stops on undecodable events (money) stops at it and reports it, one that
 *   does not goes past it; stopping a runner does not wait for its next retry;
 * - the repair: an event fix-up keyed by the event id, added and the runner restarted, and the
 *   stalled projection continues to the end with the repaired event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { Registry } from 'prom-client';
import { encodeEvent, Headers, newEventId, registerEventFixUp, withdrawEventFixUp, type DomainEvent, type EventType, type StoredEvent } from '@fastgpu/contracts';
import { readCheckpoint } from '@fastgpu/db';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { EventPublisher } from './publisher';
import { lastSequence } from './follower';
import type { Projection, ProjectionLogger, ProjectionTransaction } from './projection';
import { ProjectionRunner } from './projection-runner';
import { projectionApplyFailures, projectionStalls, registerProjectionRunnerMetrics } from './projection-metrics';

let env: TestEnvironment;
let publisher: EventPublisher;
const wanted = new Set<EventType>(['SubtaskStarted']);

/** Writes each started sub-task into its own table, which refuses the id "poison" as a column refuses U+0000. */
function startedProjection(name: string, table: string, options: { stopsOnUndecodable?: boolean } = {}): Projection {
  return {
    name,
    types: wanted,
    ...(options.stopsOnUndecodable ? { stopsOnUndecodable: true } : {}),
    async apply(trx: ProjectionTransaction, events: StoredEvent[]) {
      for (const { event, sequence } of events) {
        const data = event.data as { subtaskId: string };
        await sql`INSERT INTO ${sql.table(table)} (subtask_id, sequence) VALUES (${data.subtaskId}, ${sequence})`.execute(trx);
      }
    },
  };
}

function capturingLogger(): ProjectionLogger & { lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> } {
  const lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  return {
    lines,
    error: (msg, fields) => lines.push({ level: 'error', msg, fields }),
    warn: (msg, fields) => lines.push({ level: 'warn', msg, fields }),
    info: (msg, fields) => lines.push({ level: 'info', msg, fields }),
  };
}

function started(subtaskId: string, id = newEventId()): DomainEvent {
  const now = new Date().toISOString();
  return publisher.build('SubtaskStarted', { jobId: 'j1', tenantId: 'acme', subtaskId, attempt: 1, nodeId: 'n1', leaseEpoch: 1, startedAt: now }, { id, time: now, tenantId: 'acme', correlationId: 'j1' });
}

/** Publishes an event as stored by an older, laxer publisher: the body as given, bypassing makeEvent. */
async function publishStored(event: DomainEvent, data: Record<string, unknown>): Promise<number> {
  const h = natsHeaders();
  h.set(Headers.eventType, event.type);
  const ack = await env.bus.js.publish(event.subject, encodeEvent({ ...event, data } as DomainEvent), { msgID: event.id, headers: h });
  return ack.seq;
}

async function rows(table: string): Promise<string[]> {
  const { rows: found } = await sql<{ subtask_id: string }>`SELECT subtask_id FROM ${sql.table(table)} ORDER BY sequence`.execute(env.database.db);
  return found.map((r) => r.subtask_id);
}

const metricValue = async (metric: typeof projectionApplyFailures, projection: string, kind: string) =>
  (await metric.get()).values.find((v) => v.labels.projection === projection && v.labels.kind === kind)?.value ?? 0;

beforeAll(async () => {
  env = await createTestEnvironment();
  publisher = new EventPublisher(env.bus.js, env.bus.topology, 'stall-test');
  for (const table of ['stall_unappliable', 'stall_money', 'stall_other']) {
    await sql`CREATE TABLE ${sql.table(table)} (subtask_id text PRIMARY KEY CHECK (subtask_id <> 'poison'), sequence bigint NOT NULL)`.execute(env.database.db);
  }
});

afterAll(async () => {
  await env?.cleanup();
});

describe('a projection at an event it cannot apply', () => {
  it('applies what comes before, stops at exactly that event, says so once, and continues after a fix-up and a restart', async () => {
    const before = (await lastSequence(env.bus, env.bus.topology.streams.events)) + 1;
    for (const id of ['a', 'b']) await publisher.publish(started(id));
    const poison = started('poison');
    const { sequence: poisonSequence } = await publisher.publish(poison);
    for (const id of ['c', 'd']) await publisher.publish(started(id));
    const last = await lastSequence(env.bus, env.bus.topology.streams.events);
    expect(poisonSequence).toBe(before + 2);

    const logger = capturingLogger();
    const runner = new ProjectionRunner(env.bus, env.database.db, startedProjection('stall-unappliable', 'stall_unappliable'), { logger, retryDelayMsMax: 40 });
    await runner.start();
    try {
      // All five arrive in one batch: the two before the culprit are applied all the same.
      await eventually(() => (runner.health.stall?.attempts ?? 0) >= 4, { message: 'the runner did not retry the stall' });
      const health = runner.health;
      expect(health.status).toBe('stalled');
      expect(health.lastSequence).toBe(poisonSequence - 1);
      expect(health.stall).toMatchObject({ sequence: poisonSequence, eventId: poison.id, eventType: 'SubtaskStarted', kind: 'unappliable' });
      expect(health.stall?.reason).toMatch(/check constraint/);
      expect(health.error).toContain(`sequence ${poisonSequence}`);
      expect(health.error).toContain(poison.id);
      expect(await rows('stall_unappliable')).toEqual(['a', 'b']);

      const errors = logger.lines.filter((line) => line.level === 'error');
      expect(errors).toHaveLength(1);
      expect(errors[0]!.fields).toMatchObject({ projection: 'stall-unappliable', sequence: poisonSequence, eventId: poison.id, eventType: 'SubtaskStarted', kind: 'unappliable' });
      expect(String(errors[0]!.fields?.reason)).toMatch(/check constraint/);

      expect(await metricValue(projectionApplyFailures, 'stall-unappliable', 'unappliable')).toBeGreaterThanOrEqual(4);
      expect(await metricValue(projectionStalls, 'stall-unappliable', 'unappliable')).toBe(1);
      const registry = new Registry();
      registerProjectionRunnerMetrics(registry);
      registerProjectionRunnerMetrics(registry);
      expect(await registry.metrics()).toMatch(/fastgpu_projection_stalls_total\{projection="stall-unappliable",kind="unappliable"\} 1/);

      const checkpoint = await readCheckpoint(env.database.db, 'stall-unappliable');
      expect(checkpoint).toMatchObject({ status: 'stalled' });
      expect(Number(checkpoint?.stalled_sequence)).toBe(poisonSequence);

      const waitedFrom = performance.now();
      expect(await runner.waitFor(last, 5_000)).toBe(false);
      expect(performance.now() - waitedFrom).toBeLessThan(1_000);
    } finally {
      await runner.stop();
    }

    // The operator's repair: a fix-up for this one event, then a restart.
    registerEventFixUp({ eventId: poison.id, type: 'SubtaskStarted', reason: 'test: the id the writes refuse', repair: (envelope) => ({ ...envelope, data: { ...(envelope.data as object), subtaskId: 'repaired' } }) });
    try {
      const restarted = new ProjectionRunner(env.bus, env.database.db, startedProjection('stall-unappliable', 'stall_unappliable'), { logger, retryDelayMsMax: 40 });
      await restarted.start();
      try {
        expect(await restarted.waitFor(last, 10_000)).toBe(true);
        expect(restarted.health.status).toBe('running');
        expect(await rows('stall_unappliable')).toEqual(['a', 'b', 'repaired', 'c', 'd']);
        expect((await readCheckpoint(env.database.db, 'stall-unappliable'))?.status).toBe('running');
      } finally {
        await restarted.stop();
      }
    } finally {
      withdrawEventFixUp(poison.id);
    }
  });

  it('an undecodable event is dead-lettered; a money projection stops at it, another goes past; a fix-up lets the money projection continue', async () => {
    const { sequence: first } = await publisher.publish(started('m1'));
    const bad = started('placeholder');
    const badSequence = await publishStored(bad, { ...(bad.data as object), subtaskId: 'm\u0000bad' });
    await publisher.publish(started('m2'));
    const last = await lastSequence(env.bus, env.bus.topology.streams.events);

    // Both start after the first test's events (its poison is not theirs to meet).
    for (const projection of ['stall-money', 'stall-other']) await env.database.db.insertInto('projection_checkpoints').values({ projection, last_sequence: first - 1, status: 'running' }).execute();
    const moneyLogger = capturingLogger();
    // Its retries back off without a low cap: stopping it must not wait for the next one.
    const money = new ProjectionRunner(env.bus, env.database.db, startedProjection('stall-money', 'stall_money', { stopsOnUndecodable: true }), { logger: moneyLogger });
    const other = new ProjectionRunner(env.bus, env.database.db, startedProjection('stall-other', 'stall_other'), { logger: capturingLogger(), retryDelayMsMax: 40 });
    await money.start();
    await other.start();
    try {
      expect(await other.waitFor(last, 10_000)).toBe(true);
      expect(await rows('stall_other')).toEqual(['m1', 'm2']);
      expect(await rows('stall_other')).not.toContain('m\u0000bad');

      // Backoff 100, 200, 400, 800 ms: it now waits 1.6 s before the next attempt.
      await eventually(() => (money.health.stall?.attempts ?? 0) >= 5, { message: 'the money projection did not stop' });
      expect(money.health.lastSequence).toBe(badSequence - 1);
      expect(money.health.lastSequence).toBeGreaterThanOrEqual(first);
      expect(money.health.stall).toMatchObject({ sequence: badSequence, eventId: bad.id, eventType: 'SubtaskStarted', kind: 'undecodable' });
      expect(money.health.stall?.reason).toMatch(/invalid SubtaskStarted data: subtaskId/);
      expect(moneyLogger.lines.filter((line) => line.level === 'error')).toHaveLength(1);
      expect(await metricValue(projectionStalls, 'stall-money', 'undecodable')).toBe(1);

      // Dead-lettered once by each projection, however often the money projection retried.
      const letters = await env.bus.jsm.streams.info(env.bus.topology.streams.deadLetters, { subjects_filter: env.bus.topology.subjects.deadLettersAll });
      expect(letters.state.subjects).toMatchObject({ [env.bus.topology.subjects.deadLetter('stall-money')]: 1, [env.bus.topology.subjects.deadLetter('stall-other')]: 1 });
      const letter = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.deadLetters, { last_by_subj: env.bus.topology.subjects.deadLetter('stall-money') });
      expect(letter?.header.get(Headers.deadLetterReason)).toMatch(/subtaskId/);
      expect(letter?.header.get(Headers.deadLetterSequence)).toBe(String(badSequence));
      const stoppingFrom = performance.now();
      await money.stop();
      expect(performance.now() - stoppingFrom).toBeLessThan(500);
    } finally {
      await money.stop();
      await other.stop();
    }

    registerEventFixUp({ eventId: bad.id, type: 'SubtaskStarted', reason: 'test: U+0000 dropped from the id', repair: (envelope) => ({ ...envelope, data: { ...(envelope.data as object), subtaskId: 'm-repaired' } }) });
    try {
      const restarted = new ProjectionRunner(env.bus, env.database.db, startedProjection('stall-money', 'stall_money', { stopsOnUndecodable: true }), { logger: moneyLogger, retryDelayMsMax: 40 });
      await restarted.start();
      try {
        expect(await restarted.waitFor(last, 10_000)).toBe(true);
        expect(await rows('stall_money')).toEqual(['m1', 'm-repaired', 'm2']);
      } finally {
        await restarted.stop();
      }
    } finally {
      withdrawEventFixUp(bad.id);
    }
  });
});
