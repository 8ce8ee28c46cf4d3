/**
 * Proves, on a real nats-server and Postgres against a real HTTP receiver that verifies every
 * signature, that a draft invoice changed by the ledger rather than by usage or a credit arriving is
 * announced: re-rated by a new price version (invoice.updated, cause PriceBookPublished), its usage
 * moved by a draft deletion onto the successor (invoice.created, cause InvoiceDraftDeleted), an
 * allocation accrued onto it at period close (invoice.updated, cause BillingPeriodClosed), a void
 * invoice's usage copied onto its reissue's replacement (invoice.created, cause InvoiceReissued), a
 * review item billed onto it (invoice.updated, cause LateUsageBilled); each message once, keyed by
 * its event (a replay of the webhook projection and a rebuild of the ledger send nothing again);
 * every body matches its schema, and the OpenAPI document declares every webhook type under its
 * top-level `webhooks` with that schema and the Standard Webhooks headers.
 *
 * Periods come from the real now: the month before the current one (UTC) and the current one.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { lastSequence, ProjectionRunner } from '@fastgpu/messaging';
import { addPeriods, periodBounds, periodOf } from '@fastgpu/money';
import { toJsonSchema } from '@fastgpu/openapi';
import { eventually } from '@fastgpu/testing';
import { invoiceIdFor } from '../../src/ledger/invoice-ids';
import { dropRebuildTables, rebuildLedger } from '../../src/ledger/billing.rebuild';
import { webhookProjection } from '../../src/webhooks/webhooks.projection';
import { webhookBodySchemas } from '../../src/webhooks/webhooks.schema';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from '../../src/webhooks/webhook-events';
import { DocumentsHarness, FINANCE } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

const current = periodOf(Date.now(), 'UTC');
const previous = addPeriods(current, -1);
const previousStartMs = periodBounds(previous, 'UTC').startMs;
const boundaryMs = periodBounds(previous, 'UTC').endMs;
const iso = (ms: number) => new Date(ms).toISOString();
const effectiveFrom = iso(periodBounds(addPeriods(current, -13), 'UTC').startMs);

interface Received {
  id: string;
  valid: boolean;
  body: { type: WebhookEventType; timestamp: string; data: Record<string, unknown> };
}

/** A receiver that verifies each request with the endpoint's secret and answers 200. */
class Receiver {
  readonly received: Received[] = [];
  secret = '';
  url = '';
  private server?: Server;

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const headers = { 'webhook-id': String(request.headers['webhook-id']), 'webhook-timestamp': String(request.headers['webhook-timestamp']), 'webhook-signature': String(request.headers['webhook-signature']) };
        let valid = true;
        try {
          new Webhook(this.secret).verify(text, headers);
        } catch {
          valid = false;
        }
        this.received.push({ id: headers['webhook-id'], valid, body: JSON.parse(text) as Received['body'] });
        response.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  /** Draft messages as [type, cause, invoice id], sorted. */
  drafts(): string[][] {
    return this.received
      .filter((r) => r.body.type === 'invoice.created' || r.body.type === 'invoice.updated')
      .map((r) => [r.body.type, String(r.body.data.cause), String(r.body.data.invoiceId)])
      .sort((a, b) => a.join().localeCompare(b.join()));
  }
}

let h: DocumentsHarness;
const receiver = new Receiver();
const draftOf = (period: string) => invoiceIdFor('acme', period);
let successor = '';
let replacement = '';

async function delivered(count: number): Promise<void> {
  await eventually(async () => (await h.call('GET', '/v1/billing/webhooks/deliveries?status=pending', FINANCE)).json.deliveries.length === 0 && receiver.received.length >= count, { timeoutMs: 20_000, message: `received ${receiver.received.map((r) => r.body.type).join(', ')}` });
}

