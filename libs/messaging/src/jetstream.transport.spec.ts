/**
 * Proves the transport on a real nats-server: handlers are Nest `@EventPattern` methods; a
 * handled message is acked once; a failing handler is redelivered; a duplicate `Nats-Msg-Id`
 * is stored once; an undecodable body lands in the dead-letter stream with its reason while
 * the consumer goes on; the projection runner applies batches with its checkpoint.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Payload, Ctx, type MicroserviceOptions } from '@nestjs/microservices';
import { Headers, newEventId, type DomainEvent } from '@fastgpu/contracts';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { sql } from 'kysely';
import { EventPublisher } from './publisher';
import { JetStreamContext, JetStreamServer, OnEvent } from './jetstream.transport';
import { ProjectionRunner, type Projection } from './projection-runner';

const seen: Array<{ id: string; delivery: number }> = [];
let failFirstDeliveryOf: string | undefined;

@Controller()
class TenantsHandler {
  @OnEvent('TenantCreated')
  handle(@Payload() event: DomainEvent<'TenantCreated'>, @Ctx() ctx: JetStreamContext): void {
    seen.push({ id: event.data.tenantId, delivery: ctx.deliveryCount });
    if (event.data.tenantId === failFirstDeliveryOf && ctx.deliveryCount === 1) throw new Error('transient failure');
  }
}

@Module({ controllers: [TenantsHandler] })
class TestModule {}

let env: TestEnvironment;
let publisher: EventPublisher;
let server: JetStreamServer;
let app: Awaited<ReturnType<typeof NestFactory.createMicroservice>>;

function tenantCreated(tenantId: string, id = newEventId()) {
  return publisher.build('TenantCreated', { tenantId, name: tenantId, billingTimeZone: 'UTC', currency: 'USD', createdAt: '2026-11-01T00:00:00.000Z' }, { id, time: '2026-11-01T00:00:00.000Z', tenantId, correlationId: id });
}

beforeAll(async () => {
  env = await createTestEnvironment();
  publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test');
  server = new JetStreamServer({ bus: env.bus, service: 'test', durable: 'transport-test', maxDeliver: 3 });
  app = await NestFactory.createMicroservice<MicroserviceOptions>(TestModule, { strategy: server, logger: false });
  await app.listen();
});

afterAll(async () => {
  await app?.close();
  await env?.cleanup();
});

describe('JetStream transport', () => {
  it('delivers an event to its @EventPattern handler and acks it once', async () => {
    await publisher.publish(tenantCreated('acme'));
    await eventually(() => seen.some((s) => s.id === 'acme'));
    const info = await env.bus.jsm.consumers.info(env.bus.topology.streams.events, 'transport-test');
    await eventually(async () => (await env.bus.jsm.consumers.info(env.bus.topology.streams.events, 'transport-test')).num_ack_pending === 0);
    expect(info.config.filter_subject).toBe(env.bus.topology.subjects.eventsAll);
    expect(seen.filter((s) => s.id === 'acme')).toHaveLength(1);
  });

  it('redelivers a message whose handler failed, then acks it', async () => {
    failFirstDeliveryOf = 'flaky';
    await publisher.publish(tenantCreated('flaky'));
    await eventually(() => seen.filter((s) => s.id === 'flaky').length >= 2, { timeoutMs: 10_000 });
    expect(seen.filter((s) => s.id === 'flaky').map((s) => s.delivery)).toEqual([1, 2]);
  });

  it('stores a duplicate Nats-Msg-Id once', async () => {
    const event = tenantCreated('dup');
    const first = await publisher.publish(event);
    const second = await publisher.publish(event);
    expect(second.duplicate).toBe(true);
    expect(second.sequence).toBe(first.sequence);
    await eventually(() => seen.some((s) => s.id === 'dup'));
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.filter((s) => s.id === 'dup')).toHaveLength(1);
  });

  it('sends an undecodable message to the dead-letter stream with the reason and goes on', async () => {
    await env.bus.js.publish(env.bus.topology.subjects.tenant('garbage'), new TextEncoder().encode('{not json'), { msgID: 'garbage-1' });
    await publisher.publish(tenantCreated('after-garbage'));
    await eventually(() => seen.some((s) => s.id === 'after-garbage'));
    const dlq = await env.bus.js.consumers.get(env.bus.topology.streams.deadLetters);
    const letter = await dlq.next({ expires: 5000 });
    expect(letter).not.toBeNull();
    expect(letter!.headers?.get(Headers.deadLetterReason)).toMatch(/not JSON/);
    expect(letter!.headers?.get(Headers.deadLetterSubject)).toBe(env.bus.topology.subjects.tenant('garbage'));
    expect(letter!.headers?.get(Headers.deadLetterConsumer)).toBe('transport-test');
    expect(new TextDecoder().decode(letter!.data)).toBe('{not json');
  });
});

describe('ProjectionRunner', () => {
  it('applies events with the checkpoint in one transaction, resumes after restart and never repeats', async () => {
    const db = env.database.db;
    await sql`CREATE TABLE tenant_names (tenant_id text PRIMARY KEY, sequence bigint NOT NULL)`.execute(db);
    const projection: Projection = {
      name: 'tenant-names',
      types: new Set(['TenantCreated']),
      async apply(trx, events) {
        for (const { event, sequence } of events) {
          if (event.type !== 'TenantCreated') continue;
          await trx.insertInto('tenant_names').values({ tenant_id: event.data.tenantId, sequence }).execute();
        }
      },
    };
    const runner = new ProjectionRunner(env.bus, db, projection);
    await runner.start();
    const last = await publisher.publish(tenantCreated('p1'));
    expect(await runner.waitFor(last.sequence)).toBe(true);
    await runner.stop();
    const again = await publisher.publish(tenantCreated('p2'));
    const restarted = new ProjectionRunner(env.bus, db, projection);
    await restarted.start();
    expect(await restarted.waitFor(again.sequence)).toBe(true);
    await restarted.stop();
    const rows = await db.selectFrom('tenant_names').select('tenant_id').orderBy('sequence').execute();
    // A primary-key violation would have stalled the runner: every event was applied once.
    expect(rows.map((r) => r.tenant_id)).toEqual(['acme', 'flaky', 'dup', 'after-garbage', 'p1', 'p2']);
    expect(restarted.health.status).toBe('stopped');
  });

  it('applies a lone live event at once and batches a burst into few transactions', async () => {
    const db = env.database.db;
    await sql`CREATE TABLE burst (tenant_id text PRIMARY KEY)`.execute(db);
    let batches = 0;
    const projection: Projection = {
      name: 'burst',
      types: new Set(['TenantCreated']),
      async apply(trx, events) {
        await trx.insertInto('burst').values(events.map((e) => ({ tenant_id: (e.event as DomainEvent<'TenantCreated'>).data.tenantId }))).onConflict((oc) => oc.doNothing()).execute();
      },
    };
    const runner = new ProjectionRunner(env.bus, db, projection, { onProgress: () => batches++ });
    await runner.start();
    // The tail: one event and nothing after it must not wait for a next one.
    const lone = await publisher.publish(tenantCreated('lone'));
    expect(await runner.waitFor(lone.sequence, 3000)).toBe(true);
    const before = batches;
    const acks = await publisher.publishAll(Array.from({ length: 300 }, (_, i) => tenantCreated(`burst-${i}`)));
    expect(await runner.waitFor(Math.max(...acks.map((a) => a.sequence)), 10_000)).toBe(true);
    await runner.stop();
    expect((await db.selectFrom('burst').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n).toBe(301 + 6);
    // 300 events arriving together are applied in far fewer transactions than events.
    expect(batches - before).toBeLessThan(100);
  });
});
