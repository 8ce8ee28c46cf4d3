/**
 * Proves that the replay's two range readers give the same events: the plain reader on this
 * thread (plain-reader.ts, the reference) and the reader thread (threaded-reader.ts, the fast
 * path). On real NATS, for logs fast-check generates (events of types the projection reads and
 * does not read, some messages deleted, some bodies undecodable) and any range of them, both
 * hand over batches that decode (by the live runner's rule) to the same stored events and cover
 * the range to its end. Ranges end anywhere in the log: on a stored message, on a deleted one
 * with later messages stored or not, and ranges may hold deleted sequences only; the examples
 * make sure each of those runs.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent, type EventType, type StoredEvent } from '@fastgpu/contracts';
import { EventPublisher, lastSequence } from '@fastgpu/messaging';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { readRangeOnMainThread, type RangeReader } from './plain-reader';
import { decodeRawBatch, readRangeOnThread } from './threaded-reader';

let env: TestEnvironment;
const wanted = new Set<EventType>(['SubtaskStarted', 'SubtaskCompleted']);

beforeAll(async () => {
  env = await createTestEnvironment();
});

afterAll(async () => {
  await env?.cleanup();
});

type Entry = { kind: 'started' | 'completed' | 'node' | 'undecodable'; deleted: boolean };
const stored = (kind: Entry['kind']): Entry => ({ kind, deleted: false });
const deleted = (kind: Entry['kind']): Entry => ({ kind, deleted: true });

async function read(reader: RangeReader, fromSequence: number, toSequence: number): Promise<{ events: StoredEvent[]; lastSequences: number[] }> {
  const events: StoredEvent[] = [];
  const lastSequences: number[] = [];
  await reader({
    bus: env.bus,
    fromSequence,
    toSequence,
    batchMax: 4,
    pullMax: 3,
    wanted,
    idleTimeoutMs: 10_000,
    onBatch: async (batch, release) => {
      lastSequences.push(batch.lastSequence);
      events.push(...(await decodeRawBatch(batch, wanted)));
      release();
    },
  });
  return { events, lastSequences };
}

describe('the plain and the threaded range reader', () => {
  it('give the same events for any log and range', async () => {
    const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'range-readers-test');
    const stream = env.bus.topology.streams.events;
    const subject = env.bus.topology.subjects.agentNode('n1');
    let run = 0;
    const entry = fc.record({ kind: fc.constantFrom<Entry['kind']>('started', 'completed', 'node', 'undecodable'), deleted: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 25 }), fc.nat(), fc.nat(), async (entries, fromPick, toPick) => {
        run++;
        const first = (await lastSequence(env.bus, stream)) + 1;
        for (const [i, e] of entries.entries()) {
          const id = `r${run}-${i}`;
          const meta = { id, time: '2026-03-01T00:00:00.000Z', tenantId: 'acme', correlationId: 'j1' };
          const report = { jobId: 'j1', tenantId: 'acme', subtaskId: 'j1s0', attempt: i + 1, nodeId: 'n1', leaseEpoch: 1 };
          if (e.kind === 'started') await publisher.publish(publisher.build('SubtaskStarted', { ...report, startedAt: '2026-03-01T00:00:00.000Z' }, meta));
          else if (e.kind === 'completed') await publisher.publish(publisher.build('SubtaskCompleted', { ...report, exitCode: 0, endedAt: '2026-03-01T01:00:00.000Z' }, meta));
          else if (e.kind === 'node') await publisher.publish(publisher.build('NodeRegistered', { nodeId: 'n1', gpuModel: 'H100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: i + 1, registeredAt: '2026-03-01T00:00:00.000Z' }, meta));
          else await env.bus.js.publish(subject, encodeEvent(publisher.build('SubtaskStarted', { ...report, startedAt: '2026-03-01T00:00:00.000Z' }, meta)).slice(1));
        }
        const last = await lastSequence(env.bus, stream);
        for (const [i, e] of entries.entries()) if (e.deleted) await env.bus.jsm.streams.deleteMessage(stream, first + i, false);
        const fromSequence = first + (fromPick % entries.length);
        // Any end from the range's start to the log's last sequence, deleted or not.
        const toSequence = fromSequence + (toPick % (last - fromSequence + 1));
        const plain = await read(readRangeOnMainThread, fromSequence, toSequence);
        const threaded = await read(readRangeOnThread, fromSequence, toSequence);
        expect(plain.events).toEqual(threaded.events);
        expect(plain.lastSequences.at(-1)).toBe(toSequence);
        expect(threaded.lastSequences.at(-1)).toBe(toSequence);
        expect(plain.events.every((e) => e.sequence >= fromSequence && e.sequence <= toSequence)).toBe(true);
      }),
      {
        numRuns: 16,
        seed: 17,
        // A reader that never reaches a range's end fails after its idle timeout; shrinking such a
        // case would repeat that wait many times, so the first failing case is reported as it is.
        endOnFailure: true,
        examples: [
          // The range ends on a deleted message; a later one is stored.
          [[stored('started'), deleted('completed'), stored('node')], 0, 1],
          // The range holds deleted messages only; a later one is stored.
          [[deleted('started'), deleted('completed'), stored('node')], 0, 1],
          // The range holds deleted messages only, up to the log's last sequence.
          [[stored('started'), deleted('completed'), deleted('node')], 1, 1],
          // The range ends on a deleted message, and so does the log.
          [[stored('started'), deleted('completed'), deleted('undecodable')], 0, 1],
        ],
      },
    );
  }, 120_000);
});

