/**
 * Proves that intake refuses unstorable text at its edges before anything is published, on real
 * NATS and Postgres: U+0000, other control characters and lone surrogates in every free-text
 * field and id intake takes (job name, project id, GPU model names, gang topology key,
 * dependency ids, GPU-hours, tenant id/name/time zone/currency, API key label, lease fields,
 * path and query ids) answer 400 with the field over HTTP, and INVALID_ARGUMENT with the field
 * over gRPC (cancellation reason included); the log does not grow; and afterwards another
 * tenant's normal job still appears in GET /v1/jobs/{id} (the intake-jobs read model is not wedged).
 */
import 'reflect-metadata';
import { isSingleLineText } from '@fastgpu/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { ErrorTrailers, IntakeServiceName, loadFastGpuProtos } from '@fastgpu/grpc';
import { lastSequence } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { intakeService } from './intake.service';

const ADMIN = 'test-admin-key-0123456789abcdef';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let mallory: string;
let victim: string;
type Client = grpc.Client & Record<string, (request: object, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void>;
let intake: Client;

/** Control characters (C0, DEL, C1) and lone surrogates, each inside otherwise normal text. */
const HOSTILE = ['a\u0000b', 'a\u0007b', 'a\u001bb', 'a\u007fb', 'a\u0085b', 'a\ud800b', 'a\udfffb'];
/** What gRPC can carry: protobuf strings are UTF-8, so a lone surrogate never arrives as one. */
const HOSTILE_OVER_GRPC = ['a\u0000b', 'a\u0007b', 'a\u009bb'];

const job = { projectId: 'vision', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeSeconds: 60 };
let counter = 0;

async function call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as { error?: { code: string; field?: string }; [k: string]: unknown }) : undefined };
}

/** A URL component for `text`; a lone surrogate has no UTF-8 form, so it travels as the bytes a careless client would send (ED A0 80). */
function inUrl(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return text.split('').map((c) => (/[\ud800-\udfff]/.test(c) ? '%ED%A0%80' : encodeURIComponent(c))).join('');
  }
}

const submit = (key: string, body: unknown) => call('POST', '/v1/jobs', key, body, { 'idempotency-key': `k-${++counter}` });

