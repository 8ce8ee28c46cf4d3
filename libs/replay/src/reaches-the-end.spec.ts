/**
 * Proves that readers of the log reach the stream's last sequence when traffic stops right after
 * a burst, with no further event to push them (issue 16: a batch judged complete from the
 * client's pending estimate left the last events waiting for the next one). After a burst of
 * events published with many in flight and then silence: a ProjectionRunner started before the
 * burst (reading while it arrives) and one started after it, a StreamFollower with a slow batch
 * callback, the replay's reader thread and the pipelined replay all reach the last sequence.
 * And a range whose last messages were deleted from the stream ends at the range's end instead
 * of waiting for sequences that will never come.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventId, type DomainEvent, type EventType } from '@fastgpu/contracts';
import { EventPublisher, lastSequence, ProjectionRunner, StreamFollower, type Projection } from '@fastgpu/messaging';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { replayPipelined } from './pipeline';
import { readRangeOnThread, sequenceAt } from './threaded-reader';

let env: TestEnvironment;
/** Enough events for the client to re-pull many times while the burst is read. */
const BURST_EVENTS = 12_000;
/** How long every reader gets to reach the end once the stream is quiet. */
const REACH_END_TIMEOUT_MS = 20_000;

const wanted = new Set<EventType>(['SubtaskStarted']);

function countingProjection(name: string): Projection & { applied: number } {
  const projection = {
    name,
    types: wanted,
    applied: 0,
    apply: async (_trx: unknown, events: unknown[]) => {
      projection.applied += events.length;
    },
  };
  return projection;
}

async function publishBurst(count: number): Promise<number> {
  const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'burst-test');
  const now = new Date().toISOString();
  const events: DomainEvent[] = [];
  for (let i = 0; i < count; i++) {
    const meta = { id: newEventId(), time: now, tenantId: 'acme', correlationId: 'burst' };
    // Mostly events the projections read, some they skip by header.
    if (i % 5 === 4) events.push(publisher.build('NodeUndrained', { nodeId: `n${i % 7}`, undrainedAt: now }, meta));
    else events.push(publisher.build('SubtaskStarted', { jobId: 'j1', tenantId: 'acme', subtaskId: `s${i}`, attempt: 1, nodeId: `n${i % 7}`, leaseEpoch: 1, startedAt: now }, meta));
  }
  await publisher.publishAll(events);
  return lastSequence(env.bus, env.bus.topology.streams.events);
}

beforeAll(async () => {
  env = await createTestEnvironment();
});

afterAll(async () => {
  await env?.cleanup();
});

describe('after a burst and silence, every reader reaches the last sequence', () => {
  it('projection runners (started before and after the burst), a slow follower, the reader thread and the pipelined replay', async () => {
    const early = countingProjection('burst-early');
    const earlyRunner = new ProjectionRunner(env.bus, env.database.db, early, { batchMax: 700 });
    await earlyRunner.start();
    let followed = 0;
    let followerLast = 0;
    const slowFollower = new StreamFollower(env.bus, {
      stream: env.bus.topology.streams.events,
      fromSequence: 1,
      batchMax: 300,
      onBatch: async (messages) => {
        // Slower than the burst arrives: the client re-pulls while batches wait.
        await new Promise((resolve) => setTimeout(resolve, 3));
        followed += messages.length;
        followerLast = messages[messages.length - 1]!.seq;
      },
    });
    await slowFollower.start();

    const last = await publishBurst(BURST_EVENTS);
    expect(last).toBe(BURST_EVENTS);
    const readsAfter = countingProjection('burst-late');
    const lateRunner = new ProjectionRunner(env.bus, env.database.db, readsAfter);
    await lateRunner.start();
    try {
      // Nothing is published from here on.
      await eventually(() => earlyRunner.lastSequence === last, { timeoutMs: REACH_END_TIMEOUT_MS, message: `early runner stopped at ${earlyRunner.lastSequence} of ${last}` });
      await eventually(() => lateRunner.lastSequence === last, { timeoutMs: REACH_END_TIMEOUT_MS, message: `late runner stopped at ${lateRunner.lastSequence} of ${last}` });
      await eventually(() => followerLast === last, { timeoutMs: REACH_END_TIMEOUT_MS, message: `follower stopped at ${followerLast} of ${last}` });
      expect(followed).toBe(last);
      expect(early.applied).toBe((BURST_EVENTS * 4) / 5);
      expect(readsAfter.applied).toBe((BURST_EVENTS * 4) / 5);
      expect(await lateRunner.waitFor(last, 1)).toBe(true);
    } finally {
      await earlyRunner.stop();
      await lateRunner.stop();
      await slowFollower.stop();
    }

    let threadLast = 0;
    await readRangeOnThread({ bus: env.bus, fromSequence: 1, toSequence: last, batchMax: 1000, pullMax: 5000, wanted, idleTimeoutMs: REACH_END_TIMEOUT_MS, onBatch: async (batch, release) => {
      threadLast = batch.lastSequence;
      release();
    } });
    expect(threadLast).toBe(last);

    const replayed = countingProjection('burst-replay');
    await env.database.db.insertInto('projection_checkpoints').values({ projection: 'burst-replay', last_sequence: 0, status: 'rebuilding' }).execute();
    const reached = await replayPipelined({
      bus: env.bus,
      db: env.database.db,
      projection: replayed,
      checkpointName: 'burst-replay',
      context: { live: false, table: (name) => name },
      fromSequence: 1,
      toSequence: last,
      batchMax: 5000,
      onApplied: () => undefined,
      onFailed: (error) => {
        throw error;
      },
    });
    expect(reached).toBe(last);
    expect(replayed.applied).toBe((BURST_EVENTS * 4) / 5);
  }, 90_000);

  it('a range whose last messages were deleted ends at the range end', async () => {
    const last = await lastSequence(env.bus, env.bus.topology.streams.events);
    const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'burst-test');
    const now = new Date().toISOString();
    for (let i = 0; i < 3; i++) {
      await publisher.publish(publisher.build('SubtaskStarted', { jobId: 'j2', tenantId: 'acme', subtaskId: `t${i}`, attempt: 1, nodeId: 'n1', leaseEpoch: 1, startedAt: now }, { id: newEventId(), time: now, tenantId: 'acme', correlationId: 'gone' }));
    }
    const stream = env.bus.topology.streams.events;
    await env.bus.jsm.streams.deleteMessage(stream, last + 2);
    await env.bus.jsm.streams.deleteMessage(stream, last + 3);
    expect((await env.bus.jsm.streams.info(stream)).state.last_seq).toBe(last + 3);
    const batches: number[] = [];
    const sequences: number[] = [];
    await readRangeOnThread({ bus: env.bus, fromSequence: last + 1, toSequence: last + 3, batchMax: 10, pullMax: 10, wanted, idleTimeoutMs: 5_000, onBatch: async (batch, release) => {
      batches.push(batch.lastSequence);
      for (let i = 0; i < batch.count; i++) sequences.push(sequenceAt(batch, i));
      release();
    } });
    expect(batches.at(-1)).toBe(last + 3);
    expect(sequences).toEqual([last + 1]);
  });
});
