/**
 * Proves that revoking an API key takes effect at once on every transport and in every process,
 * on real NATS and Postgres: a key that works over gRPC and HTTP is refused with UNAUTHENTICATED
 * / 401 by the very next call after `DELETE /v1/api-keys/{id}` answers — no cache keeps it alive
 * for a few seconds, in this process or in another one reading the same key directory — and a
 * key issued a moment ago works at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { OpenApiModule } from '../../libs/openapi/src';
import { intakeService } from '../../apps/intake/src/intake.service';
import { ADMIN, metadata, startEdge, unary, type Edge } from './harness';

let edge: Edge;
let otherRuntime: OwnedRuntime;
let otherProcess: StartedApp;

beforeAll(async () => {
  edge = await startEdge([intakeService]);
  // A second app on the same database and bus, as a second process would be: it serves only
  // the platform routes (health, docs), enough to see how it authenticates.
  otherRuntime = await createRuntime(edge.env.config);
  otherProcess = await startServices(otherRuntime, [{ name: 'intake', module: OpenApiModule }], { port: 0, logger: false });
});
afterAll(async () => {
  await otherProcess?.close();
  await otherRuntime?.close();
  await edge?.close();
});

describe('revocation', () => {
  it('refuses a revoked key on the next gRPC and HTTP call, here and in another process', async () => {
    const key = await edge.tenantKey('acme');
    const intake = edge.intake();
    // Warm every path that could cache: several authenticated calls on each transport and process.
    for (let i = 0; i < 3; i++) {
      const before = await unary(intake, 'GetJob', { jobId: 'no-such-job' }, metadata(key.secret));
      expect(before.ok ? 'ok' : before.error.code).toBe(grpc.status.NOT_FOUND);
      expect((await edge.http('GET', '/v1/jobs', key.secret)).status).toBe(200);
      // Authenticated (a tenant may not read details): 403, not 401.
      expect((await fetch(`${otherProcess.url}/v1/health`, { headers: { authorization: `Bearer ${key.secret}` } })).status).toBe(403);
    }

    const revoked = await edge.http('DELETE', `/v1/api-keys/${key.keyId}`, ADMIN);
    expect(revoked.status).toBe(204);

    const grpcAfter = await unary(intake, 'GetJob', { jobId: 'no-such-job' }, metadata(key.secret));
    expect(grpcAfter.ok ? 'ok' : grpcAfter.error.code).toBe(grpc.status.UNAUTHENTICATED);
    const httpAfter = await edge.http('GET', '/v1/jobs', key.secret);
    expect(httpAfter.status).toBe(401);
    expect(httpAfter.body).toMatchObject({ error: { code: 'unauthenticated', field: 'Authorization' } });
    expect((await fetch(`${otherProcess.url}/v1/health`, { headers: { authorization: `Bearer ${key.secret}` } })).status).toBe(401);
  });

  it('accepts a key issued a moment ago on gRPC at once', async () => {
    const key = await edge.tenantKey('globex');
    const answer = await unary(edge.intake(), 'GetJob', { jobId: 'no-such-job' }, metadata(key.secret));
    expect(answer.ok ? 'ok' : answer.error.code).toBe(grpc.status.NOT_FOUND);
  });
});
