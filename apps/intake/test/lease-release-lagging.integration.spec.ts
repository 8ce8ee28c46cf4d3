/**
 * Proves that DELETE /v1/leases/{id} releases a lease the leases read model has not caught up with
 * yet (real NATS and Postgres; found by the nemesis, issue 16): with the leases projection stopped,
 * a lease is requested (its LeaseRequested is in the log, its row is not) and released at once.
 * Before, the release read only the read model and answered 404, so the lease was later granted
 * and held for ever. Now the lease's own history decides: 202, the LeaseReleaseRequested is in the
 * log once, a retried DELETE publishes nothing again, and once the projection runs again the row
 * says released. Another tenant's lease and an unknown id are still 404. GET reads the same
 * history while the row is missing (read-your-writes): `requested`, then `releasing`, never 404.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '@fastgpu/auth';
import { newEntityId } from '@fastgpu/contracts';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { LeasesModule } from '../src/leases/leases.module';
import { LeasesService } from '../src/leases/leases.service';

const TENANT_KEY = 'acme-key-000000000000000000';
const OTHER_KEY = 'other-key-00000000000000000';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let leases: LeasesService;

async function call(method: string, path: string, key: string, body?: unknown, idempotencyKey?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${app.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: 'test-admin-key-0123456789abcdef' });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [{ name: 'intake', module: LeasesModule }], { port: 0, logger: false });
  for (const [key, tenantId] of [[TENANT_KEY, 'acme'], [OTHER_KEY, 'other']] as const) {
    await runtime.db.insertInto('api_keys').values({ key_id: key, tenant_id: tenantId, role: 'tenant', secret_hash: hashSecret(key), issued_at: new Date() }).execute();
  }
  leases = app.app.get(LeasesService);
});

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('a lease released while the read model lags', () => {
  it('is released from its history, not refused with 404', async () => {
    // The read model stops following the log: the request's event is stored, its row is not.
    await leases.onApplicationShutdown();
    const requested = await call('POST', '/v1/leases', TENANT_KEY, { projectId: 'p1', gpuModels: ['a100'], gpus: 1 }, 'release-lag-1');
    expect(requested.status).toBe(202);
    const leaseId = requested.body.leaseId as string;
    expect(await runtime.db.selectFrom('leases').select('lease_id').where('lease_id', '=', leaseId).executeTakeFirst()).toBeUndefined();
    const read = await call('GET', `/v1/leases/${leaseId}`, TENANT_KEY);
    expect(read).toMatchObject({ status: 200, body: { leaseId, tenantId: 'acme', projectId: 'p1', state: 'requested', gpus: 1, gpuModels: ['a100'], gpuMs: 0 } });
    expect((await call('GET', `/v1/leases/${leaseId}`, OTHER_KEY)).status).toBe(404);
    expect((await call('GET', `/v1/leases/${newEntityId()}`, TENANT_KEY)).status).toBe(404);

    expect((await call('DELETE', `/v1/leases/${leaseId}`, OTHER_KEY)).status).toBe(404);
    const released = await call('DELETE', `/v1/leases/${leaseId}`, TENANT_KEY);
    expect(released.status).toBe(202);
    expect(released.body).toMatchObject({ leaseId, tenantId: 'acme', state: 'releasing', gpuMs: 0 });
    expect((await call('DELETE', `/v1/leases/${leaseId}`, TENANT_KEY)).status).toBe(202);
    expect((await call('DELETE', `/v1/leases/${newEntityId()}`, TENANT_KEY)).status).toBe(404);
    expect((await call('GET', `/v1/leases/${leaseId}`, TENANT_KEY)).body).toMatchObject({ leaseId, state: 'releasing' });

    const subject = runtime.bus.topology.subjects.lease(leaseId);
    const info = await runtime.bus.jsm.streams.info(runtime.bus.topology.streams.events, { subjects_filter: subject });
    // LeaseRequested and one LeaseReleaseRequested: the retried DELETE and the refused ones published nothing.
    expect(info.state.subjects).toEqual({ [subject]: 2 });

    await leases.onApplicationBootstrap();
    await eventually(async () => (await runtime.db.selectFrom('leases').select('state').where('lease_id', '=', leaseId).executeTakeFirst())?.state === 'released');
    const after = await call('GET', `/v1/leases/${leaseId}`, TENANT_KEY);
    expect(after.body).toMatchObject({ leaseId, state: 'released', releaseReason: 'released before it was granted', gpuMs: 0 });
  });
});
