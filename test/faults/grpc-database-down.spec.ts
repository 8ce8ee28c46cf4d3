/**
 * Proves that while PostgreSQL cannot be reached the gRPC API answers UNAVAILABLE with
 * `retry-after` (what HTTP answers 503 with Retry-After), never INTERNAL, and serves again once
 * it can: intake (HTTP and gRPC) reaches the machine's PostgreSQL only through a TCP relay on a
 * free loopback port owned by this test. Cutting the relay (its open connections destroyed, new
 * ones refused) is the database gone for this process alone; the server itself keeps running.
 * A tenant's GetJob needs the database (its API key is looked up, then the job read model).
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { DATABASE_RETRY_AFTER_SECONDS } from '@fastgpu/db';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, TcpRelay, type TestEnvironment } from '@fastgpu/testing';
import { ErrorTrailers, loadFastGpuProtos } from '../../libs/grpc/src';
import { intakeService } from '../../apps/intake/src/intake.service';
import { call, tenantKey } from './harness';

const ADMIN = 'faults-admin-key-0123456789abcdef';

let env: TestEnvironment;
let relay: TcpRelay;
let runtime: OwnedRuntime;
let app: StartedApp;
let intake: grpc.Client & { GetJob: (request: object, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response?: unknown) => void) => void };

function getJob(key: string, jobId: string): Promise<{ error: grpc.ServiceError | null }> {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${key}`);
  return new Promise((resolve) => intake.GetJob({ jobId }, metadata, (error) => resolve({ error })));
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN });
  relay = TcpRelay.to(env.config.databaseUrl!, 5432);
  await relay.open();
  runtime = await createRuntime({ ...env.config, databaseUrl: relay.through(env.config.databaseUrl!) });
  app = await startServices(runtime, [intakeService], { port: 0, logger: false });
  const loaded = grpc.loadPackageDefinition(loadFastGpuProtos()) as unknown as { fastgpu: { intake: { v1: { IntakeService: grpc.ServiceClientConstructor } } } };
  intake = new loaded.fastgpu.intake.v1.IntakeService(`127.0.0.1:${app.grpcPort}`, grpc.credentials.createInsecure()) as unknown as typeof intake;
});

afterAll(async () => {
  intake?.close();
  await relay?.open();
  await app?.close();
  await runtime?.close();
  await relay?.cut();
  await env?.cleanup();
});

describe('PostgreSQL out of reach, over gRPC', () => {
  it('answers UNAVAILABLE with retry-after while it is, never INTERNAL, and serves again once it is back', async () => {
    const key = await tenantKey(app, ADMIN, 'acme');
    const missing = await getJob(key, 'job-missing');
    expect(missing.error?.code).toBe(grpc.status.NOT_FOUND);

    await relay.cut();
    // Several rounds: the first calls meet pooled connections the cut dropped, later ones are refused.
    for (let round = 0; round < 3; round++) {
      const { error } = await getJob(key, 'job-missing');
      expect({ code: error?.code, details: error?.details }).toEqual({ code: grpc.status.UNAVAILABLE, details: 'the database is unavailable; retry later' });
      expect(error?.metadata.get(ErrorTrailers.code)).toEqual(['unavailable']);
      expect(error?.metadata.get('retry-after')).toEqual([String(DATABASE_RETRY_AFTER_SECONDS)]);
      // HTTP says the same in the same state.
      const http = await call(app, 'GET', '/v1/jobs', key);
      expect(http.status).toBe(503);
    }

    await relay.open();
    await eventually(async () => (await getJob(key, 'job-missing')).error?.code === grpc.status.NOT_FOUND, { timeoutMs: 20_000, message: 'gRPC did not serve again once the database was back' });
  });
});
