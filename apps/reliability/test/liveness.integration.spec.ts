/**
 * Proves liveness and fencing on real NATS JetStream and Postgres, with simulated nodes beating
 * every 200 ms: a node whose heartbeats stop is declared lost in time (within the timeout plus one
 * loop tick of its last beat, far inside 30 s), naming its last heartbeat; after its work is
 * requeued elsewhere, the late report it sends when it comes back is rejected and the node is
 * told to stop that work; it is recovered; bad heartbeats are rejected and counted; a GPU over a
 * health threshold drains its node once, with the reason; a standby
 * that folds the same log publishes no second copy of any decision; readiness tells the truth.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveId, newEventId, NodeCommand, type DomainEvent, type EventData, type EventType, type Heartbeat } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { systemClock } from '@fastgpu/runtime';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { SimulatedNode } from '../../node-simulator/src/simulated-node';
import { NodeMonitor } from '../src/monitor/node-monitor';
import { ReliabilityEngine } from '../src/reliability.engine';
import { ReliabilityModule } from '../src/reliability.module';
import { LogTail } from './log-tail';

const HEARTBEAT_MS = 200;
// 10 missed beats of 200 ms (2 s): short enough for a test of seconds, long enough that event-loop
// stalls on a busy CI machine (two cores, test files in parallel) do not make a healthy node look dead.
const MISSED = 10;

let env: TestEnvironment;
let runtime: OwnedRuntime;
let started: StartedApp;
let engine: ReliabilityEngine;
let publisher: EventPublisher;
let log: LogTail;
const nodes: SimulatedNode[] = [];

async function emit<T extends EventType>(type: T, data: EventData<T>, tenantId: string | null = 'acme'): Promise<string> {
  const id = newEventId();
  await publisher.publish(publisher.build(type, data, { id, time: new Date().toISOString(), tenantId, correlationId: id }) as DomainEvent);
  return id;
}

async function command(nodeId: string, cmd: NodeCommand): Promise<void> {
  await env.bus.js.publish(env.bus.topology.subjects.command(nodeId), JSON.stringify(cmd), { msgID: cmd.commandId });
}

function placement(attempt: number, leaseEpoch: number, nodeId: string) {
  return { jobId: 'job-1', tenantId: 'acme', projectId: 'proj', subtaskId: 'st-1', attempt, nodeId, gpuModel: 'a100', gpus: 1, gpuIndices: [0], leaseEpoch, capacityType: 'on-demand' as const, runtimeMs: 1_500, placedAt: new Date().toISOString() };
}

function run(attempt: number, leaseEpoch: number, runtimeMs: number): NodeCommand {
  return { kind: 'RunSubtask', commandId: newEventId(), jobId: 'job-1', tenantId: 'acme', subtaskId: 'st-1', attempt, leaseEpoch, gpuIndices: [0], runtimeMs, issuedAt: new Date().toISOString() };
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: 'test-admin-key-0123456789abcdef', heartbeatIntervalMs: HEARTBEAT_MS, missedHeartbeatsBeforeLost: MISSED });
  runtime = await createRuntime(env.config);
  started = await startServices(runtime, [{ name: 'reliability', module: ReliabilityModule.withOptions({ slaAutoClose: false }) }], { port: 0, logger: false });
  engine = started.app.get(ReliabilityEngine);
  publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test/scheduler');
  log = new LogTail(env.bus);
  await log.start();
  for (const nodeId of ['n1', 'n2']) {
    const node = new SimulatedNode(env.bus, { nodeId, gpuModel: 'a100', gpuCount: 2, gpuMemoryGb: 80 }, { heartbeatIntervalMs: HEARTBEAT_MS });
    await node.start();
    nodes.push(node);
  }
});

afterAll(async () => {
  for (const node of nodes) await node.stop();
  await log?.stop();
  await started?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('a node that stops beating', () => {
  it('is declared lost in time, its late report is rejected and the node told to stop, and it recovers', async () => {
    const [n1] = nodes as [SimulatedNode, SimulatedNode];
    await eventually(() => engine.monitor.caughtUp && engine.monitor.liveness.nodes.size === 2, { message: 'the liveness loop did not see both nodes' });
    await emit('SubtaskPlaced', placement(1, 1, 'n1'));
    await command('n1', run(1, 1, 1_500));
    await log.waitFor('SubtaskStarted', (e) => e.data.nodeId === 'n1');

    // The node drops off the network: no heartbeats, and its end-of-run report is held back.
    n1.partition();
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS));
    const lastBeat = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.heartbeats, { last_by_subj: env.bus.topology.subjects.heartbeat('n1') });
    const lastBeatMs = lastBeat!.time.getTime();

    const lost = await log.waitFor('NodeLost', (e) => e.data.nodeId === 'n1', 30_000);
    expect(lost.data.lastHeartbeatAt).toBe(new Date(lastBeatMs).toISOString());
    const detectionMs = Date.parse(lost.data.detectedAt) - lastBeatMs;
    expect(detectionMs).toBeGreaterThan(HEARTBEAT_MS * MISSED);
    // Timeout plus at most a few loop ticks (50 ms here) and scheduling noise; the policy bound is 30 s.
    expect(detectionMs).toBeLessThan(HEARTBEAT_MS * MISSED + 3_000);

    // The scheduler's part: requeue onto n2 with a new attempt and lease epoch.
    await emit('SubtaskRequeued', { jobId: 'job-1', tenantId: 'acme', subtaskId: 'st-1', previousAttempt: 1, reason: 'node lost', requeuedAt: new Date().toISOString() });
    await emit('SubtaskPlaced', placement(2, 2, 'n2'));
    await command('n2', run(2, 2, 300));
    await log.waitFor('SubtaskCompleted', (e) => e.data.nodeId === 'n2' && e.data.leaseEpoch === 2);

    // The partitioned node comes back and sends the report it held: epoch 1, no longer current.
    await eventually(() => n1.heldReports.length === 1, { message: 'n1 did not finish its run while partitioned' });
    n1.resumeHeartbeats();
    await n1.releaseHeldReports();
    const late = await log.waitFor('SubtaskCompleted', (e) => e.data.nodeId === 'n1');
    const rejected = await log.waitFor('ReportRejected', (e) => e.data.subtaskId === 'st-1');
    expect(rejected.id).toBe(deriveId(late.id, 'ReportRejected'));
    expect(rejected.data).toMatchObject({ nodeId: 'n1', reportType: 'SubtaskCompleted' });
    expect(rejected.data.reason).toMatch(/stale lease epoch 1 \(attempt 1\); current is epoch 2 \(attempt 2\)/);
    const stop = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.commands, { last_by_subj: env.bus.topology.subjects.command('n1') });
    expect(NodeCommand.parse(stop!.json())).toMatchObject({ kind: 'StopSubtask', commandId: deriveId(late.id, 'StopSubtask'), subtaskId: 'st-1', attempt: 1, leaseEpoch: 1 });

    const recovered = await log.waitFor('NodeRecovered', (e) => e.data.nodeId === 'n1');
    expect(recovered.id).toBe(deriveId(lost.id, 'NodeRecovered'));
    expect(Date.parse(recovered.data.recoveredAt)).toBeGreaterThan(lastBeatMs);
    // The report on the current epoch was accepted: nothing else was rejected.
    expect(log.all('ReportRejected', (e) => e.data.reportType !== 'Heartbeat')).toHaveLength(1);
  });

  it('rejects and counts heartbeats from unknown nodes and with impossible values, without applying them', async () => {
    const beat = (nodeId: string, utilizationPercent: number): Heartbeat => ({
      nodeId,
      agentEpoch: 1,
      sentAt: new Date().toISOString(),
      gpus: [{ index: 0, utilizationPercent, memoryUsedMb: 0, temperatureC: 40, eccErrors: 0, xidErrors: 0 }],
      running: [],
    });
    const before = engine.monitor.snapshot();
    await env.bus.js.publish(env.bus.topology.subjects.heartbeat('ghost'), JSON.stringify(beat('ghost', 10)));
    await env.bus.js.publish(env.bus.topology.subjects.heartbeat('n2'), JSON.stringify(beat('n2', -5)));
    const ghost = await log.waitFor('ReportRejected', (e) => e.data.nodeId === 'ghost');
    expect(ghost.data).toMatchObject({ reportType: 'Heartbeat', reason: 'unknown-node: node ghost is not registered' });
    await log.waitFor('ReportRejected', (e) => e.data.nodeId === 'n2' && e.data.reason.startsWith('impossible-value: gpus.0.utilizationPercent'));
    const after = engine.monitor.snapshot();
    expect(after.heartbeatsRejected - before.heartbeatsRejected).toBe(2);
    expect(after.heartbeatsRejectedByCode).toMatchObject({ 'unknown-node': 1, 'impossible-value': 1 });
    expect(engine.monitor.liveness.nodes.has('ghost')).toBe(false);
  });

  it('drains a node automatically, with the reason, when a GPU counter crosses its threshold', async () => {
    const sick: Heartbeat = {
      nodeId: 'n2',
      agentEpoch: engine.monitor.liveness.nodes.get('n2')!.agentEpoch,
      sentAt: new Date().toISOString(),
      gpus: [
        { index: 0, utilizationPercent: 90, memoryUsedMb: 1_000, temperatureC: 70, eccErrors: 0, xidErrors: 0 },
        { index: 1, utilizationPercent: 90, memoryUsedMb: 1_000, temperatureC: 70, eccErrors: 12, xidErrors: 0 },
      ],
      running: [],
    };
    await env.bus.js.publish(env.bus.topology.subjects.heartbeat('n2'), JSON.stringify(sick));
    const drained = await log.waitFor('NodeDrained', (e) => e.data.nodeId === 'n2');
    expect(drained.data).toMatchObject({ automatic: true, reason: 'gpu 1: 12 ECC errors (threshold 8)' });
    await eventually(() => engine.monitor.liveness.nodes.get('n2')!.drained);
    await env.bus.js.publish(env.bus.topology.subjects.heartbeat('n2'), JSON.stringify({ ...sick, sentAt: new Date().toISOString() }));
    await new Promise((r) => setTimeout(r, 300));
    expect(log.all('NodeDrained', (e) => e.data.nodeId === 'n2')).toHaveLength(1);
  });

  it('a standby folding the same log republishes nothing, and when both see a node go silent the log gets one NodeLost', async () => {
    const standby = new NodeMonitor(env.bus, new EventPublisher(env.bus.js, env.bus.topology, 'fastgpu/reliability'), systemClock, engine.config);
    const rejectedBefore = log.all('ReportRejected').length;
    await standby.start();
    try {
      await eventually(() => standby.caughtUp, { message: 'the standby did not catch up' });
      // Same state from the same log: the lease moved to n2; n1 recovered; past decisions stay decided.
      expect(standby.fencing.placements.get('st-1')).toMatchObject({ attempt: 2, leaseEpoch: 2, nodeId: 'n2' });
      expect(standby.liveness.nodes.get('n1')).toMatchObject({ lost: null });
      await new Promise((r) => setTimeout(r, 500));
      expect(standby.snapshot().outboxSize).toBe(0);
      expect(log.all('ReportRejected').length).toBe(rejectedBefore);

      // Both instances now watch n2 go silent: each decides NodeLost with the same id.
      const [, n2] = nodes as [SimulatedNode, SimulatedNode];
      n2.pauseHeartbeats();
      const lost = await log.waitFor('NodeLost', (e) => e.data.nodeId === 'n2' && standby.liveness.nodes.get('n2')?.lost?.eventId === e.id && engine.monitor.liveness.nodes.get('n2')?.lost?.eventId === e.id);
      await new Promise((r) => setTimeout(r, HEARTBEAT_MS * MISSED * 2));
      expect(log.all('NodeLost', (e) => e.data.nodeId === 'n2' && e.data.lastHeartbeatAt === lost.data.lastHeartbeatAt)).toHaveLength(1);
      n2.resumeHeartbeats();
      await log.waitFor('NodeRecovered', (e) => e.causationid === lost.id);
      await new Promise((r) => setTimeout(r, 500));
      expect(log.all('NodeRecovered', (e) => e.causationid === lost.id)).toHaveLength(1);
    } finally {
      await standby.stop();
    }
  });

  it('reports readiness truthfully: ready while the loop runs, not ready with the reason when it stops', async () => {
    // /readyz answers only up or down; the checks' details need an sre (or admin) key.
    const details = () => fetch(`${started.url}/v1/health`, { headers: { authorization: 'Bearer test-admin-key-0123456789abcdef' } });
    expect(await (await fetch(`${started.url}/readyz`)).json()).toEqual({ status: 'up' });
    const ready = await details();
    const body = (await ready.json()) as { checks: Record<string, { ok: boolean; detail?: unknown }> };
    expect(ready.status).toBe(200);
    expect(body.checks['reliability-liveness']).toMatchObject({ ok: true });
    expect(body.checks['reliability-sla-projection']).toMatchObject({ ok: true });
    await engine.monitor.stop();
    expect((await fetch(`${started.url}/readyz`)).status).toBe(503);
    const stalled = await details();
    expect(stalled.status).toBe(503);
    expect(((await stalled.json()) as { checks: Record<string, { detail?: unknown }> }).checks['reliability-liveness']).toEqual({ ok: false, detail: 'liveness loop stopped' });
  });
});
