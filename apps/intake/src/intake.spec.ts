/**
 * Proves the intake API on real NATS and Postgres: admin creates tenants and keys; a job is
 * validated, divided and appended to the log; a retried POST with the same Idempotency-Key is
 * the same job (one set of events); bad input gets 400/422 with the field and publishes nothing;
 * a submission without an Idempotency-Key is 400; a missing API key is 401 and another tenant's job is 404; the read models rebuild from the log
 * into identical rows (npm run replay -- intake-jobs | intake-directory).
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { lastSequence } from '@fastgpu/messaging';
import { Rebuild } from '@fastgpu/replay';
import type { ErrorBody } from '@fastgpu/http';
import type { JobSummaryView, JobView } from './jobs/jobs.schema';
import { intakeService } from './intake.service';
import { directoryReplayable, jobsReplayable } from './intake.replayable';

const ADMIN = 'test-admin-key-0123456789abcdef';
let env: TestEnvironment;
let runtime: OwnedRuntime;

/** What these routes answer: a job, a page of jobs, an issued key's secret, or an error. */
type Answer = Partial<JobView> & { jobs?: JobSummaryView[]; secret?: string; error?: ErrorBody['error'] };
let app: StartedApp;

async function call(method: string, path: string, key?: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const answer: Answer = text ? (JSON.parse(text) as Answer) : {};
  return { status: response.status, body: answer };
}

async function tenantWithKey(tenantId: string): Promise<string> {
  expect((await call('POST', '/v1/tenants', ADMIN, { tenantId, name: tenantId })).status).toBe(201);
  const key = await call('POST', `/v1/tenants/${tenantId}/api-keys`, ADMIN, {});
  expect(key.status).toBe(201);
  return key.body.secret!;
}

