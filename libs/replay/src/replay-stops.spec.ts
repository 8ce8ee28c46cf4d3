/**
 * Proves that a replay over an event it cannot apply ends, naming it (issue 16: it looped
 * forever): `npm run replay -- <projection>` exits with code 3 and prints the sequence, event id,
 * type and reason within seconds,
 * - for a valid event the projection's writes refuse (a CHECK constraint): the events before it
 *   are in the rebuild tables, even those of the same batch;
 * - for an undecodable event of a projection that stops on those (money), while a projection
 *   that does not goes past it.
 * After a fix-up for the event, the same command resumes and completes with exit code 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { encodeEvent, Headers, newEventId, registerEventFixUp, withdrawEventFixUp, type DomainEvent, type EventType, type StoredEvent } from '@fastgpu/contracts';
import { EventPublisher, lastSequence, type Projection, type ProjectionTransaction } from '@fastgpu/messaging';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { runReplayCommand } from './cli';
import type { ReplayableProjection } from './rebuild';

let env: TestEnvironment;
let publisher: EventPublisher;
const wanted = new Set<EventType>(['SubtaskStarted']);

function replayable(name: string, table: string, options: { stopsOnUndecodable?: boolean } = {}): ReplayableProjection {
  const projection: Projection = {
    name,
    types: wanted,
    ...(options.stopsOnUndecodable ? { stopsOnUndecodable: true } : {}),
    async apply(trx: ProjectionTransaction, events: StoredEvent[], context) {
      for (const { event, sequence } of events) {
        await sql`INSERT INTO ${sql.table(context.table(table))} (subtask_id, sequence) VALUES (${(event.data as { subtaskId: string }).subtaskId}, ${sequence})`.execute(trx);
      }
    },
  };
  return { name, tables: [table], create: () => projection };
}

function started(subtaskId: string): DomainEvent {
  const now = new Date().toISOString();
  return publisher.build('SubtaskStarted', { jobId: 'j1', tenantId: 'acme', subtaskId, attempt: 1, nodeId: 'n1', leaseEpoch: 1, startedAt: now }, { id: newEventId(), time: now, tenantId: 'acme', correlationId: 'j1' });
}

function capture() {
  const lines: string[] = [];
  return { lines, io: { out: (line: string) => lines.push(line), err: (line: string) => lines.push(line) } };
}

async function rebuilt(table: string): Promise<string[]> {
  const { rows } = await sql<{ subtask_id: string }>`SELECT subtask_id FROM ${sql.table(`${table}_rebuild`)} ORDER BY sequence`.execute(env.database.db);
  return rows.map((r) => r.subtask_id);
}

beforeAll(async () => {
  env = await createTestEnvironment();
  publisher = new EventPublisher(env.bus.js, env.bus.topology, 'replay-stop-test');
  await sql`CREATE TABLE replay_refusing (subtask_id text PRIMARY KEY CHECK (subtask_id <> 'poison'), sequence bigint NOT NULL)`.execute(env.database.db);
  for (const table of ['replay_money', 'replay_other']) await sql`CREATE TABLE ${sql.table(table)} (subtask_id text PRIMARY KEY, sequence bigint NOT NULL)`.execute(env.database.db);
});

afterAll(async () => {
  await env?.cleanup();
});

describe('a replay over an event it cannot apply', () => {
  it('exits with code 3 naming the sequence, event and reason; resumes after a fix-up', async () => {
    for (const id of ['a', 'b']) await publisher.publish(started(id));
    const poison = started('poison');
    const { sequence } = await publisher.publish(poison);
    await publisher.publish(started('c'));
    const registry = { refusing: replayable('refusing', 'replay_refusing') };

    const { lines, io } = capture();
    const startedAt = performance.now();
    expect(await runReplayCommand(['refusing'], registry, { bus: env.bus, db: env.database.db, io, alignWaitIntervalMs: 10 })).toBe(3);
    expect(performance.now() - startedAt).toBeLessThan(15_000);
    const output = lines.join('\n');
    expect(output).toContain(`cannot apply sequence ${sequence} (event ${poison.id}, SubtaskStarted), unappliable:`);
    expect(output).toMatch(/check constraint/);
    expect(output).toContain(`the rebuild stands at sequence ${sequence - 1}`);
    expect(await rebuilt('replay_refusing')).toEqual(['a', 'b']);

    registerEventFixUp({ eventId: poison.id, type: 'SubtaskStarted', reason: 'test', repair: (envelope) => ({ ...envelope, data: { ...(envelope.data as object), subtaskId: 'repaired' } }) });
    try {
      const again = capture();
      // The live projection never ran: it compares unaligned, and differs (exit 1), having replayed everything.
      const code = await runReplayCommand(['refusing'], registry, { bus: env.bus, db: env.database.db, io: again.io, alignWaitIntervalMs: 10 });
      expect(again.lines.join('\n')).toMatch(/resuming the rebuild after sequence/);
      expect(code).toBe(1);
      expect(await rebuilt('replay_refusing')).toEqual(['a', 'b', 'repaired', 'c']);
    } finally {
      withdrawEventFixUp(poison.id);
    }
  });

  it('stops a money projection at an undecodable event it reads; another goes past it', async () => {
    const first = (await lastSequence(env.bus, env.bus.topology.streams.events)) + 1;
    await publisher.publish(started('m1'));
    const bad = started('placeholder');
    const h = natsHeaders();
    h.set(Headers.eventType, 'SubtaskStarted');
    const { seq: badSequence } = await env.bus.js.publish(bad.subject, encodeEvent({ ...bad, data: { ...(bad.data as object), subtaskId: 'm\u0000' } } as DomainEvent), { msgID: bad.id, headers: h });
    await publisher.publish(started('m2'));
    expect(badSequence).toBe(first + 1);

    const money = capture();
    expect(await runReplayCommand(['money'], { money: replayable('money', 'replay_money', { stopsOnUndecodable: true }) }, { bus: env.bus, db: env.database.db, io: money.io, alignWaitIntervalMs: 10 })).toBe(3);
    expect(money.lines.join('\n')).toContain(`cannot apply sequence ${badSequence} (event ${bad.id}, SubtaskStarted), undecodable: invalid SubtaskStarted data: subtaskId`);
    // Everything before it was replayed, nothing after.
    expect(await rebuilt('replay_money')).toEqual(['a', 'b', 'poison', 'c', 'm1']);

    const other = capture();
    expect(await runReplayCommand(['other'], { other: replayable('other', 'replay_other') }, { bus: env.bus, db: env.database.db, io: other.io, alignWaitIntervalMs: 10 })).not.toBe(3);
    expect(await rebuilt('replay_other')).toEqual(['a', 'b', 'poison', 'c', 'm1', 'm2']);
  });
});
