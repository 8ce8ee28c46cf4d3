/**
 * Proves billing webhooks on a real nats-server and Postgres, against a real HTTP receiver on
 * 127.0.0.1 (node:http) that verifies every signature with the `standardwebhooks` library:
 * finance registers a global endpoint and a tenant's endpoint for one type; invoice.created,
 * invoice.updated, invoice.finalized, invoice.paid, invoice.voided, credit_note.issued and
 * usage.late arrive signed per Standard Webhooks; the receiver's first answer is a 500 and the
 * same webhook-id comes again after the backoff (at least once), both attempts in the delivery
 * log; a tenant's endpoint gets only its tenant's events of its types; replaying the webhook
 * projection from sequence 1 on the live path, or rebuilding it, sends nothing again; a delivery
 * can be redelivered by hand (same webhook-id, fresh signature); tenants cannot use the routes.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { ProjectionRunner, lastSequence } from '@fastgpu/messaging';
import { eventually } from '@fastgpu/testing';
import { invoiceIdFor } from '../../src/ledger/invoice-ids';
import { dropRebuildTables, rebuildLedger } from '../../src/ledger/billing.rebuild';
import { webhookProjection } from '../../src/webhooks/webhooks.projection';
import { webhookBodySchemas } from '../../src/webhooks/webhooks.schema';
import type { WebhookEventType } from '../../src/webhooks/webhook-events';
import { ACME, DocumentsHarness, FINANCE } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

const RETRY_BASE_MS = 400;

interface Received {
  path: string;
  id: string;
  timestamp: string;
  type: string;
  body: { type: string; timestamp: string; data: Record<string, unknown> };
  valid: boolean;
  status: number;
}

/** A webhook receiver: verifies each request with the endpoint's secret; the very first request gets a 500. */
class Receiver {
  readonly received: Received[] = [];
  readonly secrets = new Map<string, string>();
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const path = request.url ?? '';
        let valid = false;
        try {
          new Webhook(this.secrets.get(path) ?? 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA').verify(text, headersOf(request.headers));
          valid = true;
        } catch {
          valid = false;
        }
        const status = this.received.length === 0 ? 500 : 200;
        const body = JSON.parse(text) as Received['body'];
        this.received.push({ path, id: String(request.headers['webhook-id']), timestamp: String(request.headers['webhook-timestamp']), type: body.type, body, valid, status });
        response.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'try again later');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }
}

function headersOf(headers: IncomingHttpHeaders): Record<string, string> {
  return { 'webhook-id': String(headers['webhook-id']), 'webhook-timestamp': String(headers['webhook-timestamp']), 'webhook-signature': String(headers['webhook-signature']) };
}

function monthBack(back: number): { period: string; at(day: number): string } {
  const now = new Date();
  const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1));
  return { period: `${first.getUTCFullYear()}-${String(first.getUTCMonth() + 1).padStart(2, '0')}`, at: (day) => new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), day, 12)).toISOString() };
}
const plus = (instant: string, ms: number) => new Date(Date.parse(instant) + ms).toISOString();

let h: DocumentsHarness;
const receiver = new Receiver();
const past = monthBack(2);
const next = monthBack(1);
let globalEndpoint: string;

beforeAll(async () => {
  await receiver.start();
  h = await DocumentsHarness.start({ webhooks: { retryBaseMs: RETRY_BASE_MS, retryMaxMs: 5_000, attemptsMax: 5, pollIntervalMs: 50, timeoutMs: 5_000 } });
  await h.tenant('acme', 'Acme Corporation', 'UTC', 'USD');
  await h.tenant('globex', 'Globex KK', 'Asia/Tokyo', 'JPY');
  await h.priceBook({ priceBookId: 'standard', currency: 'USD', effectiveFrom: '2020-01-01T00:00:00.000Z', prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.00' }] });
  await h.priceBook({ priceBookId: 'japan', currency: 'JPY', effectiveFrom: '2020-01-01T00:00:00.000Z', prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '300' }] });
  await h.settle();
});

afterAll(async () => {
  await h?.close();
  await receiver.stop();
});

