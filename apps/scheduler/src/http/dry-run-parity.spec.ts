/**
 * Proves that POST /v1/jobs:dry-run takes exactly the body of POST /v1/jobs (issue 14, points 8
 * and 9), on real NATS and Postgres with intake and the scheduler running: for a table of bodies
 * (valid, boundary and invalid: unknown fields, control characters, every shared limit one past
 * its bound, sub-task counts divided from GPU-hours, bad dates, inconsistent combinations, jobs
 * no node could run) the dry-run refuses exactly what submission refuses, with the same status
 * and error body, and accepts what it accepts. The sub-task limit bounds the dry-run's cost.
 * Dependencies are the one difference, by design: only intake resolves them (within the tenant).
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEPENDENCIES_PER_JOB_MAX, GPU_MODELS_PER_JOB_MAX, GPUS_PER_SUBTASK_MAX, JOB_NAME_LENGTH_MAX, JOB_PRIORITY_MAX, newEventId, RUNTIME_SECONDS_MAX, SUBTASKS_PER_JOB_MAX } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { intakeService } from '../../../intake/src/intake.service';
import { schedulerService } from '../scheduler.service';
import { SchedulerRunner } from '../scheduler.runner';

const ADMIN = 'test-admin-key-0123456789abcdef';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let key: string;
let counter = 0;

async function call(method: string, path: string, secret: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

const base = { projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 2, runtimeSeconds: 60 };
const { subtaskCount: _count, ...withoutCount } = base;
const dependencies = (n: number) => Array.from({ length: n }, (_, i) => ({ jobId: `j${i}`, condition: 'afterAny' }));

/** [what, body]: each answered by submission and dry-run alike. */
const cases: Array<[string, Record<string, unknown>]> = [
  ['a plain job', base],
  ['GPU-hours divided into sub-tasks', { ...withoutCount, totalGpuHours: '0.1' }],
  ['an unknown field', { ...base, tenantId: 'someone-else' }],
  ['no projectId', { ...base, projectId: undefined }],
  ['U+0000 in the name', { ...base, name: 'a\u0000b' }],
  ['a lone surrogate in a GPU model', { ...base, gpuModels: ['a\ud800'] }],
  ['a name one past its bound', { ...base, name: 'x'.repeat(JOB_NAME_LENGTH_MAX + 1) }],
  ['a name at its bound', { ...base, name: 'x'.repeat(JOB_NAME_LENGTH_MAX) }],
  ['sub-tasks one past the limit', { ...base, gpusPerSubtask: 1, subtaskCount: SUBTASKS_PER_JOB_MAX + 1 }],
  ['GPU-hours dividing into too many sub-tasks', { ...withoutCount, gpusPerSubtask: 1, runtimeSeconds: 1, totalGpuHours: '100' }],
  ['GPU-hours that are not a number', { ...withoutCount, totalGpuHours: '1e3' }],
  ['both a count and GPU-hours', { ...base, totalGpuHours: '1' }],
  ['neither a count nor GPU-hours', withoutCount],
  ['GPUs per sub-task one past the limit', { ...base, gpusPerSubtask: GPUS_PER_SUBTASK_MAX + 1 }],
  ['too many GPU models', { ...base, gpuModels: Array.from({ length: GPU_MODELS_PER_JOB_MAX + 1 }, (_, i) => `m${i}`) }],
  ['too many dependencies', { ...base, dependsOn: dependencies(DEPENDENCIES_PER_JOB_MAX + 1) }],
  ['runtime one past the limit', { ...base, runtimeSeconds: RUNTIME_SECONDS_MAX + 1 }],
  ['priority one past the limit', { ...base, priority: JOB_PRIORITY_MAX + 1 }],
  ['a deadline in the past', { ...base, deadline: new Date(Date.now() - 60_000).toISOString() }],
  ['a deadline that is not an instant', { ...base, deadline: '2026-13-01' }],
  ['a preemptible-class job marked non-preemptible', { ...base, priorityClass: 'preemptible', preemptible: false }],
  ['a topology key without a gang', { ...base, gangTopologyKey: 'rack' }],
  ['a bad retry policy', { ...base, retryPolicy: { maxAttempts: 0, retryOnExitCodes: [] } }],
  ['a GPU model the fleet lacks', { ...base, gpuModels: ['tpu'] }],
  ['more GPUs per sub-task than any node has', { ...base, gpusPerSubtask: 16 }],
  ['a gang larger than the fleet', { ...base, gpusPerSubtask: 8, subtaskCount: 3, gang: true }],
];

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [intakeService, schedulerService], { port: 0, logger: false });
  expect((await call('POST', '/v1/tenants', ADMIN, { tenantId: 'acme', name: 'Acme' })).status).toBe(201);
  key = (await call('POST', '/v1/tenants/acme/api-keys', ADMIN, {})).body!.secret as string;
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

describe('dry-run and submission take one request', () => {
  it('refuses exactly what submission refuses, with the same answer, and accepts what it accepts', async () => {
    let refused = 0;
    for (const [what, body] of cases) {
      const submitted = await call('POST', '/v1/jobs', key, body, { 'idempotency-key': `parity-${++counter}` });
      const dry = await call('POST', '/v1/jobs:dry-run', key, body);
      if (submitted.status === 202) {
        expect({ what, status: dry.status }).toEqual({ what, status: 200 });
        expect(dry.body!.subtaskCount).toBe((submitted.body!.subtasks as unknown[]).length);
      } else {
        refused++;
        expect({ what, status: dry.status, body: dry.body }).toEqual({ what, status: submitted.status, body: submitted.body });
      }
    }
    // The table is not vacuous: all but the two valid jobs and the name at its bound are refused.
    expect(refused).toBe(cases.length - 3);
  });

  it('bounds a dry-run by the sub-task limit: the largest one answers, one more is refused', async () => {
    const largest = await call('POST', '/v1/jobs:dry-run', key, { ...base, gpusPerSubtask: 1, subtaskCount: SUBTASKS_PER_JOB_MAX });
    expect(largest.status).toBe(200);
    expect(largest.body).toMatchObject({ subtaskCount: SUBTASKS_PER_JOB_MAX, wouldPlace: false });
    expect(largest.body!.placedNow).toBeLessThanOrEqual(8);
    const more = await call('POST', '/v1/jobs:dry-run', key, { ...base, gpusPerSubtask: 1, subtaskCount: SUBTASKS_PER_JOB_MAX + 1 });
    expect(more).toMatchObject({ status: 422, body: { error: { field: 'subtaskCount' } } });
  });
});
