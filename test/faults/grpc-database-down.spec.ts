/**
 * Proves that while PostgreSQL cannot be reached the gRPC API answers UNAVAILABLE with
 * `retry-after` (what HTTP answers 503 with Retry-After), never INTERNAL, and serves again once
 * it can: intake (HTTP and gRPC) reaches the machine's PostgreSQL only through a TCP relay on a
 * free loopback port owned by this test. Cutting the relay (its open connections destroyed, new
 * ones refused) is the database gone for this process alone; the server itself keeps running.
 * A tenant's GetJob needs the database (its API key is looked up, then the job read model).
 */
import 'reflect-metadata';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { DATABASE_RETRY_AFTER_SECONDS } from '@fastgpu/db';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { ErrorTrailers, loadFastGpuProtos } from '../../libs/grpc/src';
import { intakeService } from '../../apps/intake/src/intake.service';
import { call, tenantKey } from './harness';

const ADMIN = 'faults-admin-key-0123456789abcdef';

/** A TCP relay from a loopback port to `target`; `cut()` drops every connection and refuses new ones until `open()`. */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = createConnection(this.target);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        socket.once('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.once('close', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (typeof address === 'object' && address) this.port = address.port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
}

let env: TestEnvironment;
let relay: Relay;
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
  const database = new URL(env.config.databaseUrl!);
  relay = new Relay({ host: database.hostname, port: Number(database.port || 5432) });
  await relay.open();
  database.host = `127.0.0.1:${relay.port}`;
  runtime = await createRuntime({ ...env.config, databaseUrl: database.toString() });
  app = await startServices(runtime, [intakeService], { port: 0, logger: false });
  const loaded = grpc.loadPackageDefinition(loadFastGpuProtos()) as unknown as { fastgpu: { intake: { v1: { IntakeService: grpc.ServiceClientConstructor } } } };
  intake = new loaded.fastgpu.intake.v1.IntakeService(`127.0.0.1:${app.grpcPort}`, grpc.credentials.createInsecure()) as unknown as typeof intake;
});

afterAll(async () => {
  intake?.close();
  await relay?.open().catch(() => undefined);
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
