/**
 * Proves the edge holds against generated hostile input, on real NATS and Postgres with intake,
 * billing, metering and reliability running. Over HTTP (fast-check: every write route; bodies
 * with the routes' field names and values of every JSON type, text from every Unicode plane,
 * control characters and lone surrogates; several content types) and over gRPC (every intake
 * method, typed messages with hostile strings and out-of-range numbers), as two tenants and an
 * admin: no 5xx and no INTERNAL/UNKNOWN, every HTTP error in the one shape (or, for
 * `POST /v1/events`, its documented per-event outcomes) with a field on every 400, every gRPC
 * error with its code trailer and INVALID_ARGUMENT with its field trailer. Afterwards the other
 * tenant's normal job is taken, every projection reaches the stream's last sequence, health is up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import { lastSequence } from '@fastgpu/messaging';
import { eventually } from '@fastgpu/testing';
import { ErrorTrailers } from '../../libs/grpc/src';
import { intakeService } from '../../apps/intake/src/intake.service';
import { billingService } from '../../apps/billing/src/billing.service';
import { reliabilityService } from '../../apps/reliability/src/reliability.service';
import { meteringService } from '../../apps/metering/src/metering.service';
import { ADMIN, isErrorShape, metadata, startEdge, unary, type Edge } from './harness';

let edge: Edge;
let acme: string;
let globex: string;

beforeAll(async () => {
  edge = await startEdge([intakeService, billingService, reliabilityService, meteringService]);
  acme = (await edge.tenantKey('acme')).secret;
  globex = (await edge.tenantKey('globex')).secret;
});
afterAll(async () => edge?.close());

/** Text from every Unicode plane, control characters, lone surrogates and overlong values included. */
const hostileText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.constantFrom('\u0000', 'a\u0000b', '\ud800', '\udfff', '\u001b[2J', '\u0085', '\u2028', '\ufeff', '𝔘𝔫𝔦', '%00', '../../etc', 'a'.repeat(600), ''),
);

describe('generated HTTP requests to the write routes', () => {
  const writeRoutes = [
    ['POST', '/v1/jobs'],
    ['POST', '/v1/jobs:dry-run'],
    ['DELETE', '/v1/jobs/job-1'],
    ['POST', '/v1/leases'],
    ['DELETE', '/v1/leases/lease-1'],
    ['POST', '/v1/tenants'],
    ['POST', '/v1/tenants/acme/api-keys'],
    ['POST', '/v1/api-keys'],
    ['DELETE', '/v1/api-keys/key-1'],
    ['POST', '/v1/events'],
    ['POST', '/v1/price-books'],
    ['POST', '/v1/billing/credit-grants'],
    ['POST', '/v1/billing/tax-rates'],
    ['POST', '/v1/invoices/inv-1/finalize'],
    ['POST', '/v1/invoices/inv-1/credit-notes'],
  ] as const;
  const value = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, hostileText, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(hostileText, tie('node'), { maxKeys: 4 })),
  })).node;
  const fieldNames = ['projectId', 'gpuModels', 'gpusPerSubtask', 'subtaskCount', 'runtimeSeconds', 'name', 'tenantId', 'role', 'label', 'reason', 'gpus', 'priceBookId', 'currency', 'prices', 'amount', 'rates', 'effectiveFrom', 'billingTimeZone', 'specversion', 'id', 'source', 'type', 'data'];
  const body = fc.oneof(fc.dictionary(fc.constantFrom(...fieldNames), value, { maxKeys: 6 }), value);
  const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/cloudevents+json', 'application/cloudevents-batch+json', undefined);

  it('never get a 5xx, and every error is in the one shape with a field on every 400', async () => {
    const keys = [acme, globex, ADMIN];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...writeRoutes), body, contentType, fc.integer({ min: 0, max: keys.length - 1 }), async ([method, path], payload, type, k) => {
        const answer = await edge.http(method, path, keys[k], JSON.stringify(payload), type ? { 'content-type': type } : {});
        if (answer.status >= 500) throw new Error(`${method} ${path} answered ${answer.status}: ${answer.text}`);
        if (answer.status < 400) return true;
        // The documented exception: POST /v1/events answers per-event outcomes (all rejected: 422).
        if (path === '/v1/events' && Array.isArray(answer.body?.results)) return true;
        if (!isErrorShape(answer.body)) throw new Error(`${method} ${path} ${answer.status} not in the one shape: ${answer.text}`);
        if (answer.status === 400 && !answer.body.error.field) throw new Error(`${method} ${path} 400 without a field: ${answer.text}`);
        return true;
      }),
      { numRuns: 150 },
    );
  });
});

