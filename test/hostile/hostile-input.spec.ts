/**
 * Proves that hostile input cannot hurt the system, on the whole system in one process (real
 * NATS JetStream and PostgreSQL, simulated nodes). fast-check generates requests for every write
 * route of the published OpenAPI document — bodies that fit the route's schema, its boundaries,
 * and values that break it (control characters, every Unicode plane, lone surrogates, huge
 * numbers, wrong types, unknown fields) and hostile path ids, another tenant's included — sent
 * as the hostile tenant (or the role the route needs), and hostile gRPC messages to the
 * gateway's write methods. It asserts:
 * - no answer is a 5xx (gRPC: no INTERNAL, UNKNOWN or DATA_LOSS), every 4xx body has the one
 *   error shape (POST /v1/events: its documented per-event outcomes), every 400 names a field;
 * - afterwards every projection reaches the stream's last sequence, none stalled;
 * - the other tenant's normal job still runs to its invoice line.
 * Runs per route: FASTGPU_HOSTILE_RUNS (default 12); a failure prints fast-check's seed and the
 * shrunk request, and `FASTGPU_HOSTILE_SEED` replays it.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- request and document shapes are only known at run time */
import 'reflect-metadata';
import path from 'node:path';
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastSequence } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { startSimulatedFleet, type SimulatedNode } from '../../apps/node-simulator/src/simulated-node';
import { allServices } from '../../apps/fastgpu/src/services';
import { hostileBody, hostileString, pathParameter, type JsonSchema } from './arbitraries';

const ADMIN = 'hostile-admin-key-0123456789abcdef';
const RUNS_PER_ROUTE = Number(process.env.FASTGPU_HOSTILE_RUNS ?? 12);
const SEED = process.env.FASTGPU_HOSTILE_SEED === undefined ? undefined : Number(process.env.FASTGPU_HOSTILE_SEED);
/** Routes whose effect would end the test's own setup (revoking the keys it uses, draining every node). */
const ROUTES_LEFT_OUT = new Set<string>([]);

let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let fleet: SimulatedNode[];
const keys: Record<'hostile' | 'victim' | 'finance' | 'sre' | 'admin', string> = { hostile: '', victim: '', finance: '', sre: '', admin: ADMIN };
/** Ids that exist, some of them the victim's: hostile path parameters pick from these too. */
const knownIds: string[] = ['victim', 'hostile', 'list', 'a100-0'];

interface Answer {
  status: number;
  body: any;
  text: string;
}

async function call(method: string, route: string, key: string | undefined, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`${app.url}${route}`, {
    method: method.toUpperCase(),
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: response.status, body: parsed, text };
}

/** The platform's one error shape; the one place this suite knows it. */
function isErrorShape(body: any): boolean {
  return typeof body === 'object' && body !== null && typeof body.error === 'object' && typeof body.error.code === 'string' && typeof body.error.message === 'string';
}

/**
 * POST /v1/events answers a batch with one outcome per event (docs/metering.md): when every event
 * was refused (422) or one conflicts (409), that document is the answer, not the error shape.
 */
function isBatchOutcome(route: string, answer: Answer): boolean {
  return route === '/v1/events' && (answer.status === 409 || answer.status === 422) && Array.isArray(answer.body?.results);
}

function expectSound(answer: Answer, route: string, request: string): void {
  if (answer.status >= 500) throw new Error(`${request} → ${answer.status} ${answer.text.slice(0, 500)}`);
  if (answer.status >= 400 && !isErrorShape(answer.body) && !isBatchOutcome(route, answer)) throw new Error(`${request} → ${answer.status} outside the error shape: ${answer.text.slice(0, 500)}`);
  if (answer.status === 400 && isErrorShape(answer.body) && !answer.body.error.field) throw new Error(`${request} → 400 without a field: ${answer.text.slice(0, 500)}`);
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN, heartbeatIntervalMs: 200 });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, allServices, { port: 0, logger: false });
  fleet = await startSimulatedFleet(env.bus, 'a100:8x2', { speed: 1, heartbeatIntervalMs: 200 });
  const finance = await call('POST', '/v1/api-keys', ADMIN, { role: 'finance' });
  keys.finance = finance.body.secret;
  keys.sre = (await call('POST', '/v1/api-keys', ADMIN, { role: 'sre' })).body.secret;
  const priceBook = await call('POST', '/v1/price-books', keys.finance, {
    priceBookId: 'list',
    currency: 'USD',
    effectiveFrom: '2026-01-01T00:00:00.000Z',
    prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '36000', incrementMs: 1, minimumMs: 0 }],
  });
  expect(priceBook.status).toBe(201);
  for (const tenant of ['hostile', 'victim'] as const) {
    expect((await call('POST', '/v1/tenants', ADMIN, { tenantId: tenant, name: `Tenant ${tenant}` })).status).toBe(201);
    keys[tenant] = (await call('POST', `/v1/tenants/${tenant}/api-keys`, ADMIN, {})).body.secret;
  }
  const victimJob = await call('POST', '/v1/jobs', keys.victim, { projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeSeconds: 1 }, { 'idempotency-key': 'victim-first' });
  expect(victimJob.status).toBe(202);
  knownIds.push(victimJob.body.jobId);
});

