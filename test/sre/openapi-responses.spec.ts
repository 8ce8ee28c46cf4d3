/**
 * Proves that the OpenAPI document's success schemas describe what the routes really answer: the
 * whole system runs on real NATS JetStream and PostgreSQL with simulated GPU nodes, a job runs to
 * its usage and invoice, and for a sample of routes of every service (intake, scheduler, metering,
 * billing, reliability, and the platform's own) the JSON body of each 2xx answer is validated with
 * ajv against the schema the served document gives for that path, method, status and media type.
 * A schema that leaves out a field the route sends, names a field it does not send, or gives a
 * field the wrong type fails here; the last test shows the validator refuses such bodies.
 */
import 'reflect-metadata';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { eventually, logNow } from '@fastgpu/testing';
import { startSimulatedFleet, type SimulatedNode } from '../../apps/node-simulator/src/simulated-node';
import { allServices } from '../../apps/fastgpu/src/services';
import { invoiceIdFor } from '../../apps/billing/src/ledger/invoice-ids';
import { ADMIN, monthBack, startPlatform, usage, type Answer, type Platform } from '../integrators/harness';
import { HOUR_MS } from '@fastgpu/contracts';

type Service = 'intake' | 'scheduler' | 'metering' | 'billing' | 'reliability' | 'platform';
type JsonSchema = Record<string, unknown>;
type Operation = { responses: Record<string, { content?: Record<string, { schema: JsonSchema }> }> };
type Doc = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, JsonSchema> } };

/** The routes each service must have had validated by the end (a sample of each, not every route). */
const SAMPLE: Record<Service, string[]> = {
  intake: ['POST /v1/tenants', 'POST /v1/tenants/{tenantId}/api-keys', 'POST /v1/api-keys', 'POST /v1/jobs', 'GET /v1/jobs', 'GET /v1/jobs/{jobId}', 'POST /v1/leases', 'GET /v1/leases/{leaseId}', 'DELETE /v1/leases/{leaseId}'],
  scheduler: ['POST /v1/jobs:dry-run', 'GET /v1/capacity-plan', 'GET /v1/nodes', 'POST /v1/nodes/{nodeId}/drain', 'POST /v1/nodes/{nodeId}/undrain', 'GET /v1/scheduling-policy', 'PUT /v1/scheduling-policy', 'GET /v1/scheduler/status'],
  metering: ['POST /v1/events', 'GET /v1/usage', 'GET /v1/usage/late'],
  billing: [
    'POST /v1/price-books',
    'GET /v1/price-books',
    'POST /v1/billing/webhooks/endpoints',
    'GET /v1/billing/webhooks/endpoints',
    'DELETE /v1/billing/webhooks/endpoints/{endpointId}',
    'GET /v1/billing/webhooks/deliveries',
    'GET /v1/billing/webhooks/deliveries/{deliveryId}',
    'POST /v1/billing/webhooks/deliveries/{deliveryId}/redeliver',
    'POST /v1/billing/credit-grants',
    'POST /v1/billing/tax-rates',
    'GET /v1/invoices',
    'GET /v1/invoices/{invoiceId}',
    'GET /v1/invoices/{invoiceId}/status',
    'GET /v1/invoices/{invoiceId}/lines/{line}/evidence',
    'GET /v1/invoices/{invoiceId}/what-if',
    'GET /v1/invoices/{invoiceId}/audit',
    'GET /v1/billing/audit',
    'GET /v1/billing/review-queue',
    'POST /v1/billing/review-queue/{eventId}/{piece}/bill',
    'POST /v1/billing/review-queue/{eventId}/{piece}/dismiss',
    'GET /v1/billing/late-usage',
    'POST /v1/invoices/{invoiceId}/finalize',
    'POST /v1/invoices/{invoiceId}/credit-notes',
    'GET /v1/invoices/{invoiceId}/credit-notes',
    'GET /v1/credit-notes/{creditNoteId}',
    'POST /v1/invoices/{invoiceId}/pay',
    'GET /v1/invoices/export',
    'POST /v1/invoices/finalize-due',
    'POST /v1/invoices/{invoiceId}/void',
    'POST /v1/invoices/{invoiceId}/reissue',
    'POST /v1/invoices/{invoiceId}/delete',
  ],
  reliability: ['GET /v1/sla-reports'],
  platform: ['GET /healthz', 'GET /readyz', 'GET /v1/health', 'GET /docs/openapi.json'],
};

