/**
 * Proves the one Idempotency-Key rule on every intake create route (issue 14, point 9), on real
 * NATS and Postgres: for jobs (where the key is required, over HTTP and gRPC), leases and
 * tenants, the same key with the same body answers the original resource and publishes nothing
 * new; the same key with another body answers 409 `idempotency_key_reused` with the field, also
 * when both arrive at once; keys are per tenant and per route; a key whose request was claimed
 * but never published gets its events on the retry; a tenant id taken meanwhile leaves the key
 * free; and key issuance refuses the header (its secret is never stored, so no retry could
 * repeat the answer).
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { nameId } from '@fastgpu/contracts';
import { ErrorTrailers, IntakeServiceName, loadFastGpuProtos } from '@fastgpu/grpc';
import { lastSequence } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { intakeService } from './intake.service';
import { requestHash } from './shared/idempotency';

const ADMIN = 'test-admin-key-0123456789abcdef';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
const keys: Record<string, string> = {};
type Client = grpc.Client & Record<string, (request: object, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void>;
let intake: Client;

async function call(method: string, path: string, secret: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${secret}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown> & { error?: { code: string; field?: string } }) : undefined };
}
const logEnd = () => lastSequence(env.bus, env.bus.topology.streams.events);
const reused = { error: { code: 'idempotency_key_reused', field: 'Idempotency-Key' } };

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [intakeService], { port: 0, logger: false });
  for (const tenantId of ['acme', 'globex']) {
    expect((await call('POST', '/v1/tenants', ADMIN, { tenantId, name: tenantId })).status).toBe(201);
    keys[tenantId] = (await call('POST', `/v1/tenants/${tenantId}/api-keys`, ADMIN, {})).body!.secret as string;
  }
  const Service = IntakeServiceName.split('.').reduce<Record<string, unknown>>((o, k) => o[k] as Record<string, unknown>, grpc.loadPackageDefinition(loadFastGpuProtos()) as never) as unknown as grpc.ServiceClientConstructor;
  intake = new Service(`127.0.0.1:${app.grpcPort}`, grpc.credentials.createInsecure()) as unknown as Client;
});

afterAll(async () => {
  intake?.close();
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('Idempotency-Key on every create route', () => {
  const job = { projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeSeconds: 60 };

  it('requires a key on job submission, over HTTP and gRPC', async () => {
    const before = await logEnd();
    expect(await call('POST', '/v1/jobs', keys.acme!, job)).toMatchObject({ status: 400, body: { error: { code: 'invalid_request', field: 'Idempotency-Key' } } });
    expect(await call('POST', '/v1/jobs', keys.acme!, job, { 'idempotency-key': 'has space' })).toMatchObject({ status: 400, body: { error: { field: 'Idempotency-Key' } } });
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${keys.acme!}`);
    const error = await new Promise<grpc.ServiceError>((resolve, reject) => intake.SubmitJob!(job, metadata, (e) => (e ? resolve(e) : reject(new Error('accepted without a key')))));
    expect([error.code, error.metadata.get(ErrorTrailers.field)[0]]).toEqual([grpc.status.INVALID_ARGUMENT, 'Idempotency-Key']);
    expect(await logEnd()).toBe(before);
  });

  it('leases: the same key and body is the same lease; another body is 409, also at once', async () => {
    const lease = { projectId: 'p', gpuModels: ['a100'], gpus: 2 };
    const first = await call('POST', '/v1/leases', keys.acme!, lease, { 'idempotency-key': 'lease-1' });
    expect(first.status).toBe(202);
    const before = await logEnd();
    const again = await call('POST', '/v1/leases', keys.acme!, lease, { 'idempotency-key': 'lease-1' });
    expect(again).toMatchObject({ status: 202, body: { leaseId: first.body!.leaseId, requestedAt: first.body!.requestedAt } });
    expect(await call('POST', '/v1/leases', keys.acme!, { ...lease, gpus: 4 }, { 'idempotency-key': 'lease-1' })).toMatchObject({ status: 409, body: reused });
    expect(await logEnd()).toBe(before);
    // Another tenant's key of the same name is its own.
    const theirs = await call('POST', '/v1/leases', keys.globex!, { ...lease, gpus: 4 }, { 'idempotency-key': 'lease-1' });
    expect(theirs.status).toBe(202);
    expect(theirs.body!.leaseId).not.toBe(first.body!.leaseId);
    const together = await Promise.all([call('POST', '/v1/leases', keys.acme!, lease, { 'idempotency-key': 'lease-2' }), call('POST', '/v1/leases', keys.acme!, { ...lease, gpus: 3 }, { 'idempotency-key': 'lease-2' })]);
    expect(together.map((r) => r.status).sort()).toEqual([202, 409]);
  });

  it('tenants: the same key and body is the same tenant (its id chosen once); another body is 409', async () => {
    const first = await call('POST', '/v1/tenants', ADMIN, { name: 'Initech' }, { 'idempotency-key': 'tenant-1' });
    expect(first.status).toBe(201);
    const before = await logEnd();
    expect(await call('POST', '/v1/tenants', ADMIN, { name: 'Initech' }, { 'idempotency-key': 'tenant-1' })).toEqual(first);
    expect(await call('POST', '/v1/tenants', ADMIN, { name: 'Initrode' }, { 'idempotency-key': 'tenant-1' })).toMatchObject({ status: 409, body: reused });
    expect(await logEnd()).toBe(before);
    // A tenant id taken by another request leaves the key free for a corrected body.
    expect(await call('POST', '/v1/tenants', ADMIN, { tenantId: 'acme', name: 'Acme again' }, { 'idempotency-key': 'tenant-2' })).toMatchObject({ status: 409, body: { error: { code: 'conflict', field: 'tenantId' } } });
    expect((await call('POST', '/v1/tenants', ADMIN, { tenantId: 'acme-2', name: 'Acme again' }, { 'idempotency-key': 'tenant-2' })).status).toBe(201);
  });

  it('jobs: a key claimed by a request that never published gets its events on the retry', async () => {
    const request = { ...job, priorityClass: 'standard', priority: 0, gang: false, dependsOn: [] };
    const jobId = nameId('acme', 'job', 'crashed-1');
    // As if a first attempt claimed its key and died before publishing.
    await runtime.db.insertInto('idempotency_keys').values({ tenant_id: 'acme', scope: 'job', key: 'crashed-1', request_hash: requestHash(request), resource_id: jobId, created_at: new Date() }).execute();
    const retry = await call('POST', '/v1/jobs', keys.acme!, job, { 'idempotency-key': 'crashed-1' });
    expect(retry).toMatchObject({ status: 200, body: { jobId, state: 'pending' } });
    expect((await call('GET', `/v1/jobs/${jobId}`, keys.acme!)).status).toBe(200);
    expect(await call('POST', '/v1/jobs', keys.acme!, { ...job, subtaskCount: 2 }, { 'idempotency-key': 'crashed-1' })).toMatchObject({ status: 409, body: reused });
    // The same key names another resource on another route.
    expect((await call('POST', '/v1/leases', keys.acme!, { projectId: 'p', gpuModels: ['a100'], gpus: 1 }, { 'idempotency-key': 'crashed-1' })).status).toBe(202);
  });

  it('key issuance refuses the header: the secret is shown once and never stored', async () => {
    const before = await logEnd();
    expect(await call('POST', '/v1/tenants/acme/api-keys', ADMIN, {}, { 'idempotency-key': 'key-1' })).toMatchObject({ status: 400, body: { error: { code: 'invalid_request', field: 'Idempotency-Key' } } });
    expect(await call('POST', '/v1/api-keys', ADMIN, { role: 'sre' }, { 'idempotency-key': 'key-2' })).toMatchObject({ status: 400, body: { error: { field: 'Idempotency-Key' } } });
    expect(await logEnd()).toBe(before);
  });
});