afterAll(async () => {
  for (const node of fleet ?? []) await node.stop();
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

interface Operation {
  method: string;
  path: string;
  roles: string[];
  body?: JsonSchema;
}

async function writeOperations(): Promise<{ operations: Operation[]; schemas: Record<string, JsonSchema> }> {
  const documentAnswer = await call('GET', '/docs/openapi.json', keys.admin);
  expect(documentAnswer.status).toBe(200);
  const document = documentAnswer.body;
  const operations: Operation[] = [];
  for (const [route, item] of Object.entries<any>(document.paths)) {
    for (const method of ['post', 'put', 'patch', 'delete']) {
      const operation = item[method];
      if (!operation || ROUTES_LEFT_OUT.has(`${method} ${route}`)) continue;
      const roles: string[] = operation['x-roles'] ?? (typeof operation.description === 'string' && /roles?:\s*([a-z, ]+)/i.exec(operation.description)?.[1]?.split(/[ ,]+/).filter(Boolean)) ?? ['tenant'];
      operations.push({ method, path: route, roles, body: operation.requestBody?.content?.['application/json']?.schema });
    }
  }
  return { operations, schemas: document.components?.schemas ?? {} };
}

/**
 * Percent-encodes a path segment byte for byte. A lone surrogate has no UTF-8 form, so it is sent
 * as the three bytes a careless encoder would write for it (invalid UTF-8 the server must refuse).
 */
function encodePathSegment(value: string): string {
  let out = '';
  for (const character of value) {
    const code = character.codePointAt(0)!;
    if (code >= 0xd800 && code <= 0xdfff) out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    else out += encodeURIComponent(character);
  }
  return out;
}

function keyFor(roles: string[]): string {
  if (roles.includes('tenant')) return keys.hostile;
  if (roles.includes('finance')) return keys.finance;
  if (roles.includes('sre')) return keys.sre;
  return keys.admin;
}

describe('hostile input', () => {
  it('never gets a 5xx or an answer outside the error shape from any write route over HTTP', async () => {
    const { operations, schemas } = await writeOperations();
    expect(operations.length).toBeGreaterThan(10);
    const failures: string[] = [];
    for (const operation of operations) {
      const parameters = [...operation.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
      const request = fc.record({
        body: hostileBody(operation.body, schemas),
        parameters: fc.tuple(...parameters.map(() => pathParameter(knownIds))),
        idempotencyKey: fc.option(fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/), hostileString.filter((v) => v.length < 300)), { nil: undefined }),
      });
      const verdict = await fc.check(
        fc.asyncProperty(request, async ({ body, parameters: values, idempotencyKey }) => {
          let route = operation.path;
          parameters.forEach((name, index) => (route = route.replace(`{${name}}`, encodePathSegment(values[index] as string))));
          const headers: Record<string, string> = {};
          // A header value cannot carry control characters: fetch refuses them before sending.
          if (idempotencyKey !== undefined && /^[\x20-\x7e]*$/.test(idempotencyKey)) headers['idempotency-key'] = idempotencyKey;
          const answer = await call(operation.method, route, keyFor(operation.roles), body, headers);
          expectSound(answer, route, `${operation.method.toUpperCase()} ${route} ${JSON.stringify(body)?.slice(0, 300)}`);
        }),
        { numRuns: RUNS_PER_ROUTE, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: true },
      );
      // Every route is tried; the failures are listed together, each with the seed that replays it.
      if (verdict.failed) failures.push(`${operation.method.toUpperCase()} ${operation.path} (seed ${verdict.seed}): ${(verdict.errorInstance as Error | undefined)?.message ?? String(verdict.errorInstance)}`);
    }
    expect(failures).toEqual([]);
  });

  it('never gets INTERNAL, UNKNOWN or DATA_LOSS from the gRPC gateway', async () => {
    expect(app.grpcPort).toBeDefined();
    const definition = protoLoader.loadSync(path.resolve('proto/fastgpu/intake/v1/intake.proto'), { keepCase: false, longs: String, defaults: true, oneofs: true });
    const intake = new ((grpc.loadPackageDefinition(definition) as any).fastgpu.intake.v1.IntakeService)(`127.0.0.1:${app.grpcPort}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${keys.hostile}`);
    const unary = (method: string, message: object) =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        try {
          intake[method](message, metadata, { deadline: Date.now() + 10_000 }, (error: grpc.ServiceError | null) => resolve(error));
        } catch {
          resolve(null); // the client refused to encode it: nothing reached the server
        }
      });
    const text = fc.oneof(hostileString, fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/));
    const int = fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.constantFrom(0, 1, -1, 2 ** 31 - 1));
    const messages: Array<[string, fc.Arbitrary<object>]> = [
      [
        'SubmitJob',
        fc.record({
          projectId: text,
          name: text,
          gpuModels: fc.array(fc.oneof(text, fc.constant('a100')), { maxLength: 3 }),
          gpusPerSubtask: int,
          subtaskCount: int,
          totalGpuHours: fc.oneof(text, fc.constantFrom('1', '0.5', '1e9', '-1')),
          runtimeSeconds: int,
          priorityClass: text,
          priority: int,
          gangTopologyKey: text,
          capacityType: text,
          deadline: text,
          dependsOn: fc.array(fc.record({ jobId: fc.oneof(text, fc.constantFrom(...knownIds)), condition: text }), { maxLength: 2 }),
          idempotencyKey: text,
        }),
      ],
      ['CancelJob', fc.record({ jobId: fc.oneof(text, fc.constantFrom(...knownIds)), reason: text })],
      ['AllocateLease', fc.record({ gpus: int, gpuModels: fc.array(text, { maxLength: 2 }), projectId: text, idempotencyKey: text })],
      ['ReleaseLease', fc.record({ leaseId: fc.oneof(text, fc.constantFrom(...knownIds)) })],
    ];
    try {
      for (const [method, arbitrary] of messages) {
        await fc.assert(
          fc.asyncProperty(arbitrary, async (message) => {
            const error = await unary(method, message);
            const code = error?.code;
            if (code === grpc.status.INTERNAL || code === grpc.status.UNKNOWN || code === grpc.status.DATA_LOSS) throw new Error(`${method} ${JSON.stringify(message).slice(0, 300)} → ${code} ${error?.details}`);
          }),
          { numRuns: RUNS_PER_ROUTE * 2, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: true },
        );
      }
    } finally {
      intake.close();
    }
  });

  it('leaves every projection caught up and the other tenant able to run a job to its invoice line', async () => {
    const last = await lastSequence(env.bus, env.bus.topology.streams.events);
    await eventually(
      async () => {
        const rows = await env.database.db.selectFrom('projection_checkpoints').select(['projection', 'last_sequence', 'status']).execute();
        const behind = rows.filter((row) => Number(row.last_sequence) < last || row.status === 'stalled');
        return rows.length > 0 && behind.length === 0 ? rows : undefined;
      },
      { timeoutMs: 30_000, message: `a projection did not reach sequence ${last}` },
    );

    const submitted = await call('POST', '/v1/jobs', keys.victim, { projectId: 'after', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 1, runtimeSeconds: 1 }, { 'idempotency-key': 'victim-after' });
    expect(submitted.status).toBe(202);
    const jobId = submitted.body.jobId as string;
    const job = await eventually(
      async () => {
        const view = await call('GET', `/v1/jobs/${jobId}`, keys.victim);
        return view.body?.state === 'succeeded' ? view.body : undefined;
      },
      { timeoutMs: 30_000, message: "the other tenant's job did not complete" },
    );
    const period = (job.submittedAt as string).slice(0, 7);
    const line = await eventually(
      async () => {
        const list = await call('GET', `/v1/invoices?period=${period}`, keys.victim);
        const summary = list.body?.invoices?.[0];
        if (!summary) return undefined;
        const document = await call('GET', `/v1/invoices/${summary.invoiceId}`, keys.victim, undefined, { accept: 'application/json' });
        return (document.body?.lines as Array<{ gpuModel: string | null; jobId?: string; evidence?: unknown; quantityGpuMs: number | null }> | undefined)?.find((l) => l.gpuModel === 'a100' && (l.quantityGpuMs ?? 0) > 0);
      },
      { timeoutMs: 30_000, message: "no invoice line for the other tenant's job" },
    );
    expect(line.quantityGpuMs).toBeGreaterThan(0);
  });
});
