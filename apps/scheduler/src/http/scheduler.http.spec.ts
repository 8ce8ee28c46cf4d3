/**
 * Proves the scheduler's HTTP routes through Fastify on real NATS and Postgres: the literal colon
 * in POST /v1/jobs:dry-run routes (and places nothing), the capacity plan computes
 * ceil(R / (T · L · η)) with what is free now, and node drain/undrain publish events that stop
 * and resume placement on the node; tenants may not drain, and a reason with a control character
 * (or capacity-plan input with one) is a 400 with the field. The scheduling policy is set through
 * PUT /v1/scheduling-policy as an event that decisions then use, and a new scheduler folding the
 * same log has the same policy whatever it was configured with.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventId } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, insertTestApiKey, type TestEnvironment } from '@fastgpu/testing';
import { schedulerService } from '../scheduler.service';
import { SchedulerRunner } from '../scheduler.runner';
import { SchedulerEngine } from '../scheduling/scheduler.engine';
import { defaultPolicy } from '../placement/placement.types';

const ADMIN = 'test-admin-key-0123456789abcdef';
const TENANT = 'acme-key-000000000000000000';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;

async function call(method: string, path: string, secret: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${secret}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [schedulerService], { port: 0, logger: false });
  await insertTestApiKey(runtime.db, { keyId: 'k1', tenantId: 'acme', role: 'tenant', issuedAt: new Date(), secret: TENANT });
  const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test/agent');
  for (const [nodeId, gpuModel] of [
    ['n1', 'a100'],
    ['n2', 'h100'],
  ] as const) {
    const id = newEventId();
    await publisher.publish(publisher.build('NodeRegistered', { nodeId, gpuModel, gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: new Date().toISOString() }, { id, time: new Date().toISOString(), tenantId: null, correlationId: id }));
  }
  await eventually(() => app.app.get(SchedulerRunner).engine.state.nodeList.length === 2);
});

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('scheduler HTTP', () => {
  it('routes POST /v1/jobs:dry-run (a literal colon) and says where a job would go, placing nothing', async () => {
    const result = await call('POST', '/v1/jobs:dry-run', TENANT, { projectId: 'p1', gpuModels: ['h100', 'a100'], gpusPerSubtask: 4, subtaskCount: 3, runtimeSeconds: 600 });
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ wouldPlace: true, subtaskCount: 3, placedNow: 3 });
    expect((result.body.placements as Array<{ nodeId: string }>).map((p) => p.nodeId)).toEqual(['n2', 'n2', 'n1']);
    expect(app.app.get(SchedulerRunner).engine.state.nodeList.map((n) => n.freeGpus)).toEqual([8, 8]);
    const impossible = await call('POST', '/v1/jobs:dry-run', TENANT, { projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 8, subtaskCount: 3, gang: true, runtimeSeconds: 60 });
    expect(impossible.status).toBe(422);
    expect(impossible.body.error).toMatchObject({ message: expect.stringMatching(/larger than the fleet/) });
    expect((await call('POST', '/v1/jobs:dry-run', TENANT, { projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 'x', runtimeSeconds: 60 })).status).toBe(400);
  });

  it('plans capacity exactly and shows what is free now', async () => {
    const plan = await call('GET', '/v1/capacity-plan?gpuHours=500&hours=1&load=0.8&efficiency=0.95', TENANT);
    expect(plan.status).toBe(200);
    expect(plan.body).toMatchObject({ gpusNeeded: 658, quotient: '657.894736842105', freeGpusNow: 16, shortfallNow: 642, freeNow: { a100: { freeGpus: 8 }, h100: { freeGpus: 8 } } });
    expect((await call('GET', '/v1/capacity-plan?gpuHours=500&hours=0', TENANT)).status).toBe(422);
    expect(await call('GET', '/v1/capacity-plan?gpuHours=5%000&hours=1', TENANT)).toMatchObject({ status: 400, body: { error: { field: 'gpuHours' } } });
  });

  it('drains and undrains a node (operators only), which stops and resumes placement there', async () => {
    expect((await call('POST', '/v1/nodes/n1/drain', TENANT, {})).status).toBe(403);
    // A drain reason no store could hold (it ends up in SLA reports) is refused before publishing.
    expect(await call('POST', '/v1/nodes/n1/drain', ADMIN, { reason: 'maint\u0000enance' })).toMatchObject({ status: 400, body: { error: { field: 'reason' } } });
    expect(app.app.get(SchedulerRunner).engine.state.nodes.get('n1')?.status).toBe('ready');
    const drained = await call('POST', '/v1/nodes/n1/drain', ADMIN, { reason: 'maintenance' });
    expect(drained).toMatchObject({ status: 202, body: { nodeId: 'n1', status: 'drained' } });
    const dry = await call('POST', '/v1/jobs:dry-run', TENANT, { projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeSeconds: 60 });
    expect(dry.body).toMatchObject({ wouldPlace: false, code: 'capacity' });
    expect((await call('POST', '/v1/nodes/n1/undrain', ADMIN)).body).toMatchObject({ status: 'ready' });
    expect((await call('POST', '/v1/nodes/ghost/drain', ADMIN, {})).status).toBe(404);
  });

  it('sets the scheduling policy as an event (operators only) that decisions use and a rebuild keeps', async () => {
    const before = await call('GET', '/v1/scheduling-policy', ADMIN);
    expect(before).toMatchObject({ status: 200, body: { source: 'config', sequence: null, policy: defaultPolicy } });
    const policy = { borrowing: false, tenants: { acme: { weight: 2, quotas: { a100: { nominal: 2 } } } } };
    expect((await call('PUT', '/v1/scheduling-policy', TENANT, { policy, reason: 'mine' })).status).toBe(403);
    const bad = await call('PUT', '/v1/scheduling-policy', ADMIN, { policy: { tenants: { acme: { quotas: { a100: { nominal: -1 } } } } }, reason: 'typo' });
    expect(bad.status).toBe(422);
    expect((bad.body.error as { field: string }).field).toMatch(/nominal/);
    const set = await call('PUT', '/v1/scheduling-policy', ADMIN, { policy, reason: 'acme buys 2 reserved A100s' });
    expect(set).toMatchObject({ status: 200, body: { source: 'log', actor: 'admin', policy: { defaultWeight: 1, borrowing: false, tenants: { acme: { weight: 2, quotas: { a100: { nominal: 2 } } } } } } });
    // The quota now binds: 4 A100s for acme wait for quota although 8 are free.
    const dry = await call('POST', '/v1/jobs:dry-run', TENANT, { projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 4, subtaskCount: 1, runtimeSeconds: 60 });
    expect(dry.body).toMatchObject({ wouldPlace: false, code: 'quota' });
    // Another scheduler configured with the default policy folds the same log into the same policy.
    const fresh = new SchedulerEngine({ bus: env.bus, policy: defaultPolicy, clock: { now: () => new Date() }, instanceId: 'policy-check', leaseTtlMs: 600, idleCycleMs: 200 });
    await fresh.start();
    try {
      await eventually(() => fresh.caughtUp && fresh.state.lastSequence >= (set.body.sequence as number));
      expect(fresh.policy).toEqual(set.body.policy);
    } finally {
      await fresh.stop();
    }
    const reset = await call('PUT', '/v1/scheduling-policy', ADMIN, { policy: {}, reason: 'back to defaults' });
    expect(reset.body).toMatchObject({ source: 'log', policy: defaultPolicy });
    expect(reset.body.sequence).toBeGreaterThan(set.body.sequence as number);
  });
});
