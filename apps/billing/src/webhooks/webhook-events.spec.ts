/**
 * Proves, without I/O, the webhook rules: the same event always yields the same messages (ids
 * named after the event id, so a replay enqueues nothing new); a usage record yields
 * invoice.created or invoice.updated per invoice it landed on and usage.late when it landed on a
 * later invoice or in review; a draft the ledger changed otherwise (re-rated by a price book, given
 * moved usage at a finalization, a deletion or a reissue, an accrual, a review item) yields
 * invoice.updated, or invoice.created when it is new; a draft deletion the ledger applied yields
 * invoice.deleted before its successor's invoice.created, a refused one nothing; finance actions the ledger did not record yield nothing; the
 * backoff doubles from its base up to its cap and stops after the last attempt; an endpoint gets
 * only its tenant's events of its types, after the sequence it was registered at.
 */
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '@fastgpu/contracts';
import { endpointWants, retryDelayMs, webhookMessages } from './webhook-events';

const usage = {
  sequence: 42,
  subject: 'p.evt.metering.usage.acme',
  receivedAtMs: 0,
  event: { id: 'evt-usage-1', type: 'UsageRecorded', time: '2026-11-02T10:00:00.000Z', data: { usageId: 'u1', tenantId: 'acme', startAt: '2026-10-30T10:00:00.000Z', endAt: '2026-11-02T10:00:00.000Z', gpuMs: 259_200_000 } },
} as unknown as StoredEvent;