const job = { projectId: 'vision', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 3, runtimeSeconds: 60 };

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [intakeService], { port: 0, logger: false });
});

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('intake', () => {
  it('creates a tenant and a key whose secret authenticates at once', async () => {
    const key = await tenantWithKey('acme');
    expect(key).toMatch(/^fgk_/);
    const list = await call('GET', '/v1/jobs', key);
    expect(list.status).toBe(200);
    expect(list.body.jobs).toEqual([]);
  });

  it('divides a job into sub-tasks and returns the same job for a retried Idempotency-Key', async () => {
    const key = await tenantWithKey('retry-co');
    const first = await call('POST', '/v1/jobs', key, job, { 'idempotency-key': 'k-1' });
    expect(first.status).toBe(202);
    expect(first.body.state).toBe('pending');
    expect(first.body.subtasks).toHaveLength(3);
    const before = await lastSequence(env.bus, env.bus.topology.streams.events);
    const second = await call('POST', '/v1/jobs', key, job, { 'idempotency-key': 'k-1' });
    expect(second.status).toBe(200);
    expect(second.body.jobId).toBe(first.body.jobId);
    // The retry's events were dropped as duplicates: the log did not grow.
    expect(await lastSequence(env.bus, env.bus.topology.streams.events)).toBe(before);
    const conflicting = await call('POST', '/v1/jobs', key, { ...job, subtaskCount: 4 }, { 'idempotency-key': 'k-1' });
    expect(conflicting.status).toBe(409);
    expect(conflicting.body.error?.field).toBe('Idempotency-Key');
  });

  it('gives concurrent submissions with one Idempotency-Key one job, and many keys many jobs', async () => {
    const key = await tenantWithKey('burst-co');
    // Sent together, these land in one batch of key claims: the same key twice must still be one job.
    const same = await Promise.all([1, 2, 3].map(() => call('POST', '/v1/jobs', key, job, { 'idempotency-key': 'burst' })));
    expect(new Set(same.map((r) => r.body.jobId)).size).toBe(1);
    expect(same.map((r) => r.status).sort()).toEqual([200, 200, 202]);
    const clash = await Promise.all([call('POST', '/v1/jobs', key, job, { 'idempotency-key': 'clash' }), call('POST', '/v1/jobs', key, { ...job, subtaskCount: 5 }, { 'idempotency-key': 'clash' })]);
    expect(clash.map((r) => r.status).sort()).toEqual([202, 409]);
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => call('POST', '/v1/jobs', key, job, { 'idempotency-key': `many-${i}` })));
    expect(many.every((r) => r.status === 202)).toBe(true);
    expect(new Set(many.map((r) => r.body.jobId)).size).toBe(20);
    const listed = await call('GET', '/v1/jobs?limit=100', key);
    expect(listed.body.jobs).toHaveLength(22);
  });

  it('rejects bad input with the field and reason, publishing nothing', async () => {
    const key = await tenantWithKey('bad-input');
    const before = await lastSequence(env.bus, env.bus.topology.streams.events);
    const idem = { 'idempotency-key': 'bad-1' };
    const wrongType = await call('POST', '/v1/jobs', key, { ...job, gpusPerSubtask: 'two' }, idem);
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error).toMatchObject({ code: 'invalid_request', field: 'gpusPerSubtask' });
    const zero = await call('POST', '/v1/jobs', key, { ...job, gpusPerSubtask: 0 }, idem);
    expect(zero.status).toBe(422);
    expect(zero.body.error?.field).toBe('gpusPerSubtask');
    const both = await call('POST', '/v1/jobs', key, { ...job, totalGpuHours: '3' }, idem);
    expect(both.status).toBe(422);
    expect(both.body.error?.field).toBe('subtaskCount');
    const unknownField = await call('POST', '/v1/jobs', key, { ...job, tenantId: 'someone-else' }, idem);
    expect(unknownField.status).toBe(400);
    // A submission without an Idempotency-Key is refused: its retry would be a second job.
    const noKey = await call('POST', '/v1/jobs', key, job);
    expect(noKey.status).toBe(400);
    expect(noKey.body.error).toMatchObject({ code: 'invalid_request', field: 'Idempotency-Key' });
    expect(await lastSequence(env.bus, env.bus.topology.streams.events)).toBe(before);
  });

  it('answers 401 without a valid key and 404 for another tenant’s job', async () => {
    const owner = await tenantWithKey('owner');
    const other = await tenantWithKey('other');
    const submitted = await call('POST', '/v1/jobs', owner, job, { 'idempotency-key': 'owned-1' });
    expect(submitted.status).toBe(202);
    expect((await call('GET', `/v1/jobs/${submitted.body.jobId}`)).status).toBe(401);
    expect((await call('GET', `/v1/jobs/${submitted.body.jobId}`, 'fgk_not-a-real-key')).status).toBe(401);
    const foreign = await call('GET', `/v1/jobs/${submitted.body.jobId}`, other);
    expect(foreign.status).toBe(404);
    expect((await call('GET', `/v1/jobs/${submitted.body.jobId}`, owner)).status).toBe(200);
    // Tenants cannot administer tenants.
    expect((await call('POST', '/v1/tenants', owner, { name: 'sneaky' })).status).toBe(403);
  });

  it('rebuilds the jobs and directory read models from the log into identical rows', async () => {
    const key = await tenantWithKey('rebuilt');
    expect((await call('POST', '/v1/jobs', key, job, { 'idempotency-key': 'rebuilt-1' })).status).toBe(202);
    expect((await call('GET', '/v1/jobs', key)).body.jobs).toHaveLength(1);
    for (const replayable of [jobsReplayable, directoryReplayable]) {
      const rebuild = new Rebuild(env.bus, runtime.db, replayable);
      expect((await rebuild.prepare()).fresh).toBe(true);
      await rebuild.catchUp();
      const result = await rebuild.alignAndCompare();
      expect(result.equal).toBe(true);
      await rebuild.discard();
    }
  });
});
