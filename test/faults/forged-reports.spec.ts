/**
 * Proves, with every service running on real NATS and PostgreSQL, that a node cannot end another
 * node's work. n2 reports n1's running sub-task completed with the right attempt and lease epoch
 * (epochs are guessable): once naming itself, once naming n1 but published on its own subject
 * (the subject is what per-node NATS credentials bind). Every consumer of node reports refuses
 * both by the one shared rule (libs/contracts `judgeNodeReport`): the sub-task stays running in
 * the jobs read model, its metered allocation stays open (usage continues) with both refusals
 * counted, its GPUs are not handed to a second job that waits for exactly those GPUs, reliability
 * records ReportRejected against n2 and tells n2 (never n1) to stop, and the scheduler, metering,
 * intake and reliability each count the refusals in fastgpu_node_reports_rejected_total.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { makeEvent, newEventId, type EventData } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { SimulatedNode } from '../../apps/node-simulator/src/simulated-node';
import { allServices } from '../../apps/fastgpu/src/services';
import { call, eventsOn, ofType, rejectionsByConsumer, tenantKey } from './harness';

const ADMIN = 'faults-admin-key-0123456789abcdef';
const HEARTBEAT_MS = 500;

let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let n1: SimulatedNode;
let n2: SimulatedNode;

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN, heartbeatIntervalMs: HEARTBEAT_MS });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, allServices, { port: 0, logger: false });
  // The only a100 GPUs are n1's: a second a100 job can run only if n1's GPUs are freed.
  n1 = new SimulatedNode(env.bus, { nodeId: 'n1', gpuModel: 'a100', gpuCount: 2, gpuMemoryGb: 80 }, { heartbeatIntervalMs: HEARTBEAT_MS });
  n2 = new SimulatedNode(env.bus, { nodeId: 'n2', gpuModel: 'h100', gpuCount: 2, gpuMemoryGb: 80 }, { heartbeatIntervalMs: HEARTBEAT_MS });
  await n1.start();
  await n2.start();
});

afterAll(async () => {
  await n1?.stop();
  await n2?.stop();
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('forged node reports', () => {
  it("n2 cannot complete n1's sub-task, even with the right attempt and lease epoch", async () => {
    const key = await tenantKey(app, ADMIN, 'acme');
    const request = { projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 1, runtimeSeconds: 600 };
    const a = await call(app, 'POST', '/v1/jobs', key, request, { 'idempotency-key': 'forged-a' });
    expect(a.status).toBe(202);
    const jobA = a.body.jobId as string;
    const running = await eventually(async () => {
      const view = await call(app, 'GET', `/v1/jobs/${jobA}`, key);
      const subtask = view.body.subtasks?.[0];
      return subtask?.state === 'running' ? subtask : undefined;
    });
    expect(running.nodeId).toBe('n1');
    const placed = ofType(await eventsOn(env.bus, `${env.bus.topology.prefix}.evt.scheduler.node.n1`), 'SubtaskPlaced').find((e) => e.data.jobId === jobA)!;
    const before = await rejectionsByConsumer();

    // The forgeries: the right sub-task, attempt and epoch, sent by n2.
    const report = { jobId: jobA, tenantId: 'acme', subtaskId: placed.data.subtaskId, attempt: placed.data.attempt, leaseEpoch: placed.data.leaseEpoch };
    const endedAt = new Date().toISOString();
    const asItself: EventData<'SubtaskCompleted'> = { ...report, nodeId: 'n2', exitCode: 0, endedAt };
    const asN1: EventData<'SubtaskCompleted'> = { ...report, nodeId: 'n1', exitCode: 0, endedAt };
    const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'fastgpu/node/n2');
    const meta = (id: string) => ({ id, source: 'fastgpu/node/n2', time: endedAt, tenantId: 'acme', correlationId: jobA });
    const forgedIds = [newEventId(), newEventId()];
    await publisher.publish(makeEvent('SubtaskCompleted', asItself, meta(forgedIds[0]!), env.bus.topology.subjects.agentNode('n2')));
    await publisher.publish(makeEvent('SubtaskCompleted', asN1, meta(forgedIds[1]!), env.bus.topology.subjects.agentNode('n2')));

    // A second job wanting exactly n1's GPUs.
    const b = await call(app, 'POST', '/v1/jobs', key, request, { 'idempotency-key': 'forged-b' });
    expect(b.status).toBe(202);
    const jobB = b.body.jobId as string;

    // Every consumer has read and refused both forgeries.
    const after = await eventually(async () => {
      const counts = await rejectionsByConsumer();
      const grew = ['scheduler', 'metering-usage', 'intake-jobs', 'reliability'].every((c) => (counts[c] ?? 0) - (before[c] ?? 0) >= 2);
      return grew ? counts : undefined;
    });
    for (const consumer of ['scheduler', 'metering-usage', 'intake-jobs', 'reliability']) expect((after[consumer] ?? 0) - (before[consumer] ?? 0)).toBe(2);

    // Reliability: both on record against n2, and n2 (not n1) told to stop.
    const rejected = await eventually(async () => {
      const events = ofType(await eventsOn(env.bus, `${env.bus.topology.prefix}.evt.reliability.node.>`), 'ReportRejected').filter((e) => e.causationid !== undefined && forgedIds.includes(e.causationid));
      return events.length === 2 ? events : undefined;
    });
    expect(rejected.map((e) => e.data.nodeId)).toEqual(['n2', 'n2']);
    expect(rejected.map((e) => e.data.reason)).toEqual(['sub-task is placed on node n1, not n2', 'report naming node n1 was published on the subject of node n2']);

    // The scheduler has folded job B (it explains why B waits) and still holds n1's GPUs for A.
    const waiting = await eventually(async () => {
      const view = await call(app, 'GET', `/v1/jobs/${jobB}`, key);
      return view.body.scheduling ? view.body : undefined;
    });
    expect(waiting.state).toBe('pending');
    await new Promise((resolve) => setTimeout(resolve, 3 * HEARTBEAT_MS));
    const viewB = await call(app, 'GET', `/v1/jobs/${jobB}`, key);
    expect(viewB.body.state).toBe('pending');
    expect(viewB.body.subtasks[0].state).toBe('pending');

    // Intake: A still runs; n1 still runs it.
    const viewA = await call(app, 'GET', `/v1/jobs/${jobA}`, key);
    expect(viewA.body.state).toBe('running');
    expect(viewA.body.subtasks[0]).toMatchObject({ state: 'running', endedAt: null });
    expect(n1.runningSubtasks).toEqual([`${placed.data.subtaskId}#${placed.data.attempt}`]);

    // Metering: the allocation is open (its usage continues), both forgeries counted as stale.
    const { rows } = await sql<{ end_ms: string | null; gpu_ms: string | null; stale_reports: number }>`
      SELECT end_ms, gpu_ms, stale_reports FROM metering_allocations WHERE job_id = ${jobA}`.execute(env.database.db);
    expect(rows).toEqual([{ end_ms: null, gpu_ms: null, stale_reports: 2 }]);
  });
});
