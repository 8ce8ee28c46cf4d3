/**
 * Proves the scheduler shell on a real nats-server: it places from the log and sends the node
 * command; it answers feasibility and explain requests; a restarted scheduler rebuilds the same
 * state from the log and decides the same; preemption and gangs go through the bus whole; a
 * standby takes over when the leader dies; and two schedulers that both believe they lead
 * still never assign a GPU twice (optimistic concurrency on node subjects + derived ids). A
 * policy from configuration is recorded in the log once, and the log's policy wins over any
 * later instance's configuration.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEvent, nameId, type DomainEvent, type EventData, type NodeCommand, type StoredEvent } from '@fastgpu/contracts';
import { isStreamVersionConflict } from '@fastgpu/eventsourcing';
import { EventPublisher } from '@fastgpu/messaging';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { decide } from '../placement/scheduler.decider';
import { evolve } from '../placement/scheduler.evolve';
import { initialState } from '../placement/scheduler.state';
import { defaultPolicy } from '../placement/placement.types';
import { SchedulerEngine } from './scheduler.engine';

let env: TestEnvironment;
let publisher: EventPublisher;
const engines: SchedulerEngine[] = [];
const clock = { now: () => new Date() };
let counter = 0;

function engine(instanceId: string, leaseTtlMs = 600): SchedulerEngine {
  const e = new SchedulerEngine({ bus: env.bus, policy: defaultPolicy, clock, instanceId, leaseTtlMs, idleCycleMs: 200 });
  engines.push(e);
  return e;
}

async function emit<T extends Parameters<EventPublisher['build']>[0]>(type: T, data: EventData<T>): Promise<number> {
  const id = nameId('engine-test', String(++counter), env.config.subjectPrefix);
  const event = publisher.build(type, data, { id, time: new Date().toISOString(), tenantId: (data as { tenantId?: string }).tenantId ?? null, correlationId: id });
  return (await publisher.publish(event as DomainEvent)).sequence;
}

async function node(nodeId: string, gpuCount = 8, labels: Record<string, string> = {}): Promise<number> {
  return emit('NodeRegistered', { nodeId, gpuModel: 'a100', gpuCount, gpuMemoryGb: 80, labels, agentEpoch: 1, registeredAt: new Date().toISOString() });
}

async function job(jobId: string, options: { gpus?: number; count?: number; priorityClass?: 'high' | 'standard' | 'preemptible'; gang?: boolean } = {}): Promise<number> {
  const { gpus = 1, count = 1, priorityClass = 'standard', gang = false } = options;
  await emit('JobSubmitted', {
    jobId,
    tenantId: 'acme',
    projectId: 'p1',
    gpuModels: ['a100'],
    gpusPerSubtask: gpus,
    subtaskCount: count,
    runtimeMs: 600_000,
    priorityClass,
    priority: 0,
    preemptible: priorityClass === 'preemptible',
    gang,
    capacityType: 'on-demand',
    dependsOn: [],
    submittedAt: new Date().toISOString(),
  });
  let last = 0;
  for (let index = 0; index < count; index++) last = await emit('SubtaskCreated', { jobId, tenantId: 'acme', subtaskId: `${jobId}-${index}`, index, gpus, gpuModels: ['a100'], runtimeMs: 600_000 });
  return last;
}

/** The whole domain log, decoded. */
async function readLog(): Promise<StoredEvent[]> {
  const consumer = await env.bus.js.consumers.get(env.bus.topology.streams.events);
  const info = await env.bus.jsm.streams.info(env.bus.topology.streams.events);
  const out: StoredEvent[] = [];
  while (out.length < info.state.messages) {
    const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
    for await (const m of batch) {
      const decoded = decodeEvent(m.data);
      if (decoded.ok) out.push({ sequence: m.seq, subject: m.subject, event: decoded.event });
      if (m.seq >= info.state.last_seq) break;
    }
    if (out.length && out[out.length - 1]!.sequence >= info.state.last_seq) break;
  }
  return out;
}

async function commandsFor(nodeId: string): Promise<NodeCommand[]> {
  const consumer = await env.bus.js.consumers.get(env.bus.topology.streams.commands, { filter_subjects: env.bus.topology.subjects.command(nodeId) });
  const out: NodeCommand[] = [];
  const batch = await consumer.fetch({ max_messages: 1000, expires: 1000 });
  for await (const m of batch) {
    out.push(m.json<NodeCommand>());
    if (m.info.pending === 0) break;
  }
  return out;
}

const ofType = <T extends DomainEvent['type']>(log: StoredEvent[], type: T): Array<DomainEvent<T>> => log.map((s) => s.event).filter((e) => e.type === type) as unknown as Array<DomainEvent<T>>;

