/**
 * The hostile-input suite (issue 14, Done when): hostile input cannot hurt the system. It runs the
 * whole system in one process (every service, real NATS JetStream and PostgreSQL, simulated GPU
 * nodes) with two tenants: `hostile`, who sends the input, and `victim`, whose work must not be
 * touched. fast-check generates the requests from the schemas the API publishes:
 * - HTTP: every write route of the served OpenAPI document, with bodies that fit the route's JSON
 *   Schema, its boundaries, and values that break it (control characters, every Unicode plane,
 *   graphemes, lone surrogates, huge numbers, wrong types, unknown fields), hostile path ids (the
 *   victim's included), several Content-Types, Idempotency-Keys; sent mostly with the key the
 *   route's roles need, sometimes with another one (the victim's, a tenant's on a platform route,
 *   admin);
 * - gRPC: every method of every service in `proto/`, with messages generated from the `.proto`
 *   descriptors field by field, as either tenant.
 * It asserts:
 * - no answer is a 5xx; every HTTP error is exactly the one error shape `{error:{code,message,
 *   field?}}` (stable snake_case code, a field on every 400) — or, where the document declares
 *   another body for that status (the per-event outcomes of `POST /v1/events` with 409/422), a
 *   body that validates against it; over gRPC no INTERNAL, UNKNOWN or DATA_LOSS, every error with
 *   its `fastgpu-error-code` trailer and INVALID_ARGUMENT with its `fastgpu-error-field`;
 * - afterwards every projection reaches the stream's last sequence and none is stalled, and
 *   `/v1/health` says up;
 * - the victim's normal job still runs to completion and to its line on the victim's invoice.
 * Runs per route: FASTGPU_HOSTILE_RUNS (default 12); a failure prints fast-check's seed and the
 * shrunk request, and `FASTGPU_HOSTILE_SEED` replays it. Fixed hostile cases (framework errors,
 * drain reasons, strict queries, tenant scope) are in test/edge.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- request and document shapes are only known at run time */
import 'reflect-metadata';
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { ErrorTrailers, loadFastGpuProtos } from '@fastgpu/grpc';
import { lastSequence } from '@fastgpu/messaging';
import { eventually } from '@fastgpu/testing';
import { startWholePlatform, type Answer, type WholePlatform } from '../support/whole-platform';
import { hostileBody, hostileString, pathParameter, protoMessage, type JsonSchema, type ProtoMessages } from './arbitraries';

const ADMIN = 'hostile-admin-key-0123456789abcdef';
const RUNS_PER_ROUTE = Number(process.env.FASTGPU_HOSTILE_RUNS ?? 12);
const SEED = process.env.FASTGPU_HOSTILE_SEED === undefined ? undefined : Number(process.env.FASTGPU_HOSTILE_SEED);
/** Routes whose effect would end the test's own setup (revoking the keys it uses, draining every node). */
const ROUTES_LEFT_OUT = new Set<string>([]);

let platform: WholePlatform;
const keys: Record<'hostile' | 'victim' | 'finance' | 'sre' | 'admin', string> = { hostile: '', victim: '', finance: '', sre: '', admin: ADMIN };
/** Ids that exist, some of them the victim's: hostile path parameters pick from these too. */
const knownIds: string[] = ['victim', 'hostile', 'list', 'a100-0'];

/** The served OpenAPI document (read once). */
let document: any;
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
const alternatives = new Map<string, ValidateFunction[]>();

function call(method: string, route: string, key: string | undefined, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return platform.http(method, route, key, body, headers);
}

/**
 * The one error shape, asserted strictly: `{ error: { code, message, field? } }` and nothing else,
 * `code` stable snake_case, `field` non-empty when present.
 */
function isErrorShape(body: unknown): boolean {
  if (!body || typeof body !== 'object' || Object.keys(body).join() !== 'error') return false;
  const error = (body as { error: Record<string, unknown> }).error;
  if (!error || typeof error !== 'object') return false;
  const keys = Object.keys(error).sort().join();
  if (keys !== 'code,message' && keys !== 'code,field,message') return false;
  return typeof error.code === 'string' && /^[a-z_]+$/.test(error.code) && typeof error.message === 'string' && (error.field === undefined || (typeof error.field === 'string' && error.field.length > 0));
}

