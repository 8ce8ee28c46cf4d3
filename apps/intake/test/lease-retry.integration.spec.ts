/**
 * Proves that a lease request retried with the same Idempotency-Key answers the lease it asked
 * for, never 404, while the leases read model lags behind the log (real NATS and Postgres): with
 * the leases projection stopped, the first POST publishes its LeaseRequested and answers the lease
 * from that event (202, requested); the retry finds the event in the log (nothing published again)
 * and answers the same lease; once the projection runs again the retry answers the row, still
 * the same lease, and the log holds one LeaseRequested for it. Another body under the key is 409.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '@fastgpu/auth';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { LeasesModule } from '../src/leases/leases.module';
import { LeasesService } from '../src/leases/leases.service';

const TENANT_KEY = 'acme-key-000000000000000000';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let leases: LeasesService;

async function post(body: unknown, idempotencyKey: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${app.url}/v1/leases`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TENANT_KEY}`, 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: 'test-admin-key-0123456789abcdef' });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [{ name: 'intake', module: LeasesModule }], { port: 0, logger: false });
  await runtime.db.insertInto('api_keys').values({ key_id: TENANT_KEY, tenant_id: 'acme', role: 'tenant', secret_hash: hashSecret(TENANT_KEY), issued_at: new Date() }).execute();
  leases = app.app.get(LeasesService);
});

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('a lease request retried with the same Idempotency-Key', () => {
  it('answers the same lease while the read model lags, and after it caught up', async () => {
    const body = { projectId: 'p1', gpuModels: ['a100'], gpus: 2 };
    // The read model stops following the log: the request's event is stored, its row is not.
    await leases.onApplicationShutdown();

    const first = await post(body, 'retry-1');
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ tenantId: 'acme', projectId: 'p1', state: 'requested', gpus: 2, gpuModels: ['a100'], capacityType: 'on-demand', gpuMs: 0 });
    const leaseId = first.body.leaseId as string;
    expect(await runtime.db.selectFrom('leases').select('lease_id').where('lease_id', '=', leaseId).executeTakeFirst()).toBeUndefined();

    const retried = await post(body, 'retry-1');
    expect(retried.status).toBe(202);
    expect(retried.body).toEqual(first.body);

    await leases.onApplicationBootstrap();
    await eventually(async () => (await runtime.db.selectFrom('leases').select('lease_id').where('lease_id', '=', leaseId).executeTakeFirst()) !== undefined);
    const afterCatchUp = await post(body, 'retry-1');
    expect(afterCatchUp.status).toBe(202);
    expect(afterCatchUp.body).toEqual(first.body);

    const subject = runtime.bus.topology.subjects.lease(leaseId);
    const info = await runtime.bus.jsm.streams.info(runtime.bus.topology.streams.events, { subjects_filter: subject });
    expect(info.state.subjects).toEqual({ [subject]: 1 });

    expect((await post({ ...body, gpus: 3 }, 'retry-1')).status).toBe(409);
  });
});
