/**
 * Proves the TypeScript client against the real services (intake + scheduler on NATS and
 * Postgres): allocateGpus waits for the grant and returns node and GPU indices, releaseGpus
 * gives them back, an allocation that cannot be granted in time fails and leaves no lease
 * behind, submitJob is idempotent with a key and getJob reads it back, and API errors surface
 * as FastGpuError with status, code and field.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventId } from '@fastgpu/contracts';
import { hashSecret } from '@fastgpu/auth';
import { EventPublisher } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { intakeService } from '../../../apps/intake/src/intake.service';
import { schedulerService } from '../../../apps/scheduler/src/scheduler.service';
import { FastGpuClient, FastGpuError } from './index';

const KEY = 'client-test-key-000000000000';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let client: FastGpuClient;

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: 'test-admin-key-0123456789abcdef' });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [intakeService, schedulerService], { port: 0, logger: false });
  await runtime.db.insertInto('api_keys').values({ key_id: 'client-key', tenant_id: 'acme', role: 'tenant', secret_hash: hashSecret(KEY), issued_at: new Date() }).execute();
  const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test/agent');
  const id = newEventId();
  await publisher.publish(publisher.build('NodeRegistered', { nodeId: 'n1', gpuModel: 'a100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: new Date().toISOString() }, { id, time: new Date().toISOString(), tenantId: null, correlationId: id }));
  client = new FastGpuClient({ baseUrl: app.url, apiKey: KEY });
  // The scheduler knows the node once feasibility accepts a 4-GPU lease.
  await eventually(async () => (await runtime.bus.nc.request(runtime.bus.topology.subjects.service('scheduler', 'feasibility'), JSON.stringify({ gpuModels: ['a100'], gpusPerSubtask: 4, subtaskCount: 1 }))).json<{ feasible: boolean; reason?: string }>().reason === undefined);
});

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('FastGpuClient', () => {
  it('allocates GPUs (waiting for the grant) and releases them', async () => {
    const lease = await client.allocateGpus({ numGpus: 4, gpuModels: ['a100'], projectId: 'p1', timeoutMs: 10_000 });
    expect(lease).toMatchObject({ state: 'granted', nodeId: 'n1', gpus: 4, gpuIndices: [0, 1, 2, 3] });
    const released = await client.releaseGpus(lease);
    expect(['releasing', 'released']).toContain(released.state);
    await eventually(async () => (await client.getLease(lease.leaseId)).state === 'released');
  });

  it('fails an allocation that is not granted in time and releases the request', async () => {
    const held = await client.allocateGpus({ numGpus: 8, gpuModels: ['a100'], projectId: 'p1', timeoutMs: 10_000 });
    const error = await client.allocateGpus({ numGpus: 2, gpuModels: ['a100'], projectId: 'p1', timeoutMs: 400 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FastGpuError);
    expect(error).toMatchObject({ status: 408, code: 'lease_timeout' });
    const leaseId = /lease (\S+) was not granted/.exec((error as Error).message)![1]!;
    expect((await client.getLease(leaseId)).state).toBe('released');
    await client.releaseGpus(held);
  });

  it('submits a job idempotently and reads it back', async () => {
    const job = { projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 2, runtimeSeconds: 600 };
    const first = await client.submitJob(job, { idempotencyKey: 'client-spec-1' });
    const again = await client.submitJob(job, { idempotencyKey: 'client-spec-1' });
    expect(again.jobId).toBe(first.jobId);
    expect(first.subtasks).toHaveLength(2);
    const read = await eventually(async () => {
      const j = await client.getJob(first.jobId);
      return j.subtasks.every((s) => s.nodeId === 'n1') && j;
    });
    expect(read.jobId).toBe(first.jobId);
  });

  it('surfaces API errors with status, code and field', async () => {
    const error = await client.allocateGpus({ numGpus: 64, gpuModels: ['a100'], projectId: 'p1' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'FastGpuError', status: 422, field: 'gpus' });
    const missing = await client.getJob('no-such-job').catch((e: unknown) => e);
    expect(missing).toMatchObject({ status: 404, code: 'not_found' });
  });
});
