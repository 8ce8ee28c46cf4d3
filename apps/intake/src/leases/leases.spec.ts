/**
 * Proves leases end to end over HTTP on real NATS and Postgres with the scheduler running:
 * POST /v1/leases is granted with a node and GPU indices once placed, another tenant cannot see
 * it (404), a lease no node could hold is refused with 422, DELETE releases it and the GPUs
 * return to the pool; the GPU-ms between grant and release is reported.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventId } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, insertTestApiKey, type TestEnvironment } from '@fastgpu/testing';
import { schedulerService } from '../../../scheduler/src/scheduler.service';
import { LeasesModule } from './leases.module';

const ADMIN = 'test-admin-key-0123456789abcdef';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;

async function key(secret: string, tenantId: string | null, role = 'tenant'): Promise<void> {
  await insertTestApiKey(runtime.db, { keyId: secret, tenantId, role, issuedAt: new Date(), secret });
}

async function call(method: string, path: string, secret: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${secret}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [{ name: 'intake', module: LeasesModule }, schedulerService], { port: 0, logger: false });
  await key('acme-key-000000000000000000', 'acme');
  await key('other-key-00000000000000000', 'other');
  const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test/agent');
  const id = newEventId();
  await publisher.publish(publisher.build('NodeRegistered', { nodeId: 'n1', gpuModel: 'a100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: new Date().toISOString() }, { id, time: new Date().toISOString(), tenantId: null, correlationId: id }));
  await eventually(async () => ((await call('GET', '/v1/nodes', ADMIN)).body.nodes as unknown[]).length === 1);
});

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('leases over HTTP', () => {
  it('grants N GPUs, hides the lease from other tenants, releases it and reports GPU-ms', async () => {
    const granted = await call('POST', '/v1/leases?waitMs=10000', 'acme-key-000000000000000000', { projectId: 'p1', gpuModels: ['a100'], gpus: 4 });
    expect(granted.status).toBe(201);
    expect(granted.body).toMatchObject({ state: 'granted', nodeId: 'n1', gpuModel: 'a100', gpus: 4, gpuIndices: [0, 1, 2, 3] });
    const leaseId = granted.body.leaseId as string;
    expect((await call('GET', `/v1/leases/${leaseId}`, 'other-key-00000000000000000')).status).toBe(404);
    expect((await call('DELETE', `/v1/leases/${leaseId}`, 'other-key-00000000000000000')).status).toBe(404);

    const released = await call('DELETE', `/v1/leases/${leaseId}`, 'acme-key-000000000000000000');
    expect(released.status).toBe(202);
    const final = await eventually(async () => {
      const got = await call('GET', `/v1/leases/${leaseId}`, 'acme-key-000000000000000000');
      return got.body.state === 'released' && got.body;
    });
    expect(final.releaseReason).toBe('released by the tenant');
    expect(final.gpuMs).toBe(4 * (Date.parse(final.releasedAt as string) - Date.parse(final.grantedAt as string)));
    await eventually(async () => ((await call('GET', '/v1/nodes', ADMIN)).body.nodes as Array<{ freeGpus: number }>)[0]!.freeGpus === 8);
  });

  it('refuses a lease no node could ever hold, and a malformed one', async () => {
    const tooBig = await call('POST', '/v1/leases', 'acme-key-000000000000000000', { projectId: 'p1', gpuModels: ['a100'], gpus: 16 });
    expect(tooBig.status).toBe(422);
    expect(tooBig.body.error).toMatchObject({ field: 'gpus', message: expect.stringMatching(/largest a100 node has 8/) });
    const unknown = await call('POST', '/v1/leases', 'acme-key-000000000000000000', { projectId: 'p1', gpuModels: ['tpu'], gpus: 1 });
    expect(unknown.status).toBe(422);
    expect((await call('POST', '/v1/leases', 'acme-key-000000000000000000', { projectId: 'p1', gpuModels: ['a100'], gpus: 0 })).status).toBe(422);
    expect((await call('POST', '/v1/leases', 'acme-key-000000000000000000', { projectId: 'p1', gpus: 'four' })).status).toBe(400);
  });

  it('answers 202 with the lease still requested when nothing is free, and grants it later', async () => {
    const full = await call('POST', '/v1/leases?waitMs=5000', 'acme-key-000000000000000000', { projectId: 'p1', gpuModels: ['a100'], gpus: 8 });
    expect(full.status).toBe(201);
    const waiting = await call('POST', '/v1/leases?waitMs=300', 'other-key-00000000000000000', { projectId: 'p1', gpuModels: ['a100'], gpus: 2 });
    expect(waiting.status).toBe(202);
    expect(waiting.body.state).toBe('requested');
    await call('DELETE', `/v1/leases/${full.body.leaseId as string}`, 'acme-key-000000000000000000');
    await eventually(async () => (await call('GET', `/v1/leases/${waiting.body.leaseId as string}`, 'other-key-00000000000000000')).body.state === 'granted');
  });
});
