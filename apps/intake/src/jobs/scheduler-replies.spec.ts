/**
 * Proves intake's side of the typed intake ↔ scheduler request/reply (libs/contracts
 * service-requests.ts) on real NATS and Postgres, with a stand-in scheduler that answers what
 * each case needs: every request intake sends parses with the request schema (tenant included,
 * no dependencies); a valid negative verdict is a 422 with its field; anything that is not a
 * valid verdict (malformed, an error reply, not JSON, a field the job request does not have) is
 * no answer: the job is accepted and the next submission asks again (only verdicts are cached);
 * verdicts are cached per whole request, so another tenant's same shape asks for itself; an
 * explanation is merged into GET /v1/jobs/{id} only when it parses. A request the shared job
 * check refuses (JobRequestError, a DomainError mapped once at the edge) is a 422 `unprocessable`
 * with its field, and the scheduler is not asked.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Subscription } from '@nats-io/transport-node';
import { explainRequest, feasibilityRequest } from '@fastgpu/contracts';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { intakeService } from '../intake.service';

const ADMIN = 'test-admin-key-0123456789abcdef';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
const keys: Record<string, string> = {};
let counter = 0;
const subscriptions: Subscription[] = [];
/** What the stand-in scheduler answers next, and what it was asked. */
let feasibilityAnswer: string = JSON.stringify({ feasible: true });
let explainAnswer: string = JSON.stringify({ state: 'unknown' });
const asked: unknown[] = [];
const explainsAsked: unknown[] = [];

async function call(method: string, path: string, secret: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${secret}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}
const submit = (tenant: string, body: unknown) => call('POST', '/v1/jobs', keys[tenant]!, body, { 'idempotency-key': `replies-${++counter}` });
const job = (gpusPerSubtask: number) => ({ projectId: 'p', gpuModels: ['a100'], gpusPerSubtask, subtaskCount: 1, runtimeSeconds: 60, dependsOn: [] });

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [intakeService], { port: 0, logger: false });
  for (const tenantId of ['acme', 'globex']) {
    expect((await call('POST', '/v1/tenants', ADMIN, { tenantId, name: tenantId })).status).toBe(201);
    keys[tenantId] = (await call('POST', `/v1/tenants/${tenantId}/api-keys`, ADMIN, {})).body!.secret as string;
  }
  const { nc, topology } = env.bus;
  subscriptions.push(
    nc.subscribe(topology.subjects.service('scheduler', 'feasibility'), {
      callback: (_error, msg) => {
        asked.push(msg.json());
        msg.respond(feasibilityAnswer);
      },
    }),
    nc.subscribe(topology.subjects.service('scheduler', 'explain'), {
      callback: (_error, msg) => {
        explainsAsked.push(msg.json());
        msg.respond(explainAnswer);
      },
    }),
  );
  await nc.flush();
});

afterAll(async () => {
  for (const s of subscriptions) s.unsubscribe();
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe("intake reads the scheduler's replies by their schema", () => {
  it('sends typed requests, and takes a valid negative verdict as a 422 with its field', async () => {
    feasibilityAnswer = JSON.stringify({ feasible: false, field: 'gpusPerSubtask', reason: 'the largest a100 node has 8' });
    const refused = await submit('acme', { ...job(1), dependsOn: [] });
    expect(refused).toMatchObject({ status: 422, body: { error: { field: 'gpusPerSubtask', message: 'the largest a100 node has 8' } } });
    const request = feasibilityRequest.parse(asked.at(-1));
    expect(request).toEqual({ tenantId: 'acme', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, gang: false });
  });

  it("refuses what the shared job check refuses with 422 and its field, before asking the scheduler", async () => {
    const before = asked.length;
    const refused = await submit('acme', { ...job(1), gangTopologyKey: 'rack' });
    expect(refused).toEqual({ status: 422, body: { error: { code: 'unprocessable', message: 'gangTopologyKey applies to gang jobs only', field: 'gangTopologyKey' } } });
    expect(asked.length).toBe(before);
  });

  it('accepts when the reply is not a valid verdict, and asks again next time', async () => {
    const invalid = [JSON.stringify({ feasible: false }), JSON.stringify({ error: { code: 'invalid_request', message: 'request: bad' } }), 'not json {', JSON.stringify({ feasible: false, field: 'tenantId', reason: 'no' }), JSON.stringify({ feasible: 'no' })];
    for (const [i, answer] of invalid.entries()) {
      feasibilityAnswer = answer;
      const before = asked.length;
      expect({ answer, status: (await submit('acme', job(2 + i))).status }).toEqual({ answer, status: 202 });
      expect({ answer, status: (await submit('acme', job(2 + i))).status }).toEqual({ answer, status: 202 });
      expect(asked.length - before).toBe(2);
    }
  });

  it('keeps a verdict per whole request: the same tenant and shape asks once, another tenant asks for itself', async () => {
    feasibilityAnswer = JSON.stringify({ feasible: true });
    const before = asked.length;
    expect((await submit('acme', job(20))).status).toBe(202);
    expect((await submit('acme', job(20))).status).toBe(202);
    expect(asked.length - before).toBe(1);
    expect((await submit('globex', job(20))).status).toBe(202);
    expect(asked.length - before).toBe(2);
    expect(asked.slice(before).map((r) => (r as { tenantId: string }).tenantId)).toEqual(['acme', 'globex']);
  });

  it('merges an explanation into GET /v1/jobs/{id} only when it parses', async () => {
    feasibilityAnswer = JSON.stringify({ feasible: true });
    const submitted = await submit('acme', job(30));
    const jobId = submitted.body!.jobId as string;
    explainAnswer = JSON.stringify({ state: 'queued', waiting: 'no capacity', code: 'capacity', queuePosition: 2, pendingSubtasks: 1, runningSubtasks: 0 });
    expect((await call('GET', `/v1/jobs/${jobId}`, keys.acme!)).body!.scheduling).toEqual({ state: 'queued', waiting: 'no capacity', code: 'capacity', queuePosition: 2, pendingSubtasks: 1, runningSubtasks: 0 });
    for (const answer of [JSON.stringify({ state: 'queued', queuePosition: -1 }), JSON.stringify({ secret: 'x' }), 'not json {']) {
      explainAnswer = answer;
      const read = await call('GET', `/v1/jobs/${jobId}`, keys.acme!);
      expect({ answer, status: read.status, scheduling: read.body!.scheduling }).toEqual({ answer, status: 200, scheduling: undefined });
    }
    expect(explainsAsked.length).toBeGreaterThanOrEqual(4);
    for (const request of explainsAsked) expect(explainRequest.parse(request)).toEqual({ jobId, tenantId: 'acme' });
  });
});