describe('generated gRPC calls', () => {
  const int32 = fc.oneof(fc.integer({ min: -5, max: 20 }), fc.constantFrom(0, -1, 2 ** 31 - 1, -(2 ** 31)));
  const maybe = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });
  const submit = fc.record({
    projectId: hostileText,
    name: maybe(hostileText),
    gpuModels: fc.array(fc.oneof(hostileText, fc.constantFrom('a100', 'h100')), { maxLength: 3 }),
    gpusPerSubtask: int32,
    subtaskCount: maybe(int32),
    totalGpuHours: maybe(fc.oneof(hostileText, fc.constantFrom('1.5', '1e9', '-1', 'NaN'))),
    runtimeSeconds: int32,
    priorityClass: maybe(fc.oneof(hostileText, fc.constantFrom('standard', 'high', 'preemptible'))),
    deadline: maybe(fc.oneof(hostileText, fc.constantFrom('2026-13-01T00:00:00Z', '9999-12-31T23:59:59Z'))),
    dependsOn: fc.array(fc.record({ jobId: hostileText, condition: hostileText }), { maxLength: 2 }),
    idempotencyKey: maybe(hostileText),
  });
  const call = fc.oneof(
    submit.map((request) => ['SubmitJob', request] as const),
    fc.record({ jobId: hostileText }).map((request) => ['GetJob', request] as const),
    fc.record({ jobId: hostileText, reason: maybe(hostileText) }).map((request) => ['CancelJob', request] as const),
    fc.record({ projectId: hostileText, gpuModels: fc.array(hostileText, { maxLength: 2 }), gpus: int32, idempotencyKey: maybe(hostileText) }).map((request) => ['AllocateLease', request] as const),
    fc.record({ leaseId: hostileText }).map((request) => ['GetLease', request] as const),
    fc.record({ leaseId: hostileText }).map((request) => ['ReleaseLease', request] as const),
  );

  it('never answer INTERNAL or UNKNOWN, and every error carries its code (and field when INVALID_ARGUMENT)', async () => {
    const intake = edge.intake();
    const keys = [acme, globex];
    await fc.assert(
      fc.asyncProperty(call, fc.integer({ min: 0, max: keys.length - 1 }), async ([method, request], k) => {
        const answer = await unary(intake, method, request, metadata(keys[k]));
        if (answer.ok) return true;
        const { code, metadata: trailers, details } = answer.error;
        if (code === grpc.status.INTERNAL || code === grpc.status.UNKNOWN) throw new Error(`${method} answered ${grpc.status[code]}: ${details}`);
        if (!trailers.get(ErrorTrailers.code).length) throw new Error(`${method} ${grpc.status[code]} without ${ErrorTrailers.code}: ${details}`);
        if (code === grpc.status.INVALID_ARGUMENT && !trailers.get(ErrorTrailers.field).length) throw new Error(`${method} INVALID_ARGUMENT without a field: ${details}`);
        return true;
      }),
      { numRuns: 120 },
    );
  });
});

describe('afterwards', () => {
  it('every projection reaches the stream’s last sequence, health is up, and a normal job is still taken', async () => {
    const normal = await edge.http('POST', '/v1/jobs', globex, { projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeSeconds: 60 }, { 'idempotency-key': 'after-the-storm' });
    expect(normal.status).toBe(202);
    const last = await lastSequence(edge.env.bus, edge.env.bus.topology.streams.events);
    await eventually(
      async () => {
        const rows = await edge.env.database.db.selectFrom('projection_checkpoints').select(['projection', 'last_sequence', 'status']).execute();
        return rows.length > 0 && rows.every((row) => Number(row.last_sequence) >= last && row.status !== 'stalled');
      },
      { timeoutMs: 20_000, message: `a projection did not reach sequence ${last}` },
    );
    const health = await edge.http('GET', '/v1/health', ADMIN);
    expect([health.status, health.body.status]).toEqual([200, 'up']);
    expect((await edge.http('GET', `/v1/jobs/${normal.body.jobId}`, globex)).body).toMatchObject({ jobId: normal.body.jobId, tenantId: 'globex' });
  });
});
