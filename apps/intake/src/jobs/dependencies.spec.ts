/**
 * Proves that dependencies and job lookups resolve only within the tenant (issue 14, point 4), on
 * real NATS and Postgres with the scheduler running:
 * - depending on another tenant's job (queued, or ended) answers exactly like a missing id: the
 *   same status, code, field and message (with the id it was given), and the same work: the same
 *   lookups and the same catch-up with the log on both paths (counted, so no timing can differ
 *   but noise); GET /v1/jobs/{id} of another tenant's job likewise;
 * - a job's own dependency on a job of its tenant is accepted;
 * - no answer reveals how another tenant's job ended: the scheduler's explanation of another
 *   tenant's job, queued or ended, is the `unknown` of a missing id.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { newEventId } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { schedulerService } from '../../../scheduler/src/scheduler.service';
import { SchedulerRunner } from '../../../scheduler/src/scheduler.runner';
import { intakeService } from '../intake.service';
import { JobsService } from './jobs.service';

const ADMIN = 'test-admin-key-0123456789abcdef';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
const keys: Record<string, string> = {};
let counter = 0;
const shape = { projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 8, subtaskCount: 1, runtimeSeconds: 600 };

async function call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}
const submit = (tenant: string, body: unknown) => call('POST', '/v1/jobs', keys[tenant]!, body, { 'idempotency-key': `dependency-${++counter}` });
const dependingOn = (jobId: string) => ({ ...shape, gpusPerSubtask: 1, dependsOn: [{ jobId, condition: 'afterAny' }] });
/** An answer with the id it names replaced, to compare answers about two different ids. */
const withoutId = (answer: { status: number; body?: unknown }, jobId: string) => JSON.parse(JSON.stringify(answer).replaceAll(jobId, '<id>')) as unknown;

/** The lookups and catch-ups JobsService makes while `run` runs. */
async function workOf(run: () => Promise<unknown>): Promise<Record<string, number>> {
  const jobs = app.app.get<JobsService, Record<string, (...args: unknown[]) => unknown>>(JobsService);
  const spies = (['ownJobIds', 'catchUp', 'visibleRow'] as const).map((name) => [name, vi.spyOn(jobs, name)] as const);
  try {
    await run();
    return Object.fromEntries(spies.map(([name, spy]) => [name, spy.mock.calls.length]));
  } finally {
    for (const [, spy] of spies) spy.mockRestore();
  }
}

async function ask(operation: 'explain', body: unknown): Promise<unknown> {
  return (await env.bus.nc.request(env.bus.topology.subjects.service('scheduler', operation), JSON.stringify(body), { timeout: 2000 })).json();
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [intakeService, schedulerService], { port: 0, logger: false });
  for (const tenantId of ['alpha', 'bravo']) {
    expect((await call('POST', '/v1/tenants', ADMIN, { tenantId, name: tenantId })).status).toBe(201);
    keys[tenantId] = (await call('POST', `/v1/tenants/${tenantId}/api-keys`, ADMIN, {})).body!.secret as string;
  }
  const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test/agent');
  const id = newEventId();
  const now = new Date().toISOString();
  await publisher.publish(publisher.build('NodeRegistered', { nodeId: 'n1', gpuModel: 'a100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: now }, { id, time: now, tenantId: null, correlationId: id }));
  const engine = app.app.get(SchedulerRunner).engine;
  await eventually(() => engine.caughtUp && engine.state.nodeList.length === 1);
});

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('dependencies resolve within the tenant', () => {
  it("answers a dependency on another tenant's job exactly like a missing one, doing the same work", async () => {
    const bravos = await submit('bravo', shape);
    expect(bravos.status).toBe(202);
    const bravoJobId = bravos.body!.jobId as string;
    const missingJobId = '01999999-0000-7000-8000-000000000000';

    for (let round = 0; round < 3; round++) {
      let foreign!: Awaited<ReturnType<typeof submit>>;
      let missing!: Awaited<ReturnType<typeof submit>>;
      const foreignWork = await workOf(async () => (foreign = await submit('alpha', dependingOn(bravoJobId))));
      const missingWork = await workOf(async () => (missing = await submit('alpha', dependingOn(missingJobId))));
      expect(foreign.status).toBe(422);
      expect(foreign.body).toMatchObject({ error: { field: 'dependsOn.0.jobId' } });
      expect(withoutId(foreign, bravoJobId)).toEqual(withoutId(missing, missingJobId));
      // Both paths look up the tenant's own jobs twice, catching up with the log in between.
      expect(foreignWork).toEqual(missingWork);
      expect(foreignWork).toMatchObject({ ownJobIds: 2, catchUp: 1 });

      const foreignGet = await call('GET', `/v1/jobs/${bravoJobId}`, keys.alpha!);
      const missingGet = await call('GET', `/v1/jobs/${missingJobId}`, keys.alpha!);
      expect(foreignGet.status).toBe(404);
      expect(withoutId(foreignGet, bravoJobId)).toEqual(withoutId(missingGet, missingJobId));
      const getWork = await workOf(() => call('GET', `/v1/jobs/${bravoJobId}`, keys.alpha!));
      expect(getWork).toEqual(await workOf(() => call('GET', `/v1/jobs/${missingJobId}`, keys.alpha!)));
    }

    // A dependency on the tenant's own job is accepted.
    const alphas = await submit('alpha', { ...shape, gpusPerSubtask: 1 });
    expect(alphas.status).toBe(202);
    expect((await submit('alpha', dependingOn(alphas.body!.jobId as string))).status).toBe(202);
  });

  it("never reveals how another tenant's job ended", async () => {
    const bravos = await submit('bravo', { ...shape, gpusPerSubtask: 2 });
    const bravoJobId = bravos.body!.jobId as string;
    const missing = { jobId: '01999999-0000-7000-8000-000000000001', tenantId: 'alpha' };
    const engine = app.app.get(SchedulerRunner).engine;
    await eventually(() => engine.state.jobs.has(bravoJobId));
    // Queued or running: bravo sees why; alpha asking about it gets a missing id's answer.
    expect(await ask('explain', { jobId: bravoJobId, tenantId: 'bravo' })).toMatchObject({ state: expect.stringMatching(/queued|running/) });
    expect(await ask('explain', { jobId: bravoJobId, tenantId: 'alpha' })).toEqual(await ask('explain', missing));

    // Ended (cancelled by its tenant): nothing about it, not even that it ended, for alpha.
    expect((await call('DELETE', `/v1/jobs/${bravoJobId}`, keys.bravo!)).status).toBe(202);
    await eventually(async () => (await call('GET', `/v1/jobs/${bravoJobId}`, keys.bravo!)).body!.state === 'cancelled');
    expect(await ask('explain', { jobId: bravoJobId, tenantId: 'alpha' })).toEqual({ state: 'unknown' });
    expect(await ask('explain', missing)).toEqual({ state: 'unknown' });
    const dependency = await submit('alpha', dependingOn(bravoJobId));
    expect(withoutId(dependency, bravoJobId)).toEqual(withoutId(await submit('alpha', dependingOn(missing.jobId)), missing.jobId));
    expect((await call('GET', `/v1/jobs/${bravoJobId}`, keys.alpha!)).status).toBe(404);
  });
});
