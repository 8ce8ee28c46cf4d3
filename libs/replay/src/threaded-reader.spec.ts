/**
 * Proves the replay's reader thread on real NATS: it hands over every message of a range in
 * order, in batches, leaving out exactly those whose type header names a type the projection does
 * not read — the header as the NATS client parses it, also when a foreign client wrote it oddly
 * (no space, padding, other case) — and what the main thread decodes from its batches equals what
 * the live runner's rule gives on the same messages. A range past the stream's end fails after the
 * idle timeout instead of waiting forever.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent, type EventType, type StoredEvent } from '@fastgpu/contracts';
import { DeliverPolicy } from '@nats-io/jetstream';
import { EventPublisher, headerType, judgeMessage, lastSequence } from '@fastgpu/messaging';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { decodeRawBatch, readRangeOnThread, sequenceAt, typeAt } from './threaded-reader';

let env: TestEnvironment;
const wanted = new Set<EventType>(['SubtaskStarted', 'SubtaskCompleted']);

/** Publishes through a bare socket with a header block written by hand, as another client might. */
async function publishRaw(url: string, subject: string, headerLines: string[], body: string): Promise<void> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  const header = `NATS/1.0\r\n${headerLines.map((l) => `${l}\r\n`).join('')}\r\n`;
  const headerBytes = Buffer.byteLength(header);
  const totalBytes = headerBytes + Buffer.byteLength(body);
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      seen += chunk.toString();
      if (seen.includes('PONG')) resolve();
      if (seen.includes('-ERR')) reject(new Error(seen));
    });
    socket.write(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":false}\r\nHPUB ${subject} ${headerBytes} ${totalBytes}\r\n${header}${body}\r\nPING\r\n`);
  });
  socket.destroy();
}

beforeAll(async () => {
  env = await createTestEnvironment();
});

afterAll(async () => {
  await env?.cleanup();
});

