/**
 * Proves that without a quorum the API answers 503 with Retry-After and never half-stores a
 * submission (issue 16): intake on a 3-server JetStream cluster (streams at R3); two of the three
 * servers are killed with SIGKILL, so the domain stream has no leader and no write can be
 * acknowledged. `POST /v1/jobs` answers 503 with `Retry-After` once the publisher's retries (same
 * Nats-Msg-Id) run out. With the servers back, the same request with the same Idempotency-Key
 * creates the job: its JobSubmitted and each SubtaskCreated are in the log exactly once.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliverPolicy } from '@nats-io/jetstream';
import { decodeEvent } from '@fastgpu/contracts';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { intakeService } from '../../apps/intake/src/intake.service';
import { startCluster, type Cluster } from '../../scripts/cluster/cluster';
import { call } from '../faults/harness';

const ADMIN = 'fgk_no_quorum_admin_key_0123456789abcdef';
let cluster: Cluster;
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;

beforeAll(async () => {
  cluster = await startCluster({ size: 3 });
  env = await createTestEnvironment({ natsUrl: cluster.natsUrl, streamReplicas: 3, adminKey: ADMIN, publishRetryMs: 3000 });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [intakeService], { port: 0, logger: false });
}, 90_000);

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
  await cluster?.stop();
});

describe('no quorum', () => {
  it('answers 503 with Retry-After while the log cannot take a write, and the retry with the same key stores the job once', async () => {
    // Right after the streams were scaled to R3 a first write may wait for their leaders: retried.
    const key = await eventually(
      async () => {
        const tenant = await call(app, 'POST', '/v1/tenants', ADMIN, { tenantId: 'acme', name: 'acme' }, { 'idempotency-key': 'tenant-acme' });
        if (tenant.status !== 201 && tenant.status !== 200) return undefined;
        const issued = await call(app, 'POST', '/v1/tenants/acme/api-keys', ADMIN, {});
        return issued.status === 201 ? (issued.body.secret as string) : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    const body = { projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 2, runtimeSeconds: 60 };
    const headers = { 'idempotency-key': 'no-quorum-1' };

    const leader = await eventually(() => cluster.streamLeader(env.bus.topology.streams.events));
    const others = cluster.servers.map((s) => s.name).filter((name) => name !== leader);
    await cluster.kill(leader);
    await cluster.kill(others[0]!);
    const refused = await call(app, 'POST', '/v1/jobs', key, body, headers);
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.body.error.code).toBe('unavailable');

    await cluster.restart(leader);
    await cluster.restart(others[0]!);
    const created = await eventually(
      async () => {
        const answer = await call(app, 'POST', '/v1/jobs', key, body, headers);
        return answer.status === 201 || answer.status === 200 ? answer : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000, message: 'the retried submission was not accepted after the servers came back' },
    );
    const jobId = created.body.jobId as string;

    const counts = await eventually(
      async () => {
        const consumer = await env.bus.js.consumers.get(env.bus.topology.streams.events, { deliver_policy: DeliverPolicy.All, filter_subjects: env.bus.topology.subjects.job(jobId) });
        const byType: Record<string, number> = {};
        let pending = (await consumer.info(true)).num_pending;
        while (pending > 0) {
          const m = await consumer.next({ expires: 3000 });
          if (!m) throw new Error('the log stopped answering');
          const decoded = decodeEvent(m.data);
          if (decoded.ok) byType[decoded.event.type] = (byType[decoded.event.type] ?? 0) + 1;
          pending = m.info.pending;
        }
        return byType;
      },
      { timeoutMs: 30_000 },
    );
    expect(counts).toEqual({ JobSubmitted: 1, SubtaskCreated: 2 });
  }, 150_000);
});