/**
 * The body the document declares for this route and status besides the Error shape (an `anyOf`
 * of it and Error, e.g. POST /v1/events' per-event outcomes with 409 and 422), if any, matches.
 */
function isDocumentedAlternative(method: string, template: string, answer: Answer): boolean {
  const key = `${method} ${template} ${answer.status}`;
  let validators = alternatives.get(key);
  if (!validators) {
    const schema = document.paths[template]?.[method]?.responses?.[String(answer.status)]?.content?.['application/json']?.schema;
    validators = ((schema?.anyOf ?? []) as any[]).filter((s) => s.$ref !== '#/components/schemas/Error').map((s) => ajv.compile(s));
    alternatives.set(key, validators);
  }
  return validators.some((validate) => validate(answer.body));
}

function expectSound(answer: Answer, method: string, template: string, request: string): void {
  if (answer.status >= 500) throw new Error(`${request} → ${answer.status} ${answer.text.slice(0, 500)}`);
  if (answer.status < 400) return;
  if (isErrorShape(answer.body)) {
    if (answer.status === 400 && !answer.body.error.field) throw new Error(`${request} → 400 without a field: ${answer.text.slice(0, 500)}`);
    return;
  }
  if (!isDocumentedAlternative(method, template, answer)) throw new Error(`${request} → ${answer.status} outside the error shape and the documented bodies: ${answer.text.slice(0, 500)}`);
}