async function stopAll(): Promise<void> {
  for (const e of engines.splice(0)) await e.stop();
}

beforeAll(async () => {
  env = await createTestEnvironment();
  publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test/agent');
});

afterAll(async () => {
  await stopAll();
  await env?.cleanup();
});

describe('scheduler engine on NATS', () => {
  it('places from the log, sends RunSubtask to the node, answers feasibility and explain', async () => {
    await node('n1');
    await job('j1', { gpus: 2 });
    const leader = engine('alpha');
    await leader.start();
    await eventually(() => leader.state.subtasks.get('j1-0')?.status === 'placed');
    const placed = ofType(await readLog(), 'SubtaskPlaced');
    expect(placed.map((e) => [e.data.subtaskId, e.data.nodeId, e.data.gpuIndices])).toEqual([['j1-0', 'n1', [0, 1]]]);
    const commands = await eventually(async () => (await commandsFor('n1')).length > 0 && commandsFor('n1'));
    expect(commands[0]).toMatchObject({ kind: 'RunSubtask', subtaskId: 'j1-0', leaseEpoch: placed[0]!.data.leaseEpoch });

    const ask = async (operation: string, body: unknown) => (await env.bus.nc.request(env.bus.topology.subjects.service('scheduler', operation), JSON.stringify(body), { timeout: 2000 })).json<Record<string, unknown>>();
    const shape = { tenantId: 'acme', gang: false, subtaskCount: 1 };
    expect(await ask('feasibility', { ...shape, gpuModels: ['a100'], gpusPerSubtask: 16 })).toMatchObject({ feasible: false, field: 'gpusPerSubtask' });
    expect(await ask('feasibility', { ...shape, gpuModels: ['tpu'], gpusPerSubtask: 1 })).toMatchObject({ feasible: false, reason: expect.stringMatching(/unknown GPU model tpu/) });
    expect(await ask('feasibility', { ...shape, gpuModels: ['a100'], gpusPerSubtask: 8 })).toEqual({ feasible: true });
    await job('j2', { gpus: 8 });
    await eventually(() => leader.state.jobs.has('j2'));
    expect(await eventually(async () => {
      const answer = await ask('explain', { jobId: 'j2', tenantId: 'acme' });
      return answer.code === 'capacity' && answer;
    })).toMatchObject({ state: 'queued', queuePosition: 1, waiting: expect.stringMatching(/no capacity/) });
  });

  it('rebuilds the same state after a restart and decides the same', async () => {
    const first = engines[0]!;
    await first.stop();
    engines.length = 0;
    const restarted = engine('alpha-2');
    await restarted.start();
    await eventually(() => restarted.caughtUp && restarted.state.lastSequence >= first.state.lastSequence);
    const view = (e: SchedulerEngine) => e.state.nodeList.map((n) => [n.nodeId, n.freeGpus, n.gpuOwner.map((a) => a?.key ?? null), n.schedulerSubjectSequence]);
    expect(view(restarted)).toEqual(view(first));
    const now = new Date().toISOString();
    expect(decide(restarted.state, { now, policy: defaultPolicy }).decisions).toEqual(decide(first.state, { now, policy: defaultPolicy }).decisions);
  });

  it('preempts preemptible work for a higher class through the bus, with a StopSubtask', async () => {
    const leader = engines[0]!;
    // j2 (standard, 8 GPUs) was waiting: the next node goes to it; spot gets the one after.
    await node('n2');
    await eventually(() => leader.state.subtasks.get('j2-0')?.status === 'placed');
    await node('n-spot');
    await job('spot', { gpus: 8, priorityClass: 'preemptible' });
    await eventually(() => leader.state.subtasks.get('spot-0')?.status === 'placed');
    // The fleet is full; an urgent job takes the preemptible one's place.
    await job('urgent', { gpus: 8, priorityClass: 'high' });
    await eventually(() => leader.state.subtasks.get('urgent-0')?.status === 'placed', { timeoutMs: 10_000 });
    const log = await readLog();
    const preempted = ofType(log, 'SubtaskPreempted');
    expect(preempted.map((e) => [e.data.subtaskId, e.data.preemptedByJobId])).toEqual([['spot-0', 'urgent']]);
    expect(ofType(log, 'SubtaskRequeued').map((e) => e.data.subtaskId)).toContain('spot-0');
    expect((await commandsFor('n-spot')).map((c) => c.kind)).toEqual(['RunSubtask', 'StopSubtask', 'RunSubtask']);
  });

  it('places a gang whole or not at all', async () => {
    const leader = engines[0]!;
    await job('gang', { gpus: 4, count: 3, gang: true });
    await eventually(() => leader.state.jobs.has('gang'));
    await new Promise((r) => setTimeout(r, 500));
    expect(ofType(await readLog(), 'SubtaskPlaced').filter((e) => e.data.jobId === 'gang')).toEqual([]);
    await node('n3');
    await node('n4');
    await eventually(() => leader.state.jobs.get('gang')?.runningCount === 3, { timeoutMs: 10_000 });
    expect(ofType(await readLog(), 'SubtaskPlaced').filter((e) => e.data.jobId === 'gang')).toHaveLength(3);
  });

  it('a standby takes over when the leader dies, and continues placing', async () => {
    const leader = engines[0]!;
    const standby = engine('beta');
    await standby.start();
    await eventually(() => standby.caughtUp);
    expect(standby.leader.isLeader).toBe(false);
    // The leader dies without resigning: its timers and fold stop, the lease is left to expire.
    (leader as unknown as { running: boolean }).running = false;
    for (const t of (leader as unknown as { timers: NodeJS.Timeout[] }).timers) clearInterval(t);
    await node('n5');
    await job('after-failover', { gpus: 8 });
    await eventually(() => standby.leader.isLeader, { timeoutMs: 5000 });
    await eventually(() => standby.state.subtasks.get('after-failover-0')?.status === 'placed', { timeoutMs: 10_000 });
    expect(standby.leader.currentTerm).toBeGreaterThan(leader.leader.currentTerm);
  });

  it('never assigns a GPU twice, even when two schedulers both act as leader', async () => {
    await stopAll();
    const a = engine('split-a');
    const b = engine('split-b');
    for (const e of [a, b]) Object.defineProperty(e.leader, 'isLeader', { get: () => true });
    await Promise.all([a.start(), b.start()]);
    await node('n6', 4);
    await node('n7', 4);
    for (let i = 0; i < 12; i++) await job(`race-${i}`, { gpus: 1 });
    await eventually(() => [a, b].every((e) => Array.from({ length: 12 }, (_, i) => e.state.subtasks.get(`race-${i}-0`)).filter((s) => s?.status === 'placed').length >= 8), { timeoutMs: 15_000 });
    const log = await readLog();
    // A fresh fold throws if any GPU were assigned twice.
    const replay = initialState();
    for (const stored of log) evolve(replay, stored);
    const racePlacements = ofType(log, 'SubtaskPlaced').filter((e) => e.data.jobId.startsWith('race-'));
    expect(new Set(racePlacements.map((e) => `${e.data.subtaskId}/${e.data.attempt}`)).size).toBe(racePlacements.length);
    expect(new Set(racePlacements.map((e) => `${e.data.nodeId}#${e.data.gpuIndices.join(',')}`)).size).toBe(racePlacements.length);
  });

  it('rejects a publish with a stale expected subject sequence', async () => {
    const id = nameId('stale', env.config.subjectPrefix);
    // n1's agent subject already holds its registration: "expect nothing there yet" must fail.
    const event = publisher.build('NodeRegistered', { nodeId: 'n1', gpuModel: 'a100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: new Date().toISOString() }, { id, time: new Date().toISOString(), tenantId: null, correlationId: id });
    const error = await publisher.publish(event, { expectedLastSubjectSequence: 0 }).catch((e: unknown) => e);
    // Recognised by JetStream's error code (10071), as the engine and the leader lease recognise it.
    expect(isStreamVersionConflict(error)).toBe(true);
  });

  it('records a configured policy in the log once; a later instance configured otherwise uses the log', async () => {
    await stopAll();
    const configured = { defaultWeight: 1, borrowing: true, tenants: { 'policy-co': { weight: 3, quotas: {} } } };
    const first = new SchedulerEngine({ bus: env.bus, policy: configured, recordPolicy: true, clock, instanceId: 'policy-a', leaseTtlMs: 600, idleCycleMs: 200 });
    engines.push(first);
    await first.start();
    await eventually(() => first.state.policy !== undefined, { timeoutMs: 10_000 });
    expect(first.state.policy).toMatchObject({ actor: 'config', policy: configured });
    await stopAll();
    const other = { defaultWeight: 5, borrowing: false, tenants: {} };
    const second = new SchedulerEngine({ bus: env.bus, policy: other, recordPolicy: true, clock, instanceId: 'policy-b', leaseTtlMs: 600, idleCycleMs: 200 });
    engines.push(second);
    await second.start();
    await eventually(() => second.caughtUp && second.leader.isLeader, { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 400));
    expect(second.policy).toEqual(configured);
    expect(ofType(await readLog(), 'SchedulingPolicySet')).toHaveLength(1);
  });
});
