/**
 * Proves the scheduler's side of the typed intake ↔ scheduler request/reply (libs/contracts
 * service-requests.ts) on a real nats-server: every feasibility and explain request is validated;
 * a request that is not JSON, lacks a field, carries an unknown one or exceeds submission's limits
 * gets a typed `invalid_request` error reply naming the field, never a crash or silence, and the
 * engine keeps answering valid requests afterwards; every reply parses with its reply schema.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainReply, feasibilityReply, newEventId, SUBTASKS_PER_JOB_MAX } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { SchedulerEngine } from '../scheduling/scheduler.engine';
import { defaultPolicy } from '../placement/placement.types';

let env: TestEnvironment;
let engine: SchedulerEngine;

async function ask(operation: 'feasibility' | 'explain', body: unknown): Promise<unknown> {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  return (await env.bus.nc.request(env.bus.topology.subjects.service('scheduler', operation), payload, { timeout: 2000 })).json();
}

beforeAll(async () => {
  env = await createTestEnvironment();
  const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test/agent');
  const id = newEventId();
  const now = new Date().toISOString();
  await publisher.publish(publisher.build('NodeRegistered', { nodeId: 'n1', gpuModel: 'a100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: now }, { id, time: now, tenantId: null, correlationId: id }));
  engine = new SchedulerEngine({ bus: env.bus, policy: defaultPolicy, clock: { now: () => new Date() }, instanceId: 'requests', leaseTtlMs: 600, idleCycleMs: 200 });
  await engine.start();
  await eventually(() => engine.caughtUp && engine.state.nodeList.length === 1);
});

afterAll(async () => {
  await engine?.stop();
  await env?.cleanup();
});

describe('scheduler request/reply', () => {
  const valid = { tenantId: 'acme', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 1, gang: false };

  it('answers bad feasibility requests with a typed error naming the field', async () => {
    const cases: Array<[unknown, string | undefined]> = [
      ['not json {', undefined],
      [{ ...valid, tenantId: undefined }, 'tenantId'],
      [{ ...valid, tenantId: 'a b' }, 'tenantId'],
      [{ ...valid, subtaskCount: SUBTASKS_PER_JOB_MAX + 1 }, 'subtaskCount'],
      [{ ...valid, gpusPerSubtask: 'two' }, 'gpusPerSubtask'],
      [{ ...valid, gpuModels: ['a\u0000'] }, 'gpuModels.0'],
      [{ ...valid, dependsOn: [{ jobId: 'x', condition: 'afterAny' }] }, undefined],
      [[1, 2, 3], undefined],
      [null, undefined],
    ];
    for (const [body, field] of cases) {
      const reply = await ask('feasibility', body);
      expect(feasibilityReply.safeParse(reply).success).toBe(true);
      expect({ body, reply }).toMatchObject({ reply: { error: { code: 'invalid_request', ...(field ? { field } : {}) } } });
    }
    // Still answering, and typed.
    expect(await ask('feasibility', valid)).toEqual({ feasible: true });
    const no = await ask('feasibility', { ...valid, gpusPerSubtask: 16 });
    expect(feasibilityReply.parse(no)).toMatchObject({ feasible: false, field: 'gpusPerSubtask' });
  });

  it('answers bad explain requests with a typed error, and good ones with a typed explanation', async () => {
    for (const [body, field] of [
      [{ jobId: 'j1' }, 'tenantId'],
      [{ jobId: 'j\u0000', tenantId: 'acme' }, 'jobId'],
      [{ jobId: 'j1', tenantId: 'acme', extra: true }, undefined],
    ] as const) {
      const reply = await ask('explain', body);
      expect(explainReply.safeParse(reply).success).toBe(true);
      expect(reply).toMatchObject({ error: { code: 'invalid_request', ...(field ? { field } : {}) } });
    }
    expect(explainReply.parse(await ask('explain', { jobId: 'j1', tenantId: 'acme' }))).toEqual({ state: 'unknown' });
  });
});
