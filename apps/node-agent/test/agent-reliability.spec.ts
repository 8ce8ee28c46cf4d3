/**
 * Proves the real agent's heartbeats drive reliability's decisions on real NATS and PostgreSQL
 * (the reliability service running as `npm start` runs it): when a GPU's uncorrected ECC count
 * in nvidia-smi's output reaches the threshold, reliability drains the node automatically, naming
 * the GPU; and when a sub-task the agent runs is placed elsewhere with a newer lease epoch,
 * reliability sees the stale work in the agent's heartbeats and tells it to stop, and the agent
 * kills the run's process group (a stale epoch does not keep work).
 */
import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventId, NodeCommand, type EventData } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { ReliabilityEngine } from '../../reliability/src/reliability.engine';
import { ReliabilityModule } from '../../reliability/src/reliability.module';
import { agentConfig, EventTail, FakeHost, processRuns, runCommand, send, startAgent, type RunningAgent } from './agent-harness';

const NODE = 'gpu-host-health';
const HEARTBEAT_MS = 200;
let env: TestEnvironment;
let runtime: OwnedRuntime;
let started: StartedApp;
let host: FakeHost;
let tail: EventTail;
let agent: RunningAgent;

beforeAll(async () => {
  env = await createTestEnvironment({ heartbeatIntervalMs: HEARTBEAT_MS, missedHeartbeatsBeforeLost: 25 });
  runtime = await createRuntime(env.config);
  started = await startServices(runtime, [{ name: 'reliability', module: ReliabilityModule.withOptions({ slaAutoClose: false }) }], { port: 0, logger: false });
  host = await FakeHost.create();
  tail = new EventTail(env.bus);
  await tail.start();
  agent = await startAgent(env, agentConfig(env, host, { nodeId: NODE, heartbeatIntervalMs: HEARTBEAT_MS }));
  const engine = started.app.get(ReliabilityEngine);
  await eventually(() => engine.monitor.caughtUp && engine.monitor.liveness.nodes.has(NODE), { message: 'reliability did not see the node' });
});

afterAll(async () => {
  await agent?.stop();
  await tail?.stop();
  await started?.close();
  await runtime?.close();
  await host?.cleanup();
  await env?.cleanup();
});

describe('health from nvidia-smi', () => {
  it('drains the node when a GPU\'s uncorrected ECC count reaches the threshold', async () => {
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 3));
    expect(tail.all('NodeDrained', (e) => e.data.nodeId === NODE)).toHaveLength(0);
    // Reliability's default threshold is 8 uncorrected ECC errors.
    await host.setGpus([{}, {}, { ecc: 9 }, {}]);
    const drained = await tail.waitFor('NodeDrained', (e) => e.data.nodeId === NODE);
    expect(drained.data).toMatchObject({ automatic: true });
    expect(drained.data.reason).toMatch(/^gpu 2: 9 ECC errors \(threshold 8\)/);
  });
});

describe('fencing through heartbeats', () => {
  it('stops a run whose sub-task was placed elsewhere with a newer epoch', async () => {
    const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test/scheduler');
    const placed = (nodeId: string, attempt: number, leaseEpoch: number): EventData<'SubtaskPlaced'> => ({
      jobId: 'job-fenced', tenantId: 'acme', projectId: 'proj', subtaskId: 'st-fenced', attempt, nodeId, gpuModel: 'a100', gpus: 1, gpuIndices: [0], leaseEpoch, capacityType: 'on-demand', runtimeMs: 60_000, placedAt: new Date().toISOString(),
    });
    const emit = async (data: EventData<'SubtaskPlaced'>) => {
      const id = newEventId();
      await publisher.publish(publisher.build('SubtaskPlaced', data, { id, time: new Date().toISOString(), tenantId: 'acme', correlationId: 'job-fenced' }));
    };
    const outbox = await host.directory('outbox');
    await emit(placed(NODE, 1, 1));
    const command = runCommand({ subtaskId: 'st-fenced', jobId: 'job-fenced', script: "require('fs').writeFileSync(process.env.OUTBOX + '/fenced', String(process.pid)); setInterval(() => {}, 1000)", workload: { env: { OUTBOX: outbox } } });
    await send(env, NODE, command);
    const pid = Number(await eventually(() => readFile(join(outbox, 'fenced'), 'utf8')));
    await tail.waitFor('SubtaskStarted', (e) => e.data.subtaskId === 'st-fenced');

    await emit(placed('gpu-host-elsewhere', 2, 2));
    await eventually(async () => !(await processRuns(pid)), { message: 'the stale run kept running', timeoutMs: 20_000 });
    const stop = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.commands, { last_by_subj: env.bus.topology.subjects.command(NODE) });
    expect(NodeCommand.parse(stop!.json())).toMatchObject({ kind: 'StopSubtask', subtaskId: 'st-fenced', attempt: 1, leaseEpoch: 1 });
    await eventually(() => !agent.agent.runningKeys.includes('st-fenced#1'));
    expect(tail.all('SubtaskFailed', (e) => e.data.subtaskId === 'st-fenced')).toHaveLength(0);
  });
});
