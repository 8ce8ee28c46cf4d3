/**
 * Proves that the kernel's read of an aggregate answers a log that does not answer as the
 * publisher does: an EventLogUnavailableError (which the HTTP edge answers 503 with Retry-After,
 * libs/http), never a bare NATS timeout (a 500). On a throwaway nats-server with JetStream, killed
 * after the bus connected and the stream exists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { connectBus, deleteTopology, EventLogUnavailableError, EventPublisher, type Bus } from '@fastgpu/messaging';
import { ThrowawayNatsServer } from '@fastgpu/testing';
import { JetStreamEventStream } from './index';

let nats: ThrowawayNatsServer;
let bus: Bus;

beforeAll(async () => {
  nats = await ThrowawayNatsServer.create('eventsourcing-unavailable');
  await nats.start();
  bus = await connectBus({ natsUrl: nats.url, subjectPrefix: `esu${randomBytes(4).toString('hex')}` });
}, 60_000);

afterAll(async () => {
  if (nats.running) await deleteTopology(bus.jsm, bus.topology);
  await bus.close().catch(() => undefined);
  await nats.dispose();
});

describe('an aggregate read while the log does not answer', () => {
  it('is an EventLogUnavailableError', async () => {
    const store = new JetStreamEventStream(bus, new EventPublisher(bus.js, bus.topology, 'test'));
    const subject = bus.topology.subjects.job('job-1');
    expect(await store.read(subject)).toEqual({ events: [], version: 0 });
    await nats.kill();
    await expect(store.read(subject)).rejects.toBeInstanceOf(EventLogUnavailableError);
  }, 60_000);
});
