/**
 * Proves the dead-letter tools on real NATS: a message whose handler keeps failing lands in
 * the dead-letter stream with its consumer, original subject, delivery count and reason;
 * `dlq redrive` of a message whose cause is not fixed fails again and returns with its count
 * grown; after the fix the redrive is handled and the dead letter is gone; a redrive of an
 * unknown sequence or of a body that still does not decode answers clearly and changes
 * nothing; `dlq purge` needs confirmation or --yes.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Payload, RpcException, type MicroserviceOptions } from '@nestjs/microservices';
import { Headers, newEventId, type DomainEvent } from '@fastgpu/contracts';
import { EventPublisher, JetStreamServer, OnEvent } from '@fastgpu/messaging';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { runEventsCli, type CliIo } from '../../apps/fastgpu/src/cli/events/cli';

const broken = new Set<string>();
const handled: string[] = [];

@Controller()
class FragileHandler {
  @OnEvent('TenantCreated')
  handle(@Payload() event: DomainEvent<'TenantCreated'>): void {
    if (broken.has(event.data.tenantId)) // RpcException keeps its message through Nest's exception layer (a plain Error becomes "Internal server error").
      throw new RpcException(`tenant ${event.data.tenantId} is not supported yet`);
    handled.push(event.data.tenantId);
  }
}
@Module({ controllers: [FragileHandler] })
class FragileModule {}

let env: TestEnvironment;
let app: Awaited<ReturnType<typeof NestFactory.createMicroservice>>;
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
  app = await NestFactory.createMicroservice<MicroserviceOptions>(FragileModule, {
    strategy: new JetStreamServer({ bus: env.bus, service: 'fragile', durable: 'fragile', maxDeliver: 2 }),
    logger: false,
  });
  await app.listen();
});
afterAll(async () => {
  await app?.close();
  await env?.cleanup();
});

describe('dlq', () => {
  it('redrives a dead letter: fails again with the count grown while broken, succeeds after the fix', async () => {
    broken.add('poison');
    const id = newEventId();
    const event = publisher.build('TenantCreated', { tenantId: 'poison', name: 'Poison', billingTimeZone: 'UTC', currency: 'USD', createdAt: '2026-11-01T00:00:00.000Z' }, { id, time: '2026-11-01T00:00:00.000Z', tenantId: 'poison', correlationId: id });
    const original = await publisher.publish(event);

    const [first] = await eventually(async () => ((await letters()).length === 1 ? letters() : undefined), { message: 'no dead letter' });
    expect(first).toMatchObject({ consumer: 'fragile', count: 1, deliveries: 2, originalSubject: env.bus.topology.subjects.tenant('poison'), eventId: id });
    expect(first!.reason).toMatch(/tenant poison is not supported yet/);
    const shown = await cli(['dlq', 'show', String(first!.sequence)]);
    expect(shown.out.join('\n')).toContain(`${Headers.deadLetterSequence}: ${original.sequence}`);
    expect(shown.out.join('\n')).toContain('"tenantId": "poison"');

    // Unknown sequence: a clear answer, nothing changes.
    const unknown = await cli(['dlq', 'redrive', '999999']);
    expect(unknown.code).toBe(2);
    expect(unknown.err.join()).toMatch(/no dead letter #999999/);
    expect(await dlqMessages()).toBe(1);

    // Redrive while the cause is not fixed: it fails again and comes back with its count grown.
    const again = await cli(['dlq', 'redrive', String(first!.sequence)]);
    expect(again.code).toBe(0);
    const [second] = await eventually(async () => {
      const list = await letters();
      return list.length === 1 && list[0]!.sequence !== first!.sequence ? list : undefined;
    }, { message: 'redriven message did not come back to the dead letters' });
    expect(second).toMatchObject({ consumer: 'fragile', count: 2, eventId: id });
    expect(handled).not.toContain('poison');

    // Fix the cause, redrive: handled, and the dead letter is gone.
    broken.delete('poison');
    const fixed = await cli(['dlq', 'redrive', String(second!.sequence)]);
    expect(fixed.code).toBe(0);
    await eventually(() => handled.includes('poison'), { message: 'redriven message was not handled after the fix' });
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