describe('webhook messages', () => {
  const facts = {
    kind: 'usage' as const,
    drafts: [{ invoiceId: 'inv-nov', tenantId: 'acme', invoicePeriod: '2026-11', invoiceIsNew: false }],
    placements: [
      { invoiceId: 'inv-nov', invoicePeriod: '2026-11', servicePeriod: '2026-10' },
      { invoiceId: 'inv-nov', invoicePeriod: '2026-11', servicePeriod: '2026-11' },
    ],
    reviewed: [],
  };

  it('names messages after the event, so the same event yields the same messages', () => {
    const first = webhookMessages(usage, facts);
    expect(webhookMessages(usage, facts)).toEqual(first);
    expect(first.map((m) => m.type)).toEqual(['invoice.updated', 'usage.late']);
    expect(new Set(first.map((m) => m.messageId)).size).toBe(2);
    expect(JSON.parse(first[1]!.body)).toEqual({
      type: 'usage.late',
      timestamp: '2026-11-02T10:00:00.000Z',
      data: { usageId: 'u1', tenantId: 'acme', startAt: '2026-10-30T10:00:00.000Z', endAt: '2026-11-02T10:00:00.000Z', gpuMs: 259_200_000, pieces: [{ servicePeriod: '2026-10', disposition: 'adjustment', invoiceId: 'inv-nov' }] },
    });
  });

  it('announces a new draft as invoice.created, and nothing late for usage on its own period', () => {
    const messages = webhookMessages(usage, { kind: 'usage', drafts: [{ invoiceId: 'inv-nov', tenantId: 'acme', invoicePeriod: '2026-11', invoiceIsNew: true }], placements: [{ invoiceId: 'inv-nov', invoicePeriod: '2026-11', servicePeriod: '2026-11' }], reviewed: [] });
    expect(messages.map((m) => m.type)).toEqual(['invoice.created']);
  });

  it('announces drafts the ledger changed without usage arriving, each once per event, named after the event', () => {
    const at = (type: string, data: Record<string, unknown>) => ({ ...usage, sequence: 50, event: { id: `evt-${type}`, type, time: '2026-11-04T00:00:00.000Z', data } }) as unknown as StoredEvent;
    const draft = (invoiceId: string, invoiceIsNew: boolean) => ({ invoiceId, tenantId: 'acme', invoicePeriod: '2026-11', invoiceIsNew });
    const priceBook = at('PriceBookPublished', { priceBookId: 'standard', version: 2 });
    const rerated = webhookMessages(priceBook, { kind: 'drafts', drafts: [draft('inv-a', false), { ...draft('inv-b', false), tenantId: 'globex' }] });
    expect(rerated.map((m) => [m.type, m.tenantId])).toEqual([
      ['invoice.updated', 'acme'],
      ['invoice.updated', 'globex'],
    ]);
    expect(JSON.parse(rerated[0]!.body)).toEqual({ type: 'invoice.updated', timestamp: '2026-11-04T00:00:00.000Z', data: { invoiceId: 'inv-a', tenantId: 'acme', period: '2026-11', status: 'draft', cause: 'PriceBookPublished', eventSequence: 50 } });
    expect(webhookMessages(priceBook, { kind: 'drafts', drafts: [draft('inv-a', false), { ...draft('inv-b', false), tenantId: 'globex' }] })).toEqual(rerated);
    // A successor or replacement draft is new; an accrual or a billed review item updates an open one.
    for (const type of ['InvoiceDraftDeleted', 'InvoiceReissued']) expect(webhookMessages(at(type, {}), { kind: 'drafts', drafts: [draft('inv-next', true)] }).map((m) => m.type)).toEqual(['invoice.created']);
    for (const type of ['BillingPeriodClosed', 'LateUsageBilled', 'SlaCreditIssued', 'TenantCreated']) expect(webhookMessages(at(type, {}), { kind: 'drafts', drafts: [draft('inv-a', false)] }).map((m) => m.type)).toEqual(['invoice.updated']);
    expect(webhookMessages(priceBook, { kind: 'drafts', drafts: [] })).toEqual([]);
    // A finalization announces itself and the draft its late usage moved to.
    const finalized = at('InvoiceFinalized', { invoiceId: 'inv-oct', tenantId: 'acme', period: '2026-10', number: 'FGPU-000001', total: '10.00', currency: 'USD', sha256: 'x', finalizedAt: '2026-11-04T00:00:00.000Z' });
    expect(webhookMessages(finalized, { kind: 'finalized', applied: true, drafts: [draft('inv-nov', false)] }).map((m) => [m.type, JSON.parse(m.body).data.invoiceId])).toEqual([
      ['invoice.finalized', 'inv-oct'],
      ['invoice.updated', 'inv-nov'],
    ]);
    expect(webhookMessages(finalized, { kind: 'finalized', applied: false, drafts: [] })).toEqual([]);
  });

  it('announces an applied draft deletion as invoice.deleted, then its successor; a refused one not at all', () => {
    const deletion = {
      ...usage,
      sequence: 60,
      event: { id: 'evt-del', type: 'InvoiceDraftDeleted', time: '2026-11-05T00:00:00.000Z', data: { invoiceId: 'inv-old', tenantId: 'acme', period: '2026-11', usage: 'move', deletedAt: '2026-11-05T00:00:00.000Z', actor: 'k', reason: 'recreated' } },
    } as unknown as StoredEvent;
    const successor = { invoiceId: 'inv-next', tenantId: 'acme', invoicePeriod: '2026-11', invoiceIsNew: true };
    const messages = webhookMessages(deletion, { kind: 'deleted', deleted: { successorInvoiceId: 'inv-next' }, drafts: [successor] });
    expect(messages.map((m) => m.type)).toEqual(['invoice.deleted', 'invoice.created']);
    expect(JSON.parse(messages[0]!.body)).toEqual({
      type: 'invoice.deleted',
      timestamp: '2026-11-05T00:00:00.000Z',
      data: { invoiceId: 'inv-old', tenantId: 'acme', period: '2026-11', usage: 'move', successorInvoiceId: 'inv-next', deletedAt: '2026-11-05T00:00:00.000Z', reason: 'recreated' },
    });
    expect(webhookMessages(deletion, { kind: 'deleted', deleted: { successorInvoiceId: 'inv-next' }, drafts: [successor] })).toEqual(messages);
    expect(webhookMessages(deletion, { kind: 'deleted', deleted: null, drafts: [] })).toEqual([]);
  });

  it('sends nothing for a finance action the ledger did not record', () => {
    const paid = { ...usage, event: { id: 'evt-paid', type: 'InvoicePaid', time: '2026-11-03T00:00:00.000Z', data: { invoiceId: 'inv-oct', tenantId: 'acme', amount: '10.00', currency: 'USD', paidAt: '2026-11-03T00:00:00.000Z', actor: 'k', reason: 'r' } } } as unknown as StoredEvent;
    expect(webhookMessages(paid, { kind: 'finance-action', recorded: false })).toEqual([]);
    expect(webhookMessages(paid, { kind: 'finance-action', recorded: true }).map((m) => m.type)).toEqual(['invoice.paid']);
  });
});

describe('delivery policy', () => {
  it('doubles the delay from its base up to its cap, and stops after the last attempt', () => {
    const policy = { retryBaseMs: 5_000, retryMaxMs: 60_000, attemptsMax: 6 };
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, policy))).toEqual([5_000, 10_000, 20_000, 40_000, 60_000, null]);
  });

  it("gives an endpoint its tenant's events of its types, after the sequence it was registered at", () => {
    const tenantEndpoint = { tenantId: 'acme', eventTypes: ['invoice.finalized'], fromSequence: 10 };
    expect(endpointWants(tenantEndpoint, { tenantId: 'acme', type: 'invoice.finalized' }, 11)).toBe(true);
    expect(endpointWants(tenantEndpoint, { tenantId: 'globex', type: 'invoice.finalized' }, 11)).toBe(false);
    expect(endpointWants(tenantEndpoint, { tenantId: 'acme', type: 'invoice.paid' }, 11)).toBe(false);
    expect(endpointWants(tenantEndpoint, { tenantId: 'acme', type: 'invoice.finalized' }, 10)).toBe(false);
    expect(endpointWants({ tenantId: null, eventTypes: ['*'], fromSequence: 0 }, { tenantId: 'globex', type: 'usage.late' }, 1)).toBe(true);
  });
});