let platform: Platform;
let fleet: SimulatedNode[];
/** Receives the webhooks billing sends (answers 200 to each). */
let receiver: http.Server;
let receiverUrl: string;
let doc: Doc;
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
const validators = new Map<string, ValidateFunction>();
/** Every validated answer: its route and body, for the non-vacuity check at the end. */
const validated: Array<{ service: Service; route: string; body: unknown; schema: JsonSchema }> = [];

beforeAll(async () => {
  platform = await startPlatform(allServices, { heartbeatIntervalMs: 200 });
  fleet = await startSimulatedFleet(platform.env.bus, 'a100:8x2', { speed: 1, heartbeatIntervalMs: 200 });
  doc = (await platform.http('GET', '/docs/openapi.json')).body as Doc;
  receiver = http.createServer((request, response) => request.resume().on('end', () => response.writeHead(200).end()));
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
});
afterAll(async () => {
  for (const node of fleet ?? []) await node.stop();
  await platform?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

/** The documented JSON schema of a success answer, or undefined when the document has none. */
function documentedSchema(method: string, template: string, status: number): JsonSchema | undefined {
  const content = doc.paths[template]?.[method.toLowerCase()]?.responses[String(status)]?.content;
  return content?.['application/json']?.schema;
}

/**
 * Calls a route (the template's `{name}` replaced by `params`), expects a 2xx JSON answer and
 * validates its body against the document's schema for that status. Returns the body.
 */
async function call(service: Service, method: string, template: string, options: { params?: Record<string, string>; query?: string; key?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const path = template.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(options.params?.[name] ?? `missing-${name}`)) + (options.query ? `?${options.query}` : '');
  const answer: Answer = await platform.http(method, path, options.key, options.body, options.headers);
  const route = `${method} ${template}`;
  expect(answer.status, `${route}: ${answer.text.slice(0, 300)}`).toBeGreaterThanOrEqual(200);
  expect(answer.status, `${route}: ${answer.text.slice(0, 300)}`).toBeLessThan(300);
  expect(answer.headers['content-type'], route).toMatch(/^application\/json/);
  const schema = documentedSchema(method, template, answer.status);
  expect(schema, `${route} ${answer.status}: no documented JSON schema`).toBeDefined();
  const key = `${route} ${answer.status}`;
  let validate = validators.get(key);
  if (!validate) validators.set(key, (validate = ajv.compile(schema!)));
  if (!validate(answer.body)) expect.fail(`${key}: the answer does not match its documented schema: ${ajv.errorsText(validate.errors)}\n${answer.text.slice(0, 2000)}`);
  validated.push({ service, route, body: answer.body, schema: schema! });
  return answer.body;
}

/** Routes of a service validated so far. */
function validatedRoutes(service: Service): string[] {
  return [...new Set(validated.filter((v) => v.service === service).map((v) => v.route))];
}

const shared: { tenantKey?: string; financeKey?: string; sreKey?: string; jobId?: string; submittedAt?: string } = {};

describe('documented success schemas match the answers', () => {
  it('platform: health, readiness, details and the document itself', async () => {
    await call('platform', 'GET', '/healthz');
    await call('platform', 'GET', '/readyz');
    await call('platform', 'GET', '/v1/health', { key: ADMIN });
    await call('platform', 'GET', '/docs/openapi.json');
    expect(validatedRoutes('platform').sort()).toEqual([...SAMPLE.platform].sort());
  });

  it('intake: tenants, keys, jobs and leases, run to the end of a job', async () => {
    await call('intake', 'POST', '/v1/tenants', { key: ADMIN, body: { tenantId: 'acme', name: 'Acme AI' } });
    shared.tenantKey = (await call('intake', 'POST', '/v1/tenants/{tenantId}/api-keys', { params: { tenantId: 'acme' }, key: ADMIN, body: {} })).secret;
    shared.financeKey = (await call('intake', 'POST', '/v1/api-keys', { key: ADMIN, body: { role: 'finance' } })).secret;
    shared.sreKey = (await call('intake', 'POST', '/v1/api-keys', { key: ADMIN, body: { role: 'sre' } })).secret;
    const key = shared.tenantKey!;
    const submitted = await call('intake', 'POST', '/v1/jobs', { key, body: { projectId: 'vision', name: 'train', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 2, runtimeSeconds: 1 }, headers: { 'idempotency-key': 'responses-1' } });
    shared.jobId = submitted.jobId;
    shared.submittedAt = submitted.submittedAt;
    const finished = await eventually(
      async () => {
        const job = await call('intake', 'GET', '/v1/jobs/{jobId}', { params: { jobId: shared.jobId! }, key });
        return job.state === 'succeeded' ? job : undefined;
      },
      { timeoutMs: 30_000, message: 'the job did not finish' },
    );
    expect(finished.subtasks).toHaveLength(2);
    const page = await call('intake', 'GET', '/v1/jobs', { key, query: 'limit=10' });
    expect(page.jobs.map((j: { jobId: string }) => j.jobId)).toContain(shared.jobId);

    const lease = await call('intake', 'POST', '/v1/leases', { key, query: 'waitMs=3000', body: { projectId: 'vision', gpuModels: ['a100'], gpus: 1 }, headers: { 'idempotency-key': 'responses-lease-1' } });
    await call('intake', 'GET', '/v1/leases/{leaseId}', { params: { leaseId: lease.leaseId }, key });
    await call('intake', 'DELETE', '/v1/leases/{leaseId}', { params: { leaseId: lease.leaseId }, key });
    expect(validatedRoutes('intake').sort()).toEqual([...SAMPLE.intake].sort());
  });

  it('scheduler: dry-run, capacity plan, fleet, drain and undrain, policy and status', async () => {
    const sre = shared.sreKey!;
    const dryRun = await call('scheduler', 'POST', '/v1/jobs:dry-run', { key: shared.tenantKey, body: { projectId: 'vision', gpuModels: ['a100'], gpusPerSubtask: 8, subtaskCount: 3, runtimeSeconds: 60 } });
    expect(dryRun.wouldPlace).toBe(false);
    // A platform key sees what would be preempted in full; the schema allows both shapes.
    await call('scheduler', 'POST', '/v1/jobs:dry-run', { key: ADMIN, body: { projectId: 'vision', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeSeconds: 60 } });
    await call('scheduler', 'GET', '/v1/capacity-plan', { key: shared.financeKey, query: 'gpuHours=500&hours=1&load=0.8&efficiency=0.95' });
    const fleetView = await call('scheduler', 'GET', '/v1/nodes', { key: sre });
    const nodeId = fleetView.nodes[0].nodeId as string;
    expect((await call('scheduler', 'POST', '/v1/nodes/{nodeId}/drain', { params: { nodeId }, key: sre, body: { reason: 'maintenance' } })).status).toBe('drained');
    expect((await call('scheduler', 'POST', '/v1/nodes/{nodeId}/undrain', { params: { nodeId }, key: sre })).status).toBe('ready');
    const policy = await call('scheduler', 'GET', '/v1/scheduling-policy', { key: sre });
    await call('scheduler', 'PUT', '/v1/scheduling-policy', { key: sre, body: { policy: { ...policy.policy, tenants: { acme: { weight: 2, quotas: { a100: { nominal: 8 } } } } }, reason: 'acme pays for two' } });
    await call('scheduler', 'GET', '/v1/scheduler/status', { key: sre });
    expect(validatedRoutes('scheduler').sort()).toEqual([...SAMPLE.scheduler].sort());
  });

  it('metering: external events (accepted, late and rejected), usage by every dimension, the late-usage report', async () => {
    const key = shared.tenantKey!;
    const nowMs = await logNow(platform.env.bus);
    const event = (id: string, type: string, data: Record<string, unknown>) => ({ specversion: '1.0', id, source: 'urn:partner:cluster-7', type, datacontenttype: 'application/json', data });
    const outcome = await call('metering', 'POST', '/v1/events', {
      key,
      body: [
        event('ext-1', 'ExternalAllocationStarted', { allocationId: 'ext-a1', projectId: 'ext', gpuModel: 'L40S', gpus: 2, capacityType: 'on-demand', startedAt: new Date(nowMs - 2 * HOUR_MS).toISOString() }),
        event('ext-2', 'ExternalAllocationStopped', { allocationId: 'ext-a1', stoppedAt: new Date(nowMs - HOUR_MS).toISOString() }),
        event('ext-3', 'ExternalAllocationStarted', { allocationId: 'ext-late', projectId: 'ext', gpuModel: 'L40S', gpus: 1, capacityType: 'on-demand', startedAt: new Date(nowMs - 40 * 24 * HOUR_MS).toISOString() }),
        event('ext-4', 'ExternalAllocationStopped', { allocationId: 'ext-a1' }),
        // Two late allocations that end: billing gets them as review items (one billed, one dismissed below).
        ...['ext-late-b', 'ext-late-c'].flatMap((allocationId) => [
          event(`${allocationId}-start`, 'ExternalAllocationStarted', { allocationId, projectId: 'ext', gpuModel: 'L40S', gpus: 1, capacityType: 'on-demand', startedAt: new Date(nowMs - 41 * 24 * HOUR_MS).toISOString() }),
          event(`${allocationId}-stop`, 'ExternalAllocationStopped', { allocationId, stoppedAt: new Date(nowMs - 40 * 24 * HOUR_MS).toISOString() }),
        ]),
      ],
    });
    expect(outcome.results.map((r: { status: string }) => r.status)).toEqual(['accepted', 'accepted', 'accepted-late', 'rejected', 'accepted-late', 'accepted-late', 'accepted-late', 'accepted-late']);
    const from = new Date(nowMs - 3 * HOUR_MS).toISOString();
    const to = new Date(nowMs + HOUR_MS).toISOString();
    await eventually(async () => {
      const usage = await call('metering', 'GET', '/v1/usage', { key, query: `from=${from}&to=${to}&window=hour&groupBy=tenant,project,job,subtask,attempt,lease,allocation,model,capacityType` });
      return usage.rows.some((r: { allocation?: string }) => r.allocation === 'ext-a1') && usage.rows.some((r: { job?: string }) => r.job === shared.jobId) ? usage : undefined;
    });
    await call('metering', 'GET', '/v1/usage', { key: shared.financeKey, query: `from=${from}&to=${to}&window=day&tz=Europe/Berlin&limit=1` });
    const late = await eventually(async () => {
      const report = await call('metering', 'GET', '/v1/usage/late', { key: shared.financeKey });
      return report.items.length === 3 ? report : undefined;
    });
    expect(late.items.map((i: { allocationId: string; state: string }) => `${i.allocationId} ${i.state}`).sort()).toEqual(['ext-late open', 'ext-late-b closed', 'ext-late-c closed']);
    expect(validatedRoutes('metering').sort()).toEqual([...SAMPLE.metering].sort());
  });

  it('billing: price books, settings, review queue, an invoice through finalization, credit note and payment, the lifecycle, audit and webhooks', async () => {
    const finance = shared.financeKey!;
    const key = shared.tenantKey!;
    const period = shared.submittedAt!.slice(0, 7);
    await call('billing', 'POST', '/v1/price-books', {
      key: finance,
      body: {
        priceBookId: 'list',
        currency: 'USD',
        effectiveFrom: '2020-01-01T00:00:00.000Z',
        prices: [
          { gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.50' },
          { gpuModel: 'L40S', capacityType: 'on-demand', tierMode: 'volume', tiers: [{ upToGpuHours: 1, pricePerGpuHour: '1.50' }, { upToGpuHours: null, pricePerGpuHour: '1.25' }] },
        ],
      },
    });
    await call('billing', 'GET', '/v1/price-books', { key });
    const endpoint = await call('billing', 'POST', '/v1/billing/webhooks/endpoints', { key: finance, body: { url: receiverUrl, tenantId: 'acme', description: 'finance system' } });
    await call('billing', 'GET', '/v1/billing/webhooks/endpoints', { key: finance });
    await call('billing', 'POST', '/v1/billing/credit-grants', { key: finance, body: { tenantId: 'acme', amount: '0.01', priority: 1, reason: 'welcome credit' }, headers: { 'idempotency-key': 'grant-1' } });
    await call('billing', 'POST', '/v1/billing/tax-rates', { key: finance, body: { tenantId: 'acme', rates: [{ name: 'VAT', rate: '0.19' }], effectiveFrom: '2020-01-01T00:00:00.000Z', reason: 'registered for VAT' } });

    // The job's invoice, once it bills the job's usage at the list price.
    const invoiceId = invoiceIdFor('acme', period);
    await eventually(async () => {
      const page = await call('billing', 'GET', '/v1/invoices', { key, query: `period=${period}` });
      const row = page.invoices.find((i: { invoiceId: string }) => i.invoiceId === invoiceId);
      return row && row.total !== '0.00' && row.validationErrors === 0 ? row : undefined;
    });
    const document = await call('billing', 'GET', '/v1/invoices/{invoiceId}', { params: { invoiceId }, key });
    expect(document.lines.length).toBeGreaterThan(0);
    await call('billing', 'GET', '/v1/invoices/{invoiceId}/lines/{line}/evidence', { params: { invoiceId, line: '1' }, key });
    await call('billing', 'GET', '/v1/invoices/{invoiceId}/what-if', { params: { invoiceId }, key: finance, query: 'priceBookId=list&version=1' });

    // Review items: the two late allocations metering recorded; one billed onto the draft, one dismissed.
    const queue = await eventually(async () => {
      const answer = await call('billing', 'GET', '/v1/billing/review-queue', { key: finance, query: 'tenantId=acme' });
      const items = answer.items.filter((i: { kind: string; status: string }) => i.status === 'open' && (i.kind === 'usage' || i.kind === 'late-usage'));
      return items.length === 2 ? items : undefined;
    });
    const billed = await call('billing', 'POST', '/v1/billing/review-queue/{eventId}/{piece}/bill', { params: { eventId: queue[0].eventId, piece: String(queue[0].piece) }, key: finance, body: { invoiceId, reason: 'reported late by the partner, billed' } });
    expect(billed.status).toBe('billed');
    await call('billing', 'POST', '/v1/billing/review-queue/{eventId}/{piece}/dismiss', { params: { eventId: queue[1].eventId, piece: String(queue[1].piece) }, key: finance, body: { reason: 'goodwill' } });
    await call('billing', 'GET', '/v1/billing/late-usage', { key: finance, query: 'tenantId=acme' });

    const finalized = await call('billing', 'POST', '/v1/invoices/{invoiceId}/finalize', { params: { invoiceId }, key: finance, body: { reason: 'month closed early' } });
    expect(finalized.status).toBe('finalized');
    const creditNote = await call('billing', 'POST', '/v1/invoices/{invoiceId}/credit-notes', { params: { invoiceId }, key: finance, body: { reason: 'goodwill', lines: [{ invoiceLine: 1, amount: '0.01' }] }, headers: { 'idempotency-key': 'cn-1' } });
    await call('billing', 'GET', '/v1/invoices/{invoiceId}/credit-notes', { params: { invoiceId }, key });
    await call('billing', 'GET', '/v1/credit-notes/{creditNoteId}', { params: { creditNoteId: creditNote.creditNoteId }, key });
    await call('billing', 'POST', '/v1/invoices/{invoiceId}/pay', { params: { invoiceId }, key: finance, body: { reason: 'wire received', paymentReference: 'wire-1' } });
    const status = await call('billing', 'GET', '/v1/invoices/{invoiceId}/status', { params: { invoiceId }, key });
    expect(status.status).toBe('paid');
    expect(status.creditNotes).toHaveLength(1);
    await call('billing', 'GET', '/v1/invoices/export', { key: finance, query: `period=${period}` });
    await call('billing', 'GET', '/v1/invoices/{invoiceId}/audit', { params: { invoiceId }, key });
    await call('billing', 'GET', '/v1/billing/audit', { key: finance, query: 'tenantId=acme&limit=50' });

    // Another tenant's months: two whose grace period has surely ended (two and three months back) finalized when due,
    // then one voided and one reissued; this month's draft deleted.
    await call('intake', 'POST', '/v1/tenants', { key: ADMIN, body: { tenantId: 'beta', name: 'Beta Labs' } });
    const nowMs = await logNow(platform.env.bus);
    const monthStartMs = Date.UTC(new Date(nowMs).getUTCFullYear(), new Date(nowMs).getUTCMonth(), 1);
    const thisMonth = { period: new Date(nowMs).toISOString().slice(0, 7), start: new Date(monthStartMs).toISOString(), end: new Date(monthStartMs + Math.max(1, Math.floor((nowMs - monthStartMs) / 2))).toISOString() };
    for (const back of [2, 3]) await platform.publish('UsageRecorded', usage('beta', `beta-${back}`, monthBack(back).at(7), monthBack(back).at(7, 18)), { tenantId: 'beta' });
    await platform.publish('UsageRecorded', usage('beta', 'beta-0', thisMonth.start, thisMonth.end), { tenantId: 'beta' });
    const [older, oldest, current] = [invoiceIdFor('beta', monthBack(2).period), invoiceIdFor('beta', monthBack(3).period), invoiceIdFor('beta', thisMonth.period)];
    await eventually(async () => {
      const page = await call('billing', 'GET', '/v1/invoices', { key: finance, query: 'tenantId=beta' });
      return page.invoices.length === 3 ? page : undefined;
    });
    // The billing timer may have finalized them first; either way both end up finalized.
    await call('billing', 'POST', '/v1/invoices/finalize-due', { key: finance, body: { asOf: new Date(nowMs).toISOString() } });
    await eventually(async () => {
      const page = await call('billing', 'GET', '/v1/invoices', { key: finance, query: 'tenantId=beta&status=finalized' });
      return page.invoices.length === 2 ? page : undefined;
    });
    expect((await call('billing', 'POST', '/v1/invoices/{invoiceId}/void', { params: { invoiceId: older }, key: finance, body: { reason: 'issued in error' } })).status).toBe('void');
    await call('billing', 'POST', '/v1/invoices/{invoiceId}/reissue', { params: { invoiceId: oldest }, key: finance, body: { reason: 'wrong buyer' } });
    await call('billing', 'POST', '/v1/invoices/{invoiceId}/delete', { params: { invoiceId: current }, key: finance, body: { usage: 'move', reason: 'start over' } });

    // Webhooks sent to the receiver: the delivery log, one delivery, a redelivery by hand; then the endpoint disabled.
    const deliveries = await eventually(async () => {
      const answer = await call('billing', 'GET', '/v1/billing/webhooks/deliveries', { key: finance, query: `endpointId=${endpoint.endpointId}` });
      return answer.deliveries.some((d: { status: string }) => d.status === 'succeeded') ? answer.deliveries : undefined;
    });
    const delivered = deliveries.find((d: { status: string }) => d.status === 'succeeded');
    expect((await call('billing', 'GET', '/v1/billing/webhooks/deliveries/{deliveryId}', { params: { deliveryId: delivered.deliveryId }, key: finance })).attempts.length).toBeGreaterThan(0);
    expect((await call('billing', 'POST', '/v1/billing/webhooks/deliveries/{deliveryId}/redeliver', { params: { deliveryId: delivered.deliveryId }, key: finance })).succeeded).toBe(true);
    expect((await call('billing', 'DELETE', '/v1/billing/webhooks/endpoints/{endpointId}', { params: { endpointId: endpoint.endpointId }, key: finance })).enabled).toBe(false);
    expect(validatedRoutes('billing').sort()).toEqual([...SAMPLE.billing].sort());
  });

  it('reliability: the SLA report of the month', async () => {
    const period = shared.submittedAt!.slice(0, 7);
    await eventually(async () => {
      const answer = await call('reliability', 'GET', '/v1/sla-reports', { key: shared.tenantKey, query: `period=${period}` });
      return answer.reports[0]?.jobs?.succeeded === 1 ? answer : undefined;
    });
    await call('reliability', 'GET', '/v1/sla-reports', { key: shared.sreKey, query: `period=${period}` });
    expect(validatedRoutes('reliability').sort()).toEqual([...SAMPLE.reliability].sort());
  });

  it('refuses bodies the schemas do not describe (the check is not vacuous)', () => {
    let closed = 0;
    for (const { route, body, schema } of validated) {
      if (schema.type !== 'object' || body === null || typeof body !== 'object' || Array.isArray(body)) continue;
      const validate = ajv.compile(schema);
      if (schema.additionalProperties === false) {
        closed++;
        expect(validate({ ...body, unexpectedField: 1 }), `${route}: accepts a field it does not document`).toBe(false);
      }
      for (const name of (schema.required as string[] | undefined) ?? []) {
        const without: Record<string, unknown> = { ...(body as Record<string, unknown>) };
        delete without[name];
        expect(validate(without), `${route}: accepts a body without ${name}`).toBe(false);
      }
    }
    expect(closed).toBeGreaterThan(5);
  });
});
