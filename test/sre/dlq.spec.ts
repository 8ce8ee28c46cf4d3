/**
 * Proves the dead-letter tools on real NATS and Postgres, with the consumer that dead-letters in
 * production: a projection runner (libs/messaging ProjectionRunner). An event its projection
 * reads that does not decode lands in the dead-letter stream with the runner as consumer, its
 * original subject, sequence, event id and reason, and the projection goes on; `dlq redrive` of
 * it is refused while it still does not decode (nothing changes), and when forced it fails
 * again and comes back with its count grown; once the event is repaired (an event fix-up, the
 * repair path of docs/operations.md) the redrive is applied by the projection and the dead
 * letter is gone; a redrive of an unknown sequence or of a body that is not even JSON answers
 * clearly and changes nothing; `dlq purge` needs confirmation or --yes.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { Headers, newEventId, registerEventFixUp, withdrawEventFixUp, type EventType, type StoredEvent } from '@fastgpu/contracts';
import { EventPublisher, ProjectionRunner, type Projection } from '@fastgpu/messaging';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { runEventsCli, type CliIo } from '../../apps/fastgpu/src/cli/events/cli';

const handled: string[] = [];
/** A projection of TenantCreated that only remembers which tenants it applied. */
const tenantsSeen: Projection = {
  name: 'dlq-test-tenants',
  types: new Set<EventType>(['TenantCreated']),
  async apply(_trx, events: StoredEvent[]) {
    for (const { event } of events) if (event.type === 'TenantCreated') handled.push(event.data.tenantId);
  },
};

let env: TestEnvironment;
let runner: ProjectionRunner;
let publisher: EventPublisher;

async function cli(args: string[], confirm?: (q: string) => Promise<boolean>): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), ...(confirm ? { confirm } : {}) };
  const code = await runEventsCli(args, { bus: env.bus, io });
  return { code, out, err };
}
async function letters(): Promise<Array<{ sequence: number; consumer: string; count: number; reason: string; originalSubject: string; deliveries: number; eventId?: string }>> {
  const { code, out } = await cli(['dlq', 'list', '--json']);
  expect(code).toBe(0);
  return out.map((l) => JSON.parse(l));
}
async function dlqMessages(): Promise<number> {
  return (await env.bus.jsm.streams.info(env.bus.topology.streams.deadLetters)).state.messages;
}

beforeAll(async () => {
  env = await createTestEnvironment();
  publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test');
  runner = new ProjectionRunner(env.bus, env.database.db, tenantsSeen, { retryDelayMsMax: 200 });
  await runner.start();
});
afterAll(async () => {
  await runner?.stop();
  await env?.cleanup();
});

