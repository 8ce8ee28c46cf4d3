/**
 * Proves that publishBatch, metering's batch publisher (core publishes counted by their PubAcks),
 * stores exactly what the plain EventPublisher.publish stores, on real NATS: for batches
 * fast-check generates (several event types, tenants or none, trace parents or none, ids
 * repeated within the batch), each event is stored once under its id, with the same subject,
 * the same body bytes and the same headers as the plain publisher writes for a twin event that
 * differs only in its id; a repeated id is reported as a duplicate by both.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { publishBatch } from './ack-counting-publisher';

let env: TestEnvironment;

beforeAll(async () => {
  env = await createTestEnvironment();
});

afterAll(async () => {
  await env?.cleanup();
});

type Spec = { kind: 'started' | 'node' | 'drained'; tenant: string | null; trace: boolean; repeatOf: number | null };

async function stored(id: string) {
  const stream = env.bus.topology.streams.events;
  const found: Array<{ subject: string; body: string; headers: Record<string, string[]> }> = [];
  const info = await env.bus.jsm.streams.info(stream);
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await env.bus.jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (!m || m.header.get('Nats-Msg-Id') !== id) continue;
    const headers: Record<string, string[]> = {};
    for (const [key, values] of m.header) if (key !== 'Nats-Msg-Id') headers[key] = values;
    found.push({ subject: m.subject, body: new TextDecoder().decode(m.data), headers });
  }
  return found;
}

describe('publishBatch', () => {
  it('stores what EventPublisher.publish stores, once per id', async () => {
    const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'batch-publisher-test');
    const spec = fc.record({ kind: fc.constantFrom<Spec['kind']>('started', 'node', 'drained'), tenant: fc.constantFrom('acme', 'other', null), trace: fc.boolean(), repeatOf: fc.option(fc.nat(), { nil: null }) });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(spec, { minLength: 1, maxLength: 8 }), async (specs) => {
        run++;
        const build = (prefix: string, s: Spec, i: number): DomainEvent => {
          const meta = { id: `${prefix}-${run}-${i}`, time: '2026-03-01T00:00:00.000Z', tenantId: s.tenant, correlationId: 'c1', ...(s.trace ? { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } : {}) };
          if (s.kind === 'started') return publisher.build('SubtaskStarted', { jobId: 'j1', tenantId: s.tenant ?? 'acme', subtaskId: 'j1s0', attempt: i + 1, nodeId: 'n1', leaseEpoch: 1, startedAt: '2026-03-01T00:00:00.000Z' }, meta);
          if (s.kind === 'node') return publisher.build('NodeRegistered', { nodeId: `n${i}`, gpuModel: 'H100', gpuCount: 8, gpuMemoryGb: 80, labels: { zone: 'é' }, agentEpoch: 1, registeredAt: '2026-03-01T00:00:00.000Z' }, meta);
          return publisher.build('NodeDrained', { nodeId: `n${i}`, reason: 'maintenance \u2028 window', drainedAt: '2026-03-01T00:00:00.000Z', automatic: false }, meta);
        };
        // Index of the event each entry repeats (an earlier one), or its own.
        const sources = specs.map((s, i) => (s.repeatOf !== null && i > 0 ? s.repeatOf % i : i));
        const plainEvents = specs.map((s, i) => build('plain', s, i));
        const batchEvents = specs.map((s, i) => build('batch', s, i));
        const plainBatch = sources.map((k) => plainEvents[k]!);
        const batchBatch = sources.map((k) => batchEvents[k]!);
        let plainDuplicates = 0;
        for (const event of plainBatch) if ((await publisher.publish(event)).duplicate) plainDuplicates++;
        const result = await publishBatch(env.bus.nc, batchBatch);
        expect(result.duplicates).toBe(plainDuplicates);
        expect(result.stored).toBe(new Set(sources).size);
        for (const k of new Set(sources)) {
          const plain = await stored(plainEvents[k]!.id);
          const batch = await stored(batchEvents[k]!.id);
          expect(plain).toHaveLength(1);
          expect(batch).toEqual(plain.map((m) => ({ ...m, body: m.body.split(plainEvents[k]!.id).join(batchEvents[k]!.id) })));
        }
      }),
      { numRuns: 10, seed: 17 },
    );
  }, 120_000);
});