describe('webhooks', () => {
  it('registers endpoints through a finance route, the secret shown once, and refuses tenants', async () => {
    expect((await h.call('POST', '/v1/billing/webhooks/endpoints', ACME, { url: `${receiver.url}/acme` })).status).toBe(403);
    const unknown = await h.call('POST', '/v1/billing/webhooks/endpoints', FINANCE, { url: `${receiver.url}/x`, tenantId: 'nobody' });
    expect([unknown.status, unknown.json.error.field]).toEqual([422, 'tenantId']);
    const ftp = await h.call('POST', '/v1/billing/webhooks/endpoints', FINANCE, { url: 'ftp://127.0.0.1/x' });
    expect([ftp.status, ftp.json.error.field]).toEqual([422, 'url']);
    const global = await h.call('POST', '/v1/billing/webhooks/endpoints', FINANCE, { url: `${receiver.url}/global`, description: 'ERP' });
    expect(global.status, global.text).toBe(201);
    expect(global.json).toMatchObject({ tenantId: null, events: ['*'], enabled: true, secret: expect.stringMatching(/^whsec_/) });
    globalEndpoint = global.json.endpointId;
    receiver.secrets.set('/global', global.json.secret);
    const tenant = await h.call('POST', '/v1/billing/webhooks/endpoints', FINANCE, { url: `${receiver.url}/acme`, tenantId: 'acme', events: ['invoice.finalized'] });
    expect(tenant.status, tenant.text).toBe(201);
    receiver.secrets.set('/acme', tenant.json.secret);
    const listed = await h.call('GET', '/v1/billing/webhooks/endpoints', FINANCE);
    expect(listed.json.endpoints).toHaveLength(2);
    expect(JSON.stringify(listed.json)).not.toContain('whsec_');
  });

  it('sends every billing webhook type, signed, at least once: a failed first attempt is retried after the backoff', async () => {
    const acmeInvoice = invoiceIdFor('acme', past.period);
    const globexInvoice = invoiceIdFor('globex', past.period);
    await h.usage('acme', 'u1', past.at(3), plus(past.at(3), 10 * HOUR_MS));
    await h.usage('acme', 'u2', past.at(4), plus(past.at(4), 5 * HOUR_MS));
    await h.usage('globex', 'g1', past.at(5), plus(past.at(5), 2 * HOUR_MS));
    await h.settle();
    await h.finalize(acmeInvoice);
    await h.finalize(globexInvoice);
    // Late: usage of the finalized period lands on the next invoice as an adjustment.
    await h.usage('acme', 'late-1', past.at(20), plus(past.at(20), HOUR_MS));
    await h.settle();
    expect((await h.call('POST', `/v1/invoices/${acmeInvoice}/credit-notes`, FINANCE, { reason: 'goodwill', amount: '5.00' })).status).toBe(201);
    expect((await h.call('POST', `/v1/invoices/${acmeInvoice}/pay`, FINANCE, { reason: 'wire received' })).status).toBe(200);
    expect((await h.call('POST', `/v1/invoices/${globexInvoice}/void`, FINANCE, { reason: 'duplicate' })).status).toBe(200);

    const wanted = ['invoice.created', 'invoice.updated', 'invoice.finalized', 'invoice.paid', 'invoice.voided', 'credit_note.issued', 'usage.late'];
    // Every type arrived, and the message first answered 500 came again (after its backoff) and got through.
    const retriedFirst = () => receiver.received.some((r) => r.id === receiver.received[0]?.id && r.status === 200);
    await eventually(() => wanted.every((type) => receiver.at('/global').some((r) => r.type === type && r.status === 200)) && retriedFirst(), { timeoutMs: 20_000, message: `received ${receiver.received.map((r) => r.type).join(', ')}` });
    const global = receiver.at('/global');
    expect(global.every((r) => r.valid)).toBe(true);
    expect(global.every((r) => r.body.type === r.type && /^\d+$/.test(r.timestamp))).toBe(true);
    // Every body is what the published schema of its type (GET …/event-types, the OpenAPI) says.
    for (const r of global) expect(webhookBodySchemas[r.type as WebhookEventType].safeParse(r.body).error, r.type).toBeUndefined();
    const types = await h.call('GET', '/v1/billing/webhooks/event-types', FINANCE);
    // invoice.deleted (a draft deleted by finance) is declared too; webhook-draft-changes.spec.ts receives it.
    expect(types.json.eventTypes.map((t: { type: string }) => t.type).sort()).toEqual([...wanted, 'invoice.deleted'].sort());
    expect(types.json.eventTypes.every((t: { bodySchema: { type: string } }) => t.bodySchema.type === 'object')).toBe(true);

    const byType = (type: string) => global.filter((r) => r.type === type && r.status === 200).map((r) => r.body.data);
    expect(byType('invoice.created')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ invoiceId: acmeInvoice, tenantId: 'acme', period: past.period, status: 'draft' }),
        expect.objectContaining({ invoiceId: invoiceIdFor('acme', next.period), period: next.period }),
        expect.objectContaining({ invoiceId: globexInvoice, tenantId: 'globex' }),
      ]),
    );
    expect(byType('invoice.updated')).toEqual([expect.objectContaining({ invoiceId: acmeInvoice, cause: 'UsageRecorded' })]);
    expect(byType('invoice.finalized')).toEqual(expect.arrayContaining([expect.objectContaining({ invoiceId: acmeInvoice, number: 'FGPU-000001', total: '30.00', currency: 'USD' })]));
    expect(byType('usage.late')).toEqual([expect.objectContaining({ usageId: 'late-1', tenantId: 'acme', pieces: [{ servicePeriod: past.period, disposition: 'adjustment', invoiceId: invoiceIdFor('acme', next.period) }] })]);
    expect(byType('credit_note.issued')).toEqual([expect.objectContaining({ invoiceId: acmeInvoice, number: 'CN-FGPU-000001', total: '5.00' })]);
    // The payment is the balance due after the credit note: 30.00 − 5.00.
    expect(byType('invoice.paid')).toEqual([expect.objectContaining({ invoiceId: acmeInvoice, amount: '25.00' })]);
    expect(byType('invoice.voided')).toEqual([expect.objectContaining({ invoiceId: globexInvoice, number: 'FGPU-000002' })]);

    // The first request got a 500; the same webhook-id came again, after the backoff.
    const first = receiver.received[0]!;
    expect(first.status).toBe(500);
    const retried = receiver.received.filter((r) => r.id === first.id);
    expect(retried.map((r) => r.status)).toEqual([500, 200]);
    expect(Number(retried[1]!.timestamp) * 1000).toBeGreaterThanOrEqual(Number(first.timestamp) * 1000);
    const log = await h.call('GET', `/v1/billing/webhooks/deliveries?endpointId=${globalEndpoint}`, FINANCE);
    const delivery = log.json.deliveries.find((d: { messageId: string }) => d.messageId === first.id);
    const detail = await h.call('GET', `/v1/billing/webhooks/deliveries/${delivery.deliveryId}`, FINANCE);
    expect(detail.json).toMatchObject({ status: 'succeeded', attemptCount: 2 });
    expect(detail.json.attempts.map((a: { statusCode: number; manual: boolean }) => [a.statusCode, a.manual])).toEqual([
      [500, false],
      [200, false],
    ]);
    const [a1, a2] = detail.json.attempts as Array<{ at: string }>;
    expect(Date.parse(a2!.at) - Date.parse(a1!.at)).toBeGreaterThanOrEqual(RETRY_BASE_MS);
  });

  it("sends a tenant's endpoint only its tenant's events of the types it asked for", async () => {
    await eventually(() => receiver.at('/acme').length >= 1);
    const acme = receiver.at('/acme');
    expect(acme.every((r) => r.valid && r.type === 'invoice.finalized' && r.body.data.tenantId === 'acme')).toBe(true);
    expect(acme.map((r) => r.body.data.invoiceId)).toEqual([invoiceIdFor('acme', past.period)]);
  });

  it('sends nothing again when the webhook projection is replayed from sequence 1 on the live path, or rebuilt', async () => {
    const end = await lastSequence(h.env.bus, h.env.bus.topology.streams.events);
    const count = async () => Number((await h.runtime.db.selectFrom('billing_webhook_deliveries').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    await eventually(async () => (await h.call('GET', '/v1/billing/webhooks/deliveries?status=pending', FINANCE)).json.deliveries.length === 0);
    const [deliveries, received] = [await count(), receiver.received.length];
    const deps = { awaitLedger: async () => undefined, nowMs: () => Date.now() };
    for (const options of [{ live: true, checkpointName: 'billing-webhooks-replay' }, { live: false, checkpointName: 'billing-webhooks-rebuild' }]) {
      const runner = new ProjectionRunner(h.env.bus, h.runtime.db, webhookProjection(deps), options);
      await runner.start();
      try {
        expect(await runner.waitFor(end, 15_000)).toBe(true);
      } finally {
        await runner.stop();
      }
    }
    const { lastSequence: rebuiltTo } = await rebuildLedger(h.env.bus, h.runtime.db, '_rebuild_webhooks', 30_000);
    await dropRebuildTables(h.runtime.db, '_rebuild_webhooks');
    expect(rebuiltTo).toBeGreaterThanOrEqual(end);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await count()).toBe(deliveries);
    expect(receiver.received.length).toBe(received);
  });

  it('redelivers by hand: one attempt now, the same webhook-id, a fresh valid signature', async () => {
    const log = await h.call('GET', `/v1/billing/webhooks/deliveries?endpointId=${globalEndpoint}&eventType=invoice.finalized`, FINANCE);
    const delivery = log.json.deliveries[0] as { deliveryId: string; messageId: string };
    const before = receiver.received.filter((r) => r.id === delivery.messageId).length;
    const outcome = await h.call('POST', `/v1/billing/webhooks/deliveries/${delivery.deliveryId}/redeliver`, FINANCE);
    expect(outcome.status, outcome.text).toBe(200);
    expect(outcome.json).toMatchObject({ succeeded: true, statusCode: 200 });
    const copies = receiver.received.filter((r) => r.id === delivery.messageId);
    expect(copies).toHaveLength(before + 1);
    expect(copies[copies.length - 1]!.valid).toBe(true);
    const detail = await h.call('GET', `/v1/billing/webhooks/deliveries/${delivery.deliveryId}`, FINANCE);
    expect(detail.json.attempts[detail.json.attempts.length - 1]).toMatchObject({ statusCode: 200, manual: true });
    expect((await h.call('POST', `/v1/billing/webhooks/deliveries/${delivery.deliveryId}/redeliver`, ACME)).status).toBe(403);
    expect((await h.call('POST', '/v1/billing/webhooks/deliveries/nope/redeliver', FINANCE)).status).toBe(404);
  });
});
