/**
 * Proves that a placement whose RunSubtask never reached the commands stream is not placed for
 * ever (real NATS; found by the nemesis, issue 16: a SubtaskPlaced stored just before the stream
 * leader was killed got no command, and its job never ended). Here the commands stream refuses
 * every new message (max_msgs reached, discard new) while the leader places: the placement is in
 * the log, its command publish fails. Once the stream accepts again the leader, still leading, sends
 * the command again: the simulated node runs the sub-task and the job completes, with one RunSubtask
 * stored. The periodic resend of a placement not reported started (OverdueRuns) is shown without
 * the bus: due after its bound, not again before the next bound, forgotten once started.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiscardPolicy } from '@nats-io/jetstream';
import { nameId, type DomainEvent, type EventData, type NodeCommand } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { SimulatedNode } from '../../../node-simulator/src/simulated-node';
import { defaultPolicy } from '../placement/placement.types';
import { evolve } from '../placement/scheduler.evolve';
import { initialState } from '../placement/scheduler.state';
import { COMMAND_RESEND_AFTER_MS, OverdueRuns } from './command-resends';
import { SchedulerEngine } from './scheduler.engine';

let env: TestEnvironment;
let publisher: EventPublisher;
let engine: SchedulerEngine | undefined;
let node: SimulatedNode | undefined;
let counter = 0;
const errors: Error[] = [];

async function emit<T extends Parameters<EventPublisher['build']>[0]>(type: T, data: EventData<T>): Promise<void> {
  const id = nameId('lost-command-test', String(++counter), env.config.subjectPrefix);
  await publisher.publish(publisher.build(type, data, { id, time: new Date().toISOString(), tenantId: (data as { tenantId?: string }).tenantId ?? null, correlationId: id }) as DomainEvent);
}

async function submit(jobId: string): Promise<void> {
  const submittedAt = new Date().toISOString();
  await emit('JobSubmitted', { jobId, tenantId: 'acme', projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeMs: 60_000, priorityClass: 'standard', priority: 0, preemptible: false, gang: false, capacityType: 'on-demand', dependsOn: [], submittedAt });
  await emit('SubtaskCreated', { jobId, tenantId: 'acme', subtaskId: `${jobId}-0`, index: 0, gpus: 1, gpuModels: ['a100'], runtimeMs: 60_000 });
}

async function runCommandsFor(subtaskId: string): Promise<NodeCommand[]> {
  const { bus } = env;
  const consumer = await bus.js.consumers.get(bus.topology.streams.commands, { filter_subjects: bus.topology.subjects.command('n1') });
  const info = await bus.jsm.streams.info(bus.topology.streams.commands);
  const out: NodeCommand[] = [];
  if (info.state.messages === 0) return out;
  const batch = await consumer.fetch({ max_messages: 1000, expires: 1000 });
  for await (const m of batch) {
    out.push(m.json<NodeCommand>());
    if (m.info.pending === 0) break;
  }
  return out.filter((c) => c.kind === 'RunSubtask' && c.subtaskId === subtaskId);
}

/** The commands stream refuses new messages (as when it has no leader) or accepts them again. */
async function commandsStreamRefuses(refuse: boolean): Promise<void> {
  const { jsm, topology } = env.bus;
  // A command to another node first: a stream at max_msgs 0 would not be limited at all.
  if (refuse) await env.bus.js.publish(topology.subjects.command('n0'), JSON.stringify({ filler: true }));
  const { config, state } = await jsm.streams.info(topology.streams.commands);
  await jsm.streams.update(topology.streams.commands, refuse ? { ...config, max_msgs: state.messages, discard: DiscardPolicy.New } : { ...config, max_msgs: -1, discard: DiscardPolicy.Old });
}

beforeAll(async () => {
  env = await createTestEnvironment();
  publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test/lost-command');
});

afterAll(async () => {
  await engine?.stop();
  await node?.stop();
  await env?.cleanup();
});