beforeAll(async () => {
  platform = await startWholePlatform({ adminKey: ADMIN, fleet: 'a100:8x2' });
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
  await platform?.close();
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
  document = documentAnswer.body;
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

/** How long a generated gRPC call may take; a watch stream is ended (cancelled) after its first answer or this. */
const GRPC_CALL_MS = 10_000;
const WATCH_OPEN_MS = 300;

/**
 * One gRPC call with `message` as `key`: a unary call's error (null when it succeeded or the client
 * could not even encode the message, so nothing reached the server); a server stream is read until
 * its first message, its error or WATCH_OPEN_MS, then cancelled.
 */
function invoke(client: Record<string, any>, method: string, streaming: boolean, message: object, key: string): Promise<grpc.ServiceError | null> {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${key}`);
  return new Promise((resolve) => {
    try {
      if (!streaming) {
        client[method](message, metadata, { deadline: Date.now() + GRPC_CALL_MS }, (error: grpc.ServiceError | null) => resolve(error));
        return;
      }
      const stream: grpc.ClientReadableStream<unknown> = client[method](message, metadata, { deadline: Date.now() + GRPC_CALL_MS });
      const end = () => {
        clearTimeout(timer);
        stream.cancel();
      };
      const timer = setTimeout(end, WATCH_OPEN_MS);
      stream.on('data', end);
      stream.on('error', (error: grpc.ServiceError) => {
        clearTimeout(timer);
        resolve(error);
      });
      stream.on('end', () => resolve(null));
    } catch {
      resolve(null);
    }
  });
}

/** Media types a client might send a JSON body with (or none): the framework's own refusals must keep the shape too. */
const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/cloudevents+json', 'application/cloudevents-batch+json', undefined] as const;
/** Mostly the key the route's roles need; sometimes the victim's, the hostile tenant's on any route, or admin. */
const caller = fc.oneof({ weight: 6, arbitrary: fc.constant('route' as const) }, { weight: 1, arbitrary: fc.constantFrom('victim' as const, 'hostile' as const, 'admin' as const) });

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
        contentType: fc.oneof({ weight: 4, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom(...CONTENT_TYPES) }),
        caller,
      });
      const verdict = await fc.check(
        fc.asyncProperty(request, async ({ body, parameters: values, idempotencyKey, contentType, caller: who }) => {
          let route = operation.path;
          parameters.forEach((name, index) => (route = route.replace(`{${name}}`, encodePathSegment(values[index] as string))));
          const headers: Record<string, string> = {};
          // A header value cannot carry control characters: fetch refuses them before sending.
          if (idempotencyKey !== undefined && /^[\x20-\x7e]*$/.test(idempotencyKey)) headers['idempotency-key'] = idempotencyKey;
          if (body !== undefined && contentType !== 'application/json') {
            if (contentType === undefined) headers['content-type'] = '';
            else headers['content-type'] = contentType;
          }
          const key = who === 'route' ? keyFor(operation.roles) : keys[who];
          const answer = await call(operation.method, route, key, body, headers);
          expectSound(answer, operation.method, operation.path, `${operation.method.toUpperCase()} ${route} (${who}, ${contentType ?? 'no content-type'}) ${JSON.stringify(body)?.slice(0, 300)}`);
        }),
        { numRuns: RUNS_PER_ROUTE, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: true },
      );
      // Every route is tried; the failures are listed together, each with the seed that replays it.
      if (verdict.failed) failures.push(`${operation.method.toUpperCase()} ${operation.path} (seed ${verdict.seed}): ${(verdict.errorInstance as Error | undefined)?.message ?? String(verdict.errorInstance)}`);
    }
    expect(failures).toEqual([]);
  });

  it('never gets INTERNAL, UNKNOWN or DATA_LOSS from any gRPC method, and every error carries its code (and field) trailers', async () => {
    expect(platform.started.grpcPort).toBeDefined();
    const definition = loadFastGpuProtos() as unknown as ProtoMessages & Record<string, any>;
    const services = Object.entries(definition).filter(([, value]) => typeof value === 'object' && value !== null && !('format' in value));
    expect(services.map(([name]) => name).sort()).toEqual(['fastgpu.billing.v1.BillingService', 'fastgpu.intake.v1.IntakeService']);
    const loaded = grpc.loadPackageDefinition(definition as never) as any;
    const failures: string[] = [];
    for (const [serviceName, methods] of services) {
      const Client = serviceName.split('.').reduce((node: any, part) => node[part], loaded);
      const client: grpc.Client & Record<string, any> = new Client(`127.0.0.1:${platform.started.grpcPort}`, grpc.credentials.createInsecure());
      try {
        for (const [method, descriptor] of Object.entries<any>(methods)) {
          const requestType = `${serviceName.slice(0, serviceName.lastIndexOf('.'))}.${descriptor.requestType.type.name}`;
          const verdict = await fc.check(
            fc.asyncProperty(protoMessage(definition, requestType, knownIds), fc.constantFrom('hostile' as const, 'victim' as const), async (message, who) => {
              const error = await invoke(client, descriptor.originalName ?? method, Boolean(descriptor.responseStream), message, keys[who]);
              if (!error) return;
              const where = `${serviceName}.${method} ${JSON.stringify(message).slice(0, 300)}`;
              if (error.code === grpc.status.INTERNAL || error.code === grpc.status.UNKNOWN || error.code === grpc.status.DATA_LOSS) throw new Error(`${where} → ${grpc.status[error.code]} ${error.details}`);
              // CANCELLED and DEADLINE_EXCEEDED come from this client (a watch it ended, a call it stopped waiting for), not the server.
              if (error.code === grpc.status.CANCELLED || error.code === grpc.status.DEADLINE_EXCEEDED) return;
              if (!error.metadata?.get(ErrorTrailers.code).length) throw new Error(`${where} → ${grpc.status[error.code]} without ${ErrorTrailers.code}: ${error.details}`);
              if (error.code === grpc.status.INVALID_ARGUMENT && !error.metadata.get(ErrorTrailers.field).length) throw new Error(`${where} → INVALID_ARGUMENT without ${ErrorTrailers.field}: ${error.details}`);
            }),
            { numRuns: RUNS_PER_ROUTE * 2, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: true },
          );
          if (verdict.failed) failures.push(`${serviceName}.${method} (seed ${verdict.seed}): ${(verdict.errorInstance as Error | undefined)?.message ?? String(verdict.errorInstance)}`);
        }
      } finally {
        client.close();
      }
    }
    expect(failures).toEqual([]);
  });

  it('leaves every projection caught up, health up, and the other tenant able to run a job to its invoice line', async () => {
    const last = await lastSequence(platform.env.bus, platform.env.bus.topology.streams.events);
    await eventually(
      async () => {
        const rows = await platform.env.database.db.selectFrom('projection_checkpoints').select(['projection', 'last_sequence', 'status']).execute();
        const behind = rows.filter((row) => Number(row.last_sequence) < last || row.status === 'stalled');
        return rows.length > 0 && behind.length === 0 ? rows : undefined;
      },
      { timeoutMs: 30_000, message: `a projection did not reach sequence ${last}` },
    );
    const health = await call('GET', '/v1/health', keys.admin);
    expect([health.status, health.body?.status]).toEqual([200, 'up']);

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
    expect(job).toMatchObject({ jobId, tenantId: 'victim' });
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