beforeAll(async () => {
  await receiver.start();
  h = await DocumentsHarness.start({ webhooks: { retryBaseMs: 200, retryMaxMs: 1_000, attemptsMax: 5, pollIntervalMs: 50, timeoutMs: 5_000 } });
  await h.tenant('acme', 'Acme Corporation', 'UTC', 'USD');
  await h.priceBook({ priceBookId: 'standard', currency: 'USD', effectiveFrom, prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.00' }] });
  await h.settle();
  const endpoint = await h.call('POST', '/v1/billing/webhooks/endpoints', FINANCE, { url: receiver.url, description: 'ERP' });
  expect(endpoint.status, endpoint.text).toBe(201);
  receiver.secret = endpoint.json.secret;
});

afterAll(async () => {
  await h?.close();
  await receiver.stop();
});

describe('webhooks for drafts the ledger changes', () => {
  it('announces a draft re-rated by a new price version', async () => {
    await h.usage('acme', 'u1', iso(previousStartMs + 24 * HOUR_MS), iso(previousStartMs + 34 * HOUR_MS));
    await h.settle();
    expect((await h.document(draftOf(previous))).subtotal).toBe('20.00');
    await h.priceBook({ priceBookId: 'standard', currency: 'USD', effectiveFrom: iso(previousStartMs), prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '1.50' }] });
    await h.settle();
    expect((await h.document(draftOf(previous))).subtotal).toBe('15.00');
    await delivered(2);
    expect(receiver.drafts()).toEqual([
      ['invoice.created', 'UsageRecorded', draftOf(previous)],
      ['invoice.updated', 'PriceBookPublished', draftOf(previous)],
    ]);
  });

  it("announces a deleted draft and its successor, an accrual at period close, and a reissue's replacement", async () => {
    // An allocation running across the period's end (2 GPUs from two hours before it).
    const common = { jobId: 'job-long', tenantId: 'acme', subtaskId: 'long', attempt: 1, nodeId: 'node-1', leaseEpoch: 1 };
    await h.publish('SubtaskPlaced', { ...common, projectId: 'p1', gpuModel: 'a100', gpus: 2, gpuIndices: [0, 1], capacityType: 'on-demand', runtimeMs: 1000, placedAt: iso(boundaryMs - 2 * HOUR_MS) }, { tenantId: 'acme' });
    await h.publish('SubtaskStarted', { ...common, startedAt: iso(boundaryMs - 2 * HOUR_MS) }, { tenantId: 'acme' });

    const deleted = await h.call('POST', `/v1/invoices/${draftOf(previous)}/delete`, FINANCE, { usage: 'move', reason: 'recreated' });
    expect(deleted.status, deleted.text).toBe(200);
    successor = deleted.json.replacementInvoiceId;
    // Finalizing closes the period first: the running allocation is cut onto the successor draft.
    const finalized = await h.finalize(successor);
    expect(finalized.subtotal).toBe('21.00'); // 10 h + 2 GPUs × 2 h accrued, at 1.50
    const reissued = await h.call('POST', `/v1/invoices/${successor}/reissue`, FINANCE, { reason: 'price correction' });
    expect(reissued.status, reissued.text).toBe(201);
    replacement = reissued.json.replacementInvoiceId;
    await delivered(8);
    // The deletion is announced once, with what became of the usage (deliveries are concurrent, so the order of arrival is not asserted).
    const deletions = receiver.received.filter((r) => r.body.type === 'invoice.deleted');
    expect(deletions.map((r) => r.body.data)).toEqual([{ invoiceId: draftOf(previous), tenantId: 'acme', period: previous, usage: 'move', successorInvoiceId: successor, deletedAt: expect.any(String), reason: 'recreated' }]);
    expect(receiver.drafts()).toEqual(
      [
        ['invoice.created', 'UsageRecorded', draftOf(previous)],
        ['invoice.updated', 'PriceBookPublished', draftOf(previous)],
        ['invoice.created', 'InvoiceDraftDeleted', successor],
        ['invoice.updated', 'BillingPeriodClosed', successor],
        ['invoice.created', 'InvoiceReissued', replacement],
      ].sort((a, b) => a.join().localeCompare(b.join())),
    );
    expect(receiver.received.filter((r) => r.body.type === 'invoice.finalized' || r.body.type === 'invoice.voided').map((r) => [r.body.type, r.body.data.invoiceId]).sort()).toEqual([
      ['invoice.finalized', successor],
      ['invoice.voided', successor],
    ]);
  });

  it('announces a review item billed onto a draft, and usage that waited for its tenant', async () => {
    await h.usage('acme', 'u2', iso(boundaryMs + HOUR_MS), iso(boundaryMs + 2 * HOUR_MS));
    const oldStartMs = periodBounds(addPeriods(current, -5), 'UTC').startMs;
    await h.publish(
      'LateUsageRecorded',
      { usageId: 'late-1', tenantId: 'acme', projectId: 'p1', allocationId: 'alloc-late-1', gpuModel: 'a100', capacityType: 'on-demand', gpus: 1, startAt: iso(oldStartMs + HOUR_MS), endAt: iso(oldStartMs + 2 * HOUR_MS), gpuMs: HOUR_MS, reportedLateAt: new Date().toISOString(), sourceSequences: [] },
      { tenantId: 'acme' },
    );
    await h.settle();
    const items = (await h.call('GET', '/v1/billing/review-queue?tenantId=acme', FINANCE)).json.items as Array<{ eventId: string; piece: number; referenceId: string }>;
    const item = items.find((i) => i.referenceId === 'late-1')!;
    const billed = await h.call('POST', `/v1/billing/review-queue/${item.eventId}/${item.piece}/bill`, FINANCE, { invoiceId: draftOf(current), reason: 'customer agreed' });
    expect(billed.status, billed.text).toBe(200);
    // Usage of a tenant billing does not know yet waits; its TenantCreated puts it on a draft.
    await h.usage('initech', 'i1', iso(boundaryMs + HOUR_MS), iso(boundaryMs + 3 * HOUR_MS));
    await h.tenant('initech', 'Initech', 'UTC', 'USD');
    await h.settle();
    expect((await h.document(invoiceIdFor('initech', current))).subtotal).toBe('3.00');
    await delivered(11);
    const drafts = receiver.drafts();
    expect(drafts).toContainEqual(['invoice.created', 'UsageRecorded', draftOf(current)]);
    expect(drafts).toContainEqual(['invoice.updated', 'LateUsageBilled', draftOf(current)]);
    expect(drafts).toContainEqual(['invoice.created', 'TenantCreated', invoiceIdFor('initech', current)]);
    expect(drafts).toHaveLength(8);
  });

  it('sends each message once, signed and matching its schema, and nothing again on a replay or a rebuild', async () => {
    expect(receiver.received.every((r) => r.valid)).toBe(true);
    expect(new Set(receiver.received.map((r) => r.id)).size).toBe(receiver.received.length);
    for (const r of receiver.received) expect(webhookBodySchemas[r.body.type].safeParse(r.body).error, r.body.type).toBeUndefined();

    const end = await lastSequence(h.env.bus, h.env.bus.topology.streams.events);
    const count = async () => Number((await h.runtime.db.selectFrom('billing_webhook_deliveries').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const [deliveries, received] = [await count(), receiver.received.length];
    const runner = new ProjectionRunner(h.env.bus, h.runtime.db, webhookProjection({ awaitLedger: async () => undefined, nowMs: () => Date.now() }), { live: true, checkpointName: 'billing-webhooks-replay' });
    await runner.start();
    try {
      expect(await runner.waitFor(end, 15_000)).toBe(true);
    } finally {
      await runner.stop();
    }
    await rebuildLedger(h.env.bus, h.runtime.db, '_rebuild_draft_hooks', 30_000);
    await dropRebuildTables(h.runtime.db, '_rebuild_draft_hooks');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await count()).toBe(deliveries);
    expect(receiver.received.length).toBe(received);
  });

  it('declares every webhook type in the OpenAPI document, with its body schema and headers', async () => {
    const response = await fetch(`${h.started.url}/docs/openapi.json`);
    const doc = (await response.json()) as { webhooks?: Record<string, { post: { summary: string; parameters: Array<{ name: string; in: string }>; requestBody: { content: Record<string, { schema: unknown }> } } }> };
    expect(Object.keys(doc.webhooks ?? {}).sort()).toEqual([...WEBHOOK_EVENT_TYPES].sort());
    for (const type of WEBHOOK_EVENT_TYPES) {
      const post = doc.webhooks![type]!.post;
      expect(post.requestBody.content['application/json']!.schema).toEqual(toJsonSchema(webhookBodySchemas[type], 'output'));
      expect(post.parameters.map((p) => [p.name, p.in])).toEqual([
        ['webhook-id', 'header'],
        ['webhook-timestamp', 'header'],
        ['webhook-signature', 'header'],
      ]);
    }
    expect(doc.webhooks!['invoice.updated']!.post.summary).toMatch(/re-rated by a new price version/);
  });
});
