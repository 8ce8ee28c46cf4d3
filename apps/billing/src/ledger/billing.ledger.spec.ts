/**
 * Proves that the billing ledger never skips money it cannot read (issue 16): a stored
 * `UsageRecorded` that does not decode (U+0000 in its GPU model, published before the schemas
 * refused it) goes to the dead-letter stream AND stops the ledger at that sequence; readiness
 * reports the sequence, event id, type and reason, and a caller waiting for the ledger to catch up
 * is answered at once with them instead of after its timeout. After an event fix-up for that
 * event and a restart, the ledger applies the repaired usage and reaches the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent, Headers, newEventId, registerEventFixUp, withdrawEventFixUp, type DomainEvent } from '@fastgpu/contracts';
import { EventPublisher, lastSequence } from '@fastgpu/messaging';
import { HealthRegistry, systemClock, type Runtime } from '@fastgpu/runtime';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { BillingLedger } from './billing.ledger';

let env: TestEnvironment;

function runtimeOf(health = new HealthRegistry()): Runtime {
  return { config: env.config, bus: env.bus, db: env.database.db, clock: systemClock, health, adminKeyHash: '0'.repeat(64) };
}

beforeAll(async () => {
  env = await createTestEnvironment();
});

afterAll(async () => {
  await env?.cleanup();
});

describe('billing ledger at usage it cannot decode', () => {
  it('dead-letters it, stops at its sequence and says so; continues after a fix-up and a restart', async () => {
    const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'billing-ledger-test');
    const now = new Date();
    const hourStart = new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000);
    const meta = () => ({ id: newEventId(), time: now.toISOString(), tenantId: 'acme', correlationId: 'ledger-test' });
    await publisher.publish(publisher.build('TenantCreated', { tenantId: 'acme', name: 'Acme', billingTimeZone: 'UTC', currency: 'USD', createdAt: hourStart.toISOString() }, meta()));
    const usage = (usageId: string) =>
      publisher.build(
        'UsageRecorded',
        { usageId, tenantId: 'acme', projectId: 'p1', gpuModel: 'H100', capacityType: 'on-demand', gpus: 1, startAt: hourStart.toISOString(), endAt: new Date(hourStart.getTime() + 60_000).toISOString(), gpuMs: 60_000, interrupted: false, sourceSequences: [1] },
        meta(),
      );
    const bad: DomainEvent = usage('u-bad');
    const h = natsHeaders();
    h.set(Headers.eventType, 'UsageRecorded');
    // As an older publisher stored it, before the schemas refused U+0000.
    const { seq: badSequence } = await env.bus.js.publish(bad.subject, encodeEvent({ ...bad, data: { ...(bad.data as object), gpuModel: 'H1\u000000' } } as DomainEvent), { msgID: bad.id, headers: h });
    await publisher.publish(usage('u-after'));
    const last = await lastSequence(env.bus, env.bus.topology.streams.events);

    const health = new HealthRegistry();
    const ledger = new BillingLedger(runtimeOf(health));
    await ledger.onModuleInit();
    try {
      await eventually(() => ledger.runner.health.status === 'stalled', { message: 'the ledger went past usage it cannot decode' });
      const report = await health.report();
      expect(report.ok).toBe(false);
      expect(report.checks['projection:billing-ledger']?.detail).toMatchObject({ status: 'stalled', lastSequence: badSequence - 1, stall: { sequence: badSequence, eventId: bad.id, eventType: 'UsageRecorded', kind: 'undecodable' } });
      const startedAt = performance.now();
      await expect(ledger.catchUp()).rejects.toThrow(new RegExp(`sequence ${badSequence}.*${bad.id}`));
      expect(performance.now() - startedAt).toBeLessThan(2_000);
      const letter = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.deadLetters, { last_by_subj: env.bus.topology.subjects.deadLetter('billing-ledger') });
      expect(letter?.header.get(Headers.deadLetterSequence)).toBe(String(badSequence));
      expect(letter?.header.get(Headers.deadLetterReason)).toMatch(/gpuModel.*U\+0000/);
      // Some time later it still stands there: nothing after the bad usage was applied.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(ledger.runner.lastSequence).toBe(badSequence - 1);
    } finally {
      await ledger.onModuleDestroy();
    }

    registerEventFixUp({ eventId: bad.id, type: 'UsageRecorded', reason: 'test: U+0000 in the GPU model', repair: (envelope) => ({ ...envelope, data: { ...(envelope.data as object), gpuModel: 'H100' } }) });
    try {
      const restartedHealth = new HealthRegistry();
      const restarted = new BillingLedger(runtimeOf(restartedHealth));
      await restarted.onModuleInit();
      try {
        expect(await restarted.catchUp()).toBe(last);
        expect((await restartedHealth.report()).ok).toBe(true);
      } finally {
        await restarted.onModuleDestroy();
      }
    } finally {
      withdrawEventFixUp(bad.id);
    }
  });
});
