/**
 * Proves that a NATS outage is not taken for dead nodes, on a throwaway nats-server (JetStream,
 * its own store, a free loopback port) killed with SIGKILL for 5 s and started again on the same
 * store, while the reliability service and two simulated nodes beating every 2 s (lost after 8 s
 * of silence) are connected to it. While the server is down, readiness reports the NATS
 * connection not ready; once it is back, readiness recovers, heartbeats are read again without
 * a stall, and neither healthy node is declared lost over the next loss timeout and more: the
 * liveness loop counts no silence it could not have heard (its connection down, or its heartbeat
 * reader behind what the stream holds).
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, ThrowawayNatsServer, type TestEnvironment } from '@fastgpu/testing';
import { SimulatedNode } from '../../apps/node-simulator/src/simulated-node';
import { ReliabilityEngine } from '../../apps/reliability/src/reliability.engine';
import { ReliabilityModule } from '../../apps/reliability/src/reliability.module';
import { eventsOn, ofType } from './harness';

const HEARTBEAT_MS = 2_000;
const MISSED = 4;
const OUTAGE_MS = 5_000;

let nats: ThrowawayNatsServer;
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let engine: ReliabilityEngine;
const nodes: SimulatedNode[] = [];

beforeAll(async () => {
  nats = await ThrowawayNatsServer.create('nats-outage');
  await nats.start();
  env = await createTestEnvironment({ natsUrl: nats.url, heartbeatIntervalMs: HEARTBEAT_MS, missedHeartbeatsBeforeLost: MISSED });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [{ name: 'reliability', module: ReliabilityModule.withOptions({ slaAutoClose: false }) }], { port: 0, logger: false });
  engine = app.app.get(ReliabilityEngine);
  for (const nodeId of ['n1', 'n2']) {
    const node = new SimulatedNode(env.bus, { nodeId, gpuModel: 'a100', gpuCount: 2, gpuMemoryGb: 80 }, { heartbeatIntervalMs: HEARTBEAT_MS });
    await node.start();
    nodes.push(node);
  }
});

afterAll(async () => {
  if (nats && !nats.running) await nats.start().catch(() => undefined);
  for (const node of nodes) await node.stop();
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
  await nats?.dispose();
});

describe('a NATS outage', () => {
  it('makes readiness fail while it lasts and declares no healthy node lost', async () => {
    await eventually(() => engine.monitor.caughtUp && engine.monitor.liveness.nodes.size === 2, { message: 'the liveness loop did not see both nodes' });
    expect((await runtime.health.report()).checks.nats).toMatchObject({ ok: true });

    await nats.kill();
    const down = await eventually(async () => {
      const report = await runtime.health.report();
      return report.checks.nats?.ok === false ? report : undefined;
    });
    expect(down.ok).toBe(false);
    expect(String(down.checks.nats!.detail)).toMatch(/^NATS disconnected for \d+ ms/);
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    const restartedAtMs = Date.now();
    await nats.start();

    await eventually(async () => (await runtime.health.report()).checks.nats?.ok === true, { timeoutMs: 15_000, message: 'readiness did not recover after NATS came back' });
    // Heartbeats are read again, and keep coming: each node heard two intervals after the restart.
    await eventually(() => [...engine.monitor.liveness.nodes.values()].every((n) => n.lastSeenMs >= restartedAtMs + 2 * HEARTBEAT_MS), { timeoutMs: 15_000, message: 'heartbeats were not read again after the outage' });
    // A loss timeout and more after the restart, still nobody lost.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, restartedAtMs + (MISSED + 1) * HEARTBEAT_MS - Date.now())));
    expect([...engine.monitor.liveness.nodes.values()].map((n) => [n.nodeId, n.lost])).toEqual([
      ['n1', null],
      ['n2', null],
    ]);
    expect(ofType(await eventsOn(env.bus, `${env.bus.topology.prefix}.evt.reliability.node.>`), 'NodeLost')).toEqual([]);
    expect(engine.monitor.snapshot().nodesLostPublished).toBe(0);
  });
});