function grpcCall(method: string, request: object, key: string): Promise<unknown> {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${key}`);
  return new Promise((resolve, reject) => intake[method]!(request, metadata, (error, response) => (error ? reject(error) : resolve(response))));
}

async function grpcRejection(method: string, request: object, key: string): Promise<{ code: number; field: unknown }> {
  try {
    await grpcCall(method, request, key);
  } catch (error) {
    const e = error as grpc.ServiceError;
    return { code: e.code, field: e.metadata.get(ErrorTrailers.field)[0] };
  }
  throw new Error(`${method} was accepted`);
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [intakeService], { port: 0, logger: false });
  for (const tenantId of ['mallory', 'victim']) expect((await call('POST', '/v1/tenants', ADMIN, { tenantId, name: tenantId })).status).toBe(201);
  mallory = (await call('POST', '/v1/tenants/mallory/api-keys', ADMIN, {})).body!.secret as string;
  victim = (await call('POST', '/v1/tenants/victim/api-keys', ADMIN, {})).body!.secret as string;
  const Service = IntakeServiceName.split('.').reduce<Record<string, unknown>>((o, k) => o[k] as Record<string, unknown>, grpc.loadPackageDefinition(loadFastGpuProtos()) as never) as unknown as grpc.ServiceClientConstructor;
  intake = new Service(`127.0.0.1:${app.grpcPort}`, grpc.credentials.createInsecure()) as unknown as Client;
});

afterAll(async () => {
  intake?.close();
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('unstorable text at the intake edge', () => {
  it('answers 400 with the field for every free-text field and id over HTTP, publishing nothing', async () => {
    const before = await lastSequence(env.bus, env.bus.topology.streams.events);
    for (const bad of HOSTILE) {
      const undecodableUrl = /[\ud800-\udfff]/.test(bad);
      const inBody: Array<[string, () => ReturnType<typeof call>]> = [
        ['name', () => submit(mallory, { ...job, name: bad })],
        ['projectId', () => submit(mallory, { ...job, projectId: bad })],
        ['gpuModels.0', () => submit(mallory, { ...job, gpuModels: [bad] })],
        ['gangTopologyKey', () => submit(mallory, { ...job, gang: true, gangTopologyKey: bad })],
        ['dependsOn.0.jobId', () => submit(mallory, { ...job, dependsOn: [{ jobId: bad, condition: 'afterAny' }] })],
        ['totalGpuHours', () => submit(mallory, { ...job, subtaskCount: undefined, totalGpuHours: bad })],
        ['name', () => call('POST', '/v1/tenants', ADMIN, { name: bad })],
        ['tenantId', () => call('POST', '/v1/tenants', ADMIN, { tenantId: bad, name: 'x' })],
        ['billingTimeZone', () => call('POST', '/v1/tenants', ADMIN, { name: 'x', billingTimeZone: bad })],
        ['currency', () => call('POST', '/v1/tenants', ADMIN, { name: 'x', currency: bad.slice(0, 3) })],
        ['label', () => call('POST', '/v1/tenants/mallory/api-keys', ADMIN, { label: bad })],
        ['label', () => call('POST', '/v1/api-keys', ADMIN, { role: 'sre', label: bad })],
        ['projectId', () => call('POST', '/v1/leases', mallory, { projectId: bad, gpuModels: ['a100'], gpus: 1 })],
        ['gpuModels.0', () => call('POST', '/v1/leases', mallory, { projectId: 'p', gpuModels: [bad], gpus: 1 })],
      ];
      // A URL cannot carry a lone surrogate (it has no UTF-8 form): those bytes are the router's to refuse (below).
      const inUrlCases: Array<[string, () => ReturnType<typeof call>]> = undecodableUrl
        ? []
        : [
            ['tenantId', () => call('POST', `/v1/tenants/${inUrl(bad)}/api-keys`, ADMIN, {})],
            ['tenantId', () => call('GET', `/v1/jobs?tenantId=${inUrl(bad)}`, ADMIN)],
          ];
      for (const [field, send] of [...inBody, ...inUrlCases]) {
        const answer = await send();
        expect({ bad: JSON.stringify(bad), field, status: answer.status, error: answer.body?.error }).toMatchObject({ status: 400, error: { code: 'invalid_request', field } });
      }
      // Ids in paths that no store could hold are refused by the platform with 400 naming the
      // parameter (undecodable ones by the router); storable ones that cannot exist answer like
      // missing ones; never 500.
      const missing = undecodableUrl || !isSingleLineText(bad) ? 400 : 404;
      expect((await call('GET', `/v1/jobs/${inUrl(bad)}`, mallory)).status).toBe(missing);
      expect((await call('DELETE', `/v1/jobs/${inUrl(bad)}`, mallory)).status).toBe(missing);
      expect((await call('GET', `/v1/leases/${inUrl(bad)}`, mallory)).status).toBe(missing);
      expect((await call('DELETE', `/v1/api-keys/${inUrl(bad)}`, ADMIN)).status).toBe(missing);
    }
    expect(await lastSequence(env.bus, env.bus.topology.streams.events)).toBe(before);
  });

  it('answers INVALID_ARGUMENT with the field over gRPC, publishing nothing', async () => {
    const submitted = (await grpcCall('SubmitJob', { ...job, idempotencyKey: 'grpc-own' }, mallory)) as { jobId: string };
    const before = await lastSequence(env.bus, env.bus.topology.streams.events);
    for (const bad of HOSTILE_OVER_GRPC) {
      const cases: Array<[string, string, object]> = [
        ['name', 'SubmitJob', { ...job, name: bad, idempotencyKey: `g-${++counter}` }],
        ['projectId', 'SubmitJob', { ...job, projectId: bad, idempotencyKey: `g-${++counter}` }],
        ['gpuModels.0', 'SubmitJob', { ...job, gpuModels: [bad], idempotencyKey: `g-${++counter}` }],
        ['gangTopologyKey', 'SubmitJob', { ...job, gang: true, gangTopologyKey: bad, idempotencyKey: `g-${++counter}` }],
        ['reason', 'CancelJob', { jobId: submitted.jobId, reason: bad }],
        ['projectId', 'AllocateLease', { projectId: bad, gpuModels: ['a100'], gpus: 1 }],
      ];
      for (const [field, method, request] of cases) {
        const rejected = await grpcRejection(method, request, mallory);
        expect({ method, ...rejected }).toEqual({ method, field, code: grpc.status.INVALID_ARGUMENT });
      }
    }
    expect(await lastSequence(env.bus, env.bus.topology.streams.events)).toBe(before);
  });

  it("leaves the jobs read model serving: another tenant's normal job appears in GET /v1/jobs/{id}", async () => {
    const normal = await submit(victim, { ...job, name: 'Ünïcödé name 🚀, tab-free' });
    expect(normal.status).toBe(202);
    const read = await call('GET', `/v1/jobs/${normal.body!.jobId as string}`, victim);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ jobId: normal.body!.jobId, name: 'Ünïcödé name 🚀, tab-free', state: 'pending' });
  });
});
