/**
 * Proves that a retried POST /v1/jobs answers the job while intake's jobs read model lags behind
 * its events (real NATS and Postgres; found by the nemesis, issue 16: retries with the same
 * Idempotency-Key after a timeout during faults answered 404 for jobs that existed, ran and were
 * billed). With intake's projections stopped, a job is submitted (202: its events are in the log,
 * its row is not) and submitted again with the same key: 200 with the same job id and sub-tasks,
 * read from the job's events, and nothing appended twice. Once the projections run again the
 * retry answers from the read model, still the same job.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '@fastgpu/auth';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { IntakeModule } from '../intake.module';
import { IntakeProjections } from '../shared/intake-projections';

const TENANT_KEY = 'acme-key-000000000000000000';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let projections: IntakeProjections;

async function submit(idempotencyKey: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${app.url}/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TENANT_KEY}`, 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
    body: JSON.stringify({ projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 2, runtimeSeconds: 30 }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: 'test-admin-key-0123456789abcdef' });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [{ name: 'intake', module: IntakeModule }], { port: 0, logger: false });
  await runtime.db.insertInto('api_keys').values({ key_id: TENANT_KEY, tenant_id: 'acme', role: 'tenant', secret_hash: hashSecret(TENANT_KEY), issued_at: new Date() }).execute();
  projections = app.app.get(IntakeProjections);
});

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('a job submission retried while the read model lags', () => {
  it('answers the same job from its events, never 404', async () => {
    // The read models stop following the log: the job's events are stored, its row is not.
    await projections.onApplicationShutdown();
    const first = await submit('retry-lag-1');
    expect(first.status).toBe(202);
    const jobId = first.body.jobId as string;
    expect(await runtime.db.selectFrom('jobs').select('job_id').where('job_id', '=', jobId).executeTakeFirst()).toBeUndefined();

    const retried = await submit('retry-lag-1');
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ jobId, tenantId: 'acme', projectId: 'p1', submittedAt: first.body.submittedAt });
    expect((retried.body.subtasks as Array<{ subtaskId: string }>).map((s) => s.subtaskId)).toEqual((first.body.subtasks as Array<{ subtaskId: string }>).map((s) => s.subtaskId));
    expect(retried.body.subtasks).toHaveLength(2);

    // JobSubmitted and two SubtaskCreated: the retry appended nothing.
    const subject = runtime.bus.topology.subjects.job(jobId);
    const info = await runtime.bus.jsm.streams.info(runtime.bus.topology.streams.events, { subjects_filter: subject });
    expect(info.state.subjects).toEqual({ [subject]: 3 });

    await projections.onApplicationBootstrap();
    await eventually(async () => (await runtime.db.selectFrom('jobs').select('job_id').where('job_id', '=', jobId).executeTakeFirst()) !== undefined);
    const later = await submit('retry-lag-1');
    expect(later).toMatchObject({ status: 200, body: { jobId, state: 'pending' } });
    expect(later.body.subtasks).toHaveLength(2);
  });
});