describe('readRangeOnThread', () => {
  it('hands over the range in order, leaves out unread header types, and decodes as the live rule does', async () => {
    const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'reader-test');
    const meta = (id: string) => ({ id, time: '2026-03-01T00:00:00.000Z', tenantId: 'acme', correlationId: 'j1' });
    const report = { jobId: 'j1', tenantId: 'acme', subtaskId: 'j1s0', attempt: 1, nodeId: 'n1', leaseEpoch: 1 };
    const startedEvent = publisher.build('SubtaskStarted', { ...report, startedAt: '2026-03-01T00:00:00.000Z' }, meta('e-started'));
    const completed = (id: string) => publisher.build('SubtaskCompleted', { ...report, exitCode: 0, endedAt: '2026-03-01T01:00:00.000Z' }, meta(id));
    const subject = env.bus.topology.subjects.agentNode('n1');
    const url = env.config.natsUrl;

    await publisher.publish(startedEvent);
    await publisher.publish(publisher.build('NodeRegistered', { nodeId: 'n1', gpuModel: 'H100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: '2026-03-01T00:00:00.000Z' }, meta('e-node')));
    // Written by hand: no space after the colon (the client reads SubtaskCompleted: kept).
    await publishRaw(url, subject, ['Ce-Type:SubtaskCompleted'], new TextDecoder().decode(encodeEvent(completed('e-raw-1'))));
    // Padded value of an unread type (the client trims it: left out, its broken body unread).
    await publishRaw(url, subject, ['Nats-Msg-Id: x2', 'Ce-Type:   NodeRegistered  '], '{broken');
    // Another case of the name is another header for the client: kept, the body decides (rejected).
    await publishRaw(url, subject, ['ce-type: NodeRegistered'], '{broken');
    // A padded wanted type whose body disagrees: kept (as the client reads it), rejected when decoded.
    await publishRaw(url, subject, ['Ce-Type:  SubtaskStarted '], new TextDecoder().decode(encodeEvent(completed('e-raw-2'))));
    // No headers at all, a valid wanted body: kept.
    await env.bus.js.publish(subject, encodeEvent(completed('e-raw-3')));
    const last = await lastSequence(env.bus, env.bus.topology.streams.events);
    expect(last).toBe(7);

    const lastSequences: number[] = [];
    const kept: Array<{ sequence: number; type: string | undefined }> = [];
    const threadEvents: StoredEvent[] = [];
    await readRangeOnThread({
      bus: env.bus,
      fromSequence: 1,
      toSequence: last,
      batchMax: 3,
      pullMax: 2,
      wanted,
      onBatch: async (batch, release) => {
        lastSequences.push(batch.lastSequence);
        for (let i = 0; i < batch.count; i++) kept.push({ sequence: sequenceAt(batch, i), type: typeAt(batch, i) });
        threadEvents.push(...(await decodeRawBatch(batch, wanted)));
        release();
      },
    });
    expect(lastSequences).toEqual([3, 6, 7]);
    expect(kept).toEqual([
      { sequence: 1, type: 'SubtaskStarted' },
      { sequence: 3, type: 'SubtaskCompleted' },
      { sequence: 5, type: undefined },
      { sequence: 6, type: 'SubtaskStarted' },
      { sequence: 7, type: undefined },
    ]);
    expect(threadEvents.map((e) => [e.sequence, e.event.id])).toEqual([
      [1, 'e-started'],
      [3, 'e-raw-1'],
      [7, 'e-raw-3'],
    ]);

    // The same messages read on this thread and judged one by one, as the live runner does
    // (ProjectionRunner: judgeMessage on the client's header map, m.time as the stream time).
    const liveRule: StoredEvent[] = [];
    const consumer = await env.bus.js.consumers.get(env.bus.topology.streams.events, { deliver_policy: DeliverPolicy.All });
    const messages = await consumer.consume({ max_messages: 100 });
    for await (const m of messages) {
      const verdict = judgeMessage(m.data, headerType(m.headers), wanted);
      if (verdict.kind === 'event') liveRule.push({ sequence: m.seq, subject: m.subject, event: verdict.event, receivedAtMs: m.time.getTime() });
      if (m.seq >= last) break;
    }
    await messages.close();
    expect(threadEvents).toEqual(liveRule);
    for (const event of threadEvents) expect(event.receivedAtMs).toBeGreaterThan(Date.UTC(2026, 0, 1));
    expect(threadEvents.every((e) => e.subject === subject)).toBe(true);
  });

  it('resumes from a sequence in the middle, across several pulls, and leaves no consumer behind', async () => {
    const last = await lastSequence(env.bus, env.bus.topology.streams.events);
    const stream = env.bus.topology.streams.events;
    const consumersBefore = (await env.bus.jsm.streams.info(stream)).state.consumer_count;
    const sequences: number[] = [];
    const lastSequences: number[] = [];
    await readRangeOnThread({
      bus: env.bus,
      fromSequence: 2,
      toSequence: last - 1,
      batchMax: 2,
      pullMax: 1,
      wanted,
      onBatch: async (batch, release) => {
        lastSequences.push(batch.lastSequence);
        for (let i = 0; i < batch.count; i++) sequences.push(sequenceAt(batch, i));
        release();
      },
    });
    expect(lastSequences).toEqual([3, 5, 6]);
    expect(sequences).toEqual([3, 5, 6]);
    expect((await env.bus.jsm.streams.info(stream)).state.consumer_count).toBe(consumersBefore);
  });

  it('goes on with a new consumer when its consumer is deleted mid-read, skipping and repeating nothing', async () => {
    const last = await lastSequence(env.bus, env.bus.topology.streams.events);
    const stream = env.bus.topology.streams.events;
    const names = async () => {
      const found: string[] = [];
      for await (const c of env.bus.jsm.consumers.list(stream)) found.push(c.name);
      return found;
    };
    const before = new Set(await names());
    const sequences: number[] = [];
    let deleted = 0;
    await readRangeOnThread({
      bus: env.bus,
      fromSequence: 1,
      toSequence: last,
      batchMax: 1,
      pullMax: 1,
      wanted,
      idleTimeoutMs: 15_000,
      pullExpiresMs: 300,
      onBatch: async (batch, release) => {
        for (let i = 0; i < batch.count; i++) sequences.push(sequenceAt(batch, i));
        if (batch.lastSequence === 2) {
          for (const name of await names()) {
            if (before.has(name)) continue;
            await env.bus.jsm.consumers.delete(stream, name);
            deleted++;
          }
        }
        release();
      },
    });
    expect(deleted).toBe(1);
    expect(sequences).toEqual([1, 3, 5, 6, 7]);
  });

  it('reuses the buffers handed back: every batch decodes to exactly what was published, whatever the body sizes', async () => {
    const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'reader-test');
    const from = (await lastSequence(env.bus, env.bus.topology.streams.events)) + 1;
    const published: string[] = [];
    for (let i = 0; i < 300; i++) {
      const id = `e-reuse-${i}`;
      const meta = { id, time: '2026-03-01T00:00:00.000Z', tenantId: 'acme', correlationId: 'j1' };
      // Bodies of many lengths, long after short: stale bytes of a reused buffer would show.
      const nodeId = `n${'x'.repeat((i * 37) % 120)}`;
      if (i % 4 === 3) {
        await publisher.publish(publisher.build('NodeRegistered', { nodeId, gpuModel: 'H100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: '2026-03-01T00:00:00.000Z' }, meta));
        continue;
      }
      await publisher.publish(publisher.build('SubtaskStarted', { jobId: 'j1', tenantId: 'acme', subtaskId: `s${i}`, attempt: 1, nodeId, leaseEpoch: 1, startedAt: '2026-03-01T00:00:00.000Z' }, meta));
      published.push(id);
    }
    const to = await lastSequence(env.bus, env.bus.topology.streams.events);
    const decoded: string[] = [];
    const detachedAfterRelease: boolean[] = [];
    await readRangeOnThread({
      bus: env.bus,
      fromSequence: from,
      toSequence: to,
      batchMax: 7,
      pullMax: 16,
      wanted,
      onBatch: async (batch, release) => {
        decoded.push(...(await decodeRawBatch(batch, wanted)).map((e) => e.event.id));
        release();
        detachedAfterRelease.push(batch.bodies.byteLength === 0 && batch.meta.length === 0);
      },
    });
    expect(decoded).toEqual(published);
    expect(detachedAfterRelease.length).toBeGreaterThan(40);
    expect(detachedAfterRelease.every(Boolean)).toBe(true);
  });

  it('fails after the idle timeout when the range runs past the end of the stream', async () => {
    const last = await lastSequence(env.bus, env.bus.topology.streams.events);
    const read = readRangeOnThread({ bus: env.bus, fromSequence: 1, toSequence: last + 5, batchMax: 100, pullMax: 100, wanted, idleTimeoutMs: 300, onBatch: async (_batch, release) => release() });
    await expect(read).rejects.toThrow(/nothing for 300 ms/);
  });
});