describe('dlq', () => {
  it('redrives a dead letter: refused while it does not decode, back with the count grown when forced, applied once repaired', async () => {
    const id = newEventId();
    const event = publisher.build('TenantCreated', { tenantId: 'poison', name: 'Poison', billingTimeZone: 'UTC', currency: 'USD', createdAt: '2026-11-01T00:00:00.000Z' }, { id, time: '2026-11-01T00:00:00.000Z', tenantId: 'poison', correlationId: id });
    // A producer bug: the event leaves out a required field, so no reader can decode it.
    const { name: _name, ...withoutName } = event.data;
    const h = natsHeaders();
    h.set(Headers.eventType, event.type);
    const original = await env.bus.js.publish(event.subject, new TextEncoder().encode(JSON.stringify({ ...event, data: withoutName })), { msgID: id, headers: h });

    const [first] = await eventually(async () => ((await letters()).length === 1 ? letters() : undefined), { message: 'no dead letter' });
    expect(first).toMatchObject({ consumer: 'dlq-test-tenants', count: 1, originalSubject: env.bus.topology.subjects.tenant('poison'), eventId: id });
    expect(first!.reason).toMatch(/name/);
    const shown = await cli(['dlq', 'show', String(first!.sequence)]);
    expect(shown.out.join('\n')).toContain(`${Headers.deadLetterSequence}: ${original.seq}`);
    expect(shown.out.join('\n')).toContain('"tenantId": "poison"');
    // The projection went past it (it is not a money projection).
    await eventually(() => runner.lastSequence >= original.seq, { message: 'the projection did not go past the dead letter' });
    expect(handled).not.toContain('poison');

    // Unknown sequence: a clear answer, nothing changes.
    const unknown = await cli(['dlq', 'redrive', '999999']);
    expect(unknown.code).toBe(2);
    expect(unknown.err.join()).toMatch(/no dead letter #999999/);
    expect(await dlqMessages()).toBe(1);

    // While it still does not decode: refused, nothing changed.
    const refused = await cli(['dlq', 'redrive', String(first!.sequence)]);
    expect(refused.code).toBe(3);
    expect(refused.err.join()).toMatch(/still does not decode.*nothing changed/);
    expect((await letters()).map((l) => l.sequence)).toEqual([first!.sequence]);

    // Forced while the cause is not fixed: it fails again and comes back with its count grown.
    const again = await cli(['dlq', 'redrive', String(first!.sequence), '--force']);
    expect(again.code).toBe(0);
    const [second] = await eventually(async () => {
      const list = await letters();
      return list.length === 1 && list[0]!.sequence !== first!.sequence ? list : undefined;
    }, { message: 'redriven message did not come back to the dead letters' });
    expect(second).toMatchObject({ consumer: 'dlq-test-tenants', count: 2, eventId: id });
    expect(handled).not.toContain('poison');

    // Repair the event (a fix-up names it and mends its data), redrive: applied, and the dead letter is gone.
    registerEventFixUp({ eventId: id, type: 'TenantCreated', reason: 'dlq test: the producer left out the name', repair: (envelope) => ({ ...envelope, data: { ...(envelope.data as object), name: 'Poison' } }) });
    try {
      const fixed = await cli(['dlq', 'redrive', String(second!.sequence)]);
      expect(fixed.code).toBe(0);
      await eventually(() => handled.includes('poison'), { message: 'redriven message was not applied after the repair' });
    } finally {
      withdrawEventFixUp(id);
    }
    expect(await letters()).toEqual([]);
    const redriven = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.events, { last_by_subj: env.bus.topology.subjects.tenant('poison') });
    expect(redriven?.header.get(Headers.eventType)).toBe('TenantCreated');
    expect(redriven?.header.get('Fastgpu-Redrive-Count')).toBe('2');
  });

  it('refuses to redrive a body that still does not decode, and changes nothing', async () => {
    await env.bus.js.publish(env.bus.topology.subjects.tenant('garbage'), new TextEncoder().encode('{not json'), { msgID: 'garbage-dlq' });
    const [letter] = await eventually(async () => ((await letters()).length === 1 ? letters() : undefined));
    expect(letter!.reason).toMatch(/not JSON/);
    const eventsBefore = (await env.bus.jsm.streams.info(env.bus.topology.streams.events)).state.last_seq;
    const refused = await cli(['dlq', 'redrive', String(letter!.sequence)]);
    expect(refused.code).toBe(3);
    expect(refused.err.join()).toMatch(/still does not decode.*nothing changed/);
    const all = await cli(['dlq', 'redrive', '--all']);
    expect(all.code).toBe(3);
    expect((await letters()).map((l) => l.sequence)).toEqual([letter!.sequence]);
    expect((await env.bus.jsm.streams.info(env.bus.topology.streams.events)).state.last_seq).toBe(eventsBefore);
  });

  it('purges only with confirmation or --yes', async () => {
    expect(await dlqMessages()).toBe(1);
    const noTty = await cli(['dlq', 'purge']);
    expect(noTty.code).toBe(2);
    expect(noTty.err.join()).toMatch(/--yes/);
    const declined = await cli(['dlq', 'purge'], async () => false);
    expect(declined.code).toBe(1);
    expect(await dlqMessages()).toBe(1);
    const questions: string[] = [];
    const confirmed = await cli(['dlq', 'purge'], async (q) => (questions.push(q), true));
    expect(confirmed.code).toBe(0);
    expect(questions[0]).toMatch(/Purge 1 dead letter/);
    expect(await dlqMessages()).toBe(0);
  });
});
