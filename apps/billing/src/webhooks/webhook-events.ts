import { nameId, type StoredEvent } from '@fastgpu/contracts';

/**
 * The webhook messages billing sends, derived purely from a domain event and what the ledger
 * made of it (the facts below, read by the projection once the ledger has applied the event).
 * A message's id (the `webhook-id` header, stable across retries) is named after the event id,
 * so the same event always yields the same messages: a replay enqueues nothing new.
 *
 * Body (Standard Webhooks): `{ "type": "...", "timestamp": "<event time>", "data": { ... } }`.
 */
export const WEBHOOK_EVENT_TYPES = ['invoice.created', 'invoice.updated', 'invoice.deleted', 'invoice.finalized', 'invoice.paid', 'invoice.voided', 'credit_note.issued', 'usage.late'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export interface WebhookMessage {
  messageId: string;
  type: WebhookEventType;
  tenantId: string;
  /** The JSON body, exactly as signed and sent. */
  body: string;
}

/** Where the ledger put one piece of a usage record (for usage.late). */
export interface PiecePlacement {
  invoiceId: string;
  invoicePeriod: string;
  servicePeriod: string;
}

/**
 * A draft an event changed: usage or an SLA credit put on it, re-rated by a new price version, usage
 * the ledger moved onto it (late pieces at a finalization, a deleted draft's usage, a reissue's
 * copies), an accrual or a review item billed onto it. From the ledger's audit trail, which records
 * it at that event for good, so a replay finds the same drafts however the usage moved since.
 */
export interface DraftChange {
  invoiceId: string;
  tenantId: string;
  invoicePeriod: string;
  /** True when this event was the first to put anything on the draft (for invoice.created). */
  invoiceIsNew: boolean;
}

/** What the ledger made of an event, as the webhook projection read it. */
export type LedgerFacts =
  | { kind: 'usage'; drafts: DraftChange[]; placements: PiecePlacement[]; reviewed: Array<{ servicePeriod: string; reason: string }> }
  | { kind: 'finalized'; applied: boolean; drafts: DraftChange[] }
  | { kind: 'finance-action'; recorded: boolean }
  | { kind: 'drafts'; drafts: DraftChange[] }
  | { kind: 'deleted'; deleted: DraftDeletion | null; drafts: DraftChange[] }
  | { kind: 'none' };

/** A draft deletion the ledger applied (`billing_deleted_invoices`); null facts when it refused it. */
export interface DraftDeletion {
  /** The draft that took the deleted draft's usage (or, with `discard`, its SLA credits) at this event; null when nothing moved. */
  successorInvoiceId: string | null;
}

function message(stored: StoredEvent, type: WebhookEventType, tenantId: string, data: Record<string, unknown>, scope = ''): WebhookMessage {
  return { messageId: nameId('webhook', stored.event.id, type, scope), type, tenantId, body: JSON.stringify({ type, timestamp: stored.event.time, data }) };
}

function draftMessage(stored: StoredEvent, tenantId: string, invoice: Omit<DraftChange, 'tenantId'>): WebhookMessage {
  const type = invoice.invoiceIsNew ? 'invoice.created' : 'invoice.updated';
  return message(stored, type, tenantId, { invoiceId: invoice.invoiceId, tenantId, period: invoice.invoicePeriod, status: 'draft', cause: stored.event.type, eventSequence: stored.sequence }, invoice.invoiceId);
}

/** The messages one event yields. Exhaustive over the events webhooks read. */
export function webhookMessages(stored: StoredEvent, facts: LedgerFacts): WebhookMessage[] {
  const { event } = stored;
  switch (event.type) {
    case 'UsageRecorded': {
      if (facts.kind !== 'usage') return [];
      const d = event.data;
      const messages = facts.drafts.map((draft) => draftMessage(stored, d.tenantId, draft));
      const late = facts.placements.filter((p) => p.servicePeriod !== p.invoicePeriod);
      if (late.length || facts.reviewed.length) {
        messages.push(
          message(stored, 'usage.late', d.tenantId, {
            usageId: d.usageId,
            tenantId: d.tenantId,
            startAt: d.startAt,
            endAt: d.endAt,
            gpuMs: d.gpuMs,
            pieces: [
              ...late.map((p) => ({ servicePeriod: p.servicePeriod, disposition: 'adjustment', invoiceId: p.invoiceId })),
              ...facts.reviewed.map((r) => ({ servicePeriod: r.servicePeriod, disposition: 'review', reason: r.reason })),
            ],
          }),
        );
      }
      return messages;
    }
    case 'SlaCreditIssued':
      return facts.kind === 'drafts' ? facts.drafts.map((draft) => draftMessage(stored, draft.tenantId, draft)) : [];
    case 'InvoiceFinalized': {
      if (facts.kind !== 'finalized' || !facts.applied) return [];
      const d = event.data;
      return [
        message(stored, 'invoice.finalized', d.tenantId, { invoiceId: d.invoiceId, tenantId: d.tenantId, period: d.period, number: d.number, total: d.total, currency: d.currency, sha256: d.sha256, finalizedAt: d.finalizedAt }),
        // Usage that reached the invoice after its cutoff moves on to a later draft.
        ...facts.drafts.map((draft) => draftMessage(stored, draft.tenantId, draft)),
      ];
    }
    case 'InvoiceDraftDeleted': {
      const d = event.data;
      const drafts = facts.kind === 'drafts' || facts.kind === 'deleted' ? facts.drafts.map((draft) => draftMessage(stored, draft.tenantId, draft)) : [];
      if (facts.kind !== 'deleted' || facts.deleted === null) return drafts;
      // The deletion first, then the successor that took its usage (invoice.created).
      const deleted = { invoiceId: d.invoiceId, tenantId: d.tenantId, period: d.period, usage: d.usage, successorInvoiceId: facts.deleted.successorInvoiceId, deletedAt: d.deletedAt, reason: d.reason };
      return [message(stored, 'invoice.deleted', d.tenantId, deleted), ...drafts];
    }
    case 'TenantCreated':
    case 'PriceBookPublished':
    case 'BillingPeriodClosed':
    case 'InvoiceReissued':
    case 'LateUsageBilled':
      return facts.kind === 'drafts' ? facts.drafts.map((draft) => draftMessage(stored, draft.tenantId, draft)) : [];
    case 'InvoicePaid': {
      if (facts.kind !== 'finance-action' || !facts.recorded) return [];
      const d = event.data;
      return [message(stored, 'invoice.paid', d.tenantId, { invoiceId: d.invoiceId, tenantId: d.tenantId, amount: d.amount, currency: d.currency, paidAt: d.paidAt, ...(d.paymentReference ? { paymentReference: d.paymentReference } : {}) })];
    }
    case 'InvoiceVoided': {
      if (facts.kind !== 'finance-action' || !facts.recorded) return [];
      const d = event.data;
      return [message(stored, 'invoice.voided', d.tenantId, { invoiceId: d.invoiceId, tenantId: d.tenantId, number: d.number, voidedAt: d.voidedAt })];
    }
    case 'CreditNoteIssued': {
      if (facts.kind !== 'finance-action' || !facts.recorded) return [];
      const d = event.data;
      return [
        message(stored, 'credit_note.issued', d.tenantId, {
          creditNoteId: d.creditNoteId,
          number: d.number,
          invoiceId: d.invoiceId,
          invoiceNumber: d.invoiceNumber ?? null,
          tenantId: d.tenantId,
          currency: d.currency,
          net: d.net ?? null,
          taxes: d.taxes ?? [],
          total: d.amount,
          issuedAt: d.issuedAt,
        }),
      ];
    }
    default:
      return [];
  }
}

/**
 * Event types that change drafts by what the ledger does rather than by usage or a credit arriving:
 * a tenant's usage waiting for its `TenantCreated`, re-rating, accrual, moves, billed review items.
 */
export const DRAFT_CHANGING_TYPES = ['TenantCreated', 'PriceBookPublished', 'BillingPeriodClosed', 'InvoiceDraftDeleted', 'InvoiceReissued', 'LateUsageBilled'] as const;

/** Event types the webhook projection reads. */
export const WEBHOOK_SOURCE_TYPES = ['UsageRecorded', 'SlaCreditIssued', 'InvoiceFinalized', 'InvoicePaid', 'InvoiceVoided', 'CreditNoteIssued', ...DRAFT_CHANGING_TYPES] as const;

/**
 * Delay before the next automatic attempt after `failedAttempts` failures: `baseMs` doubled each
 * time, capped at `maxMs`; null once `attemptsMax` attempts have failed (the delivery fails).
 */
export function retryDelayMs(failedAttempts: number, policy: { retryBaseMs: number; retryMaxMs: number; attemptsMax: number }): number | null {
  if (failedAttempts >= policy.attemptsMax) return null;
  const exponent = Math.min(failedAttempts - 1, 30);
  return Math.min(policy.retryBaseMs * 2 ** exponent, policy.retryMaxMs);
}

/** An endpoint wants a message when it is enabled, global or the message's tenant's, and subscribed to its type. */
export function endpointWants(endpoint: { tenantId: string | null; eventTypes: readonly string[]; fromSequence: number }, message: Pick<WebhookMessage, 'tenantId' | 'type'>, eventSequence: number): boolean {
  if (eventSequence <= endpoint.fromSequence) return false;
  if (endpoint.tenantId !== null && endpoint.tenantId !== message.tenantId) return false;
  return endpoint.eventTypes.includes('*') || endpoint.eventTypes.includes(message.type);
}
