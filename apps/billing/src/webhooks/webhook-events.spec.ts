/**
 * Proves, without I/O, the webhook rules: the same event always yields the same messages (ids
 * named after the event id, so a replay enqueues nothing new); a usage record yields
 * invoice.created or invoice.updated per invoice it landed on and usage.late when it landed on a
 * later invoice or in review; finance actions the ledger did not record yield nothing; the
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
    placements: [
      { invoiceId: 'inv-nov', invoicePeriod: '2026-11', servicePeriod: '2026-10', invoiceIsNew: false },
      { invoiceId: 'inv-nov', invoicePeriod: '2026-11', servicePeriod: '2026-11', invoiceIsNew: false },
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
    const messages = webhookMessages(usage, { kind: 'usage', placements: [{ invoiceId: 'inv-nov', invoicePeriod: '2026-11', servicePeriod: '2026-11', invoiceIsNew: true }], reviewed: [] });
    expect(messages.map((m) => m.type)).toEqual(['invoice.created']);
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