describe('a placement whose command was lost', () => {
  it('gets its RunSubtask again from the leader, and the job completes', async () => {
    node = new SimulatedNode(env.bus, { nodeId: 'n1', gpuModel: 'a100', gpuCount: 2, gpuMemoryGb: 80 }, { speed: 0.005, heartbeatIntervalMs: 1000 });
    await node.start();
    engine = new SchedulerEngine({ bus: env.bus, policy: defaultPolicy, clock: { now: () => new Date() }, instanceId: 'lost-command', leaseTtlMs: 600, idleCycleMs: 200, onError: (error) => errors.push(error) });
    await engine.start();
    await eventually(() => engine!.leader.isLeader && engine!.caughtUp && engine!.state.nodes.has('n1'));

    await commandsStreamRefuses(true);
    await submit('lost');
    await eventually(() => engine!.state.subtasks.get('lost-0')?.status === 'placed');
    // The placement is stored; its command was refused, so the node has nothing to run.
    await eventually(() => errors.length > 0);
    expect(await runCommandsFor('lost-0')).toEqual([]);
    expect(node.runningSubtasks).toEqual([]);

    await commandsStreamRefuses(false);
    await eventually(() => engine!.state.completedJobs.get('lost')?.outcome === 'succeeded', { timeoutMs: 20_000 });
    expect(engine.leader.isLeader).toBe(true);
    const runs = await runCommandsFor('lost-0');
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ kind: 'RunSubtask', subtaskId: 'lost-0', jobId: 'lost', attempt: 1 });
  });
});

describe('OverdueRuns', () => {
  it('sends a placement not reported started once per bound, and forgets it once started', () => {
    const state = initialState();
    const at = (ms: number) => new Date(ms).toISOString();
    const t0 = Date.parse('2026-12-01T00:00:00.000Z');
    let sequence = 0;
    const apply = <T extends Parameters<EventPublisher['build']>[0]>(type: T, data: EventData<T>, subject = 'p.evt.x') => {
      evolve(state, { sequence: ++sequence, subject, event: publisher.build(type, data, { id: `00000000-0000-7000-8000-${String(sequence).padStart(12, '0')}`, time: at(t0), tenantId: null, correlationId: 'c' }) as DomainEvent });
    };
    apply('NodeRegistered', { nodeId: 'n1', gpuModel: 'a100', gpuCount: 2, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: at(t0) });
    apply('JobSubmitted', { jobId: 'j', tenantId: 'acme', projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeMs: 60_000, priorityClass: 'standard', priority: 0, preemptible: false, gang: false, capacityType: 'on-demand', dependsOn: [], submittedAt: at(t0) });
    apply('SubtaskCreated', { jobId: 'j', tenantId: 'acme', subtaskId: 'j-0', index: 0, gpus: 1, gpuModels: ['a100'], runtimeMs: 60_000 });
    apply('SubtaskPlaced', { jobId: 'j', tenantId: 'acme', projectId: 'p1', capacityType: 'on-demand', subtaskId: 'j-0', attempt: 1, nodeId: 'n1', gpuModel: 'a100', gpus: 1, gpuIndices: [0], leaseEpoch: 1, runtimeMs: 60_000, placedAt: at(t0) }, 'p.evt.scheduler.node.n1');
    expect(state.unstarted.size).toBe(1);

    const overdue = new OverdueRuns();
    expect(overdue.due(state, t0 + COMMAND_RESEND_AFTER_MS - 1)).toEqual([]);
    const due = overdue.due(state, t0 + COMMAND_RESEND_AFTER_MS);
    expect(due).toEqual([{ nodeId: 'n1', command: expect.objectContaining({ kind: 'RunSubtask', commandId: '00000000-0000-7000-8000-000000000004', subtaskId: 'j-0', attempt: 1, leaseEpoch: 1, gpuIndices: [0], issuedAt: at(t0) }) }]);
    expect(overdue.due(state, t0 + 2 * COMMAND_RESEND_AFTER_MS - 1)).toEqual([]);
    expect(overdue.due(state, t0 + 2 * COMMAND_RESEND_AFTER_MS)).toHaveLength(1);

    apply('SubtaskStarted', { jobId: 'j', tenantId: 'acme', subtaskId: 'j-0', attempt: 1, nodeId: 'n1', leaseEpoch: 1, startedAt: at(t0 + 1) }, 'p.evt.agent.node.n1');
    expect(state.unstarted.size).toBe(0);
    expect(overdue.due(state, t0 + 10 * COMMAND_RESEND_AFTER_MS)).toEqual([]);
  });
});
