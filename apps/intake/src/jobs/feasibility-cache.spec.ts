/**
 * Proves that one tenant's submission never decides another's (issue 14, point 3), on real NATS
 * and Postgres with the scheduler answering: tenant A's job with an unknown dependency (422) does
 * not make B's plain job of the same shape 422, submitted right after it (inside the 2 s the
 * feasibility verdict is kept); and the reverse: B's plain job accepted first does not wave A's
 * job with an unknown dependency through. The verdict cache is keyed by the whole feasibility
 * request (tenant included), and dependencies are resolved by intake within the tenant.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventId } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { schedulerService } from '../../../scheduler/src/scheduler.service';
import { SchedulerRunner } from '../../../scheduler/src/scheduler.runner';
import { intakeService } from '../intake.service';

const ADMIN = 'test-admin-key-0123456789abcdef';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
const keys: Record<string, string> = {};
let counter = 0;

async function call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown> & { error?: { code: string; field?: string; message: string } }) : undefined };
}
const submit = (tenant: string, body: unknown) => call('POST', '/v1/jobs', keys[tenant]!, body, { 'idempotency-key': `feasibility-${++counter}` });

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

describe("feasibility answers are one tenant's own", () => {
  it("A's job with an unknown dependency does not make B's plain job of the same shape 422", async () => {
    const shape = { projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 2, runtimeSeconds: 60 };
    const a = await submit('alpha', { ...shape, dependsOn: [{ jobId: 'no-such-job', condition: 'afterSuccess' }] });
    expect(a.status).toBe(422);
    expect(a.body!.error).toMatchObject({ field: 'dependsOn.0.jobId', message: expect.stringMatching(/unknown job no-such-job/) });
    const b = await submit('bravo', shape);
    expect(b.status).toBe(202);
    expect((await call('GET', `/v1/jobs/${b.body!.jobId as string}`, keys.bravo!)).status).toBe(200);
  });

  it("and the reverse: B's plain job accepted first does not wave A's job with an unknown dependency through", async () => {
    const shape = { projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 4, subtaskCount: 1, runtimeSeconds: 60 };
    const b = await submit('bravo', shape);
    expect(b.status).toBe(202);
    const a = await submit('alpha', { ...shape, dependsOn: [{ jobId: 'still-no-such-job', condition: 'afterAny' }] });
    expect(a.status).toBe(422);
    expect(a.body!.error).toMatchObject({ field: 'dependsOn.0.jobId' });
    // A's own plain job of the shape is accepted (its dependency, not the shape, was the problem).
    expect((await submit('alpha', shape)).status).toBe(202);
  });

  it("an infeasible verdict for one tenant's shape is that shape's, and names the field", async () => {
    const tooWide = { projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 16, subtaskCount: 1, runtimeSeconds: 60 };
    for (const tenant of ['alpha', 'bravo']) {
      const answer = await submit(tenant, tooWide);
      expect(answer.status).toBe(422);
      expect(answer.body!.error).toMatchObject({ field: 'gpusPerSubtask', message: expect.stringMatching(/largest a100 node has 8/) });
    }
    expect((await submit('bravo', { ...tooWide, gpusPerSubtask: 8 })).status).toBe(202);
  });
});
