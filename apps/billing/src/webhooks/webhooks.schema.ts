import { z } from 'zod';
import { singleLineText } from '@fastgpu/contracts';
import type { WebhookDescriptor } from '@fastgpu/openapi';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from './webhook-events';

/** Request shapes of the webhook routes, validated at the edge (400 malformed, 422 unacceptable). */
const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/);
/** Bound on a receiver URL's length. */
export const WEBHOOK_URL_LENGTH_MAX = 2000;

export const registerEndpointRequest = z
  .object({
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
      .max(WEBHOOK_URL_LENGTH_MAX),
    /** Omitted or null: every tenant's events (a global endpoint). */
    tenantId: id.nullable().optional(),
    /** The webhook types to receive; omitted: all (`*`). */
    events: z.array(z.enum([...WEBHOOK_EVENT_TYPES, '*'])).min(1).max(WEBHOOK_EVENT_TYPES.length + 1).optional(),
    description: singleLineText(200).optional(),
  })
  .strict();

export const deliveriesQuery = z.object({
  endpointId: id.optional(),
  status: z.enum(['pending', 'succeeded', 'failed']).optional(),
  eventType: z.enum(WEBHOOK_EVENT_TYPES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

// ---------------------------------------------------------------------------------------------
// The webhook bodies billing sends (documentation and OpenAPI; webhook-events.ts builds them).

const decimal = z.string().regex(/^-?\d+(\.\d+)?$/);
const instant = z.iso.datetime({ offset: false });
const draftData = z.object({ invoiceId: z.string(), tenantId: z.string(), period: z.string(), status: z.literal('draft'), cause: z.string(), eventSequence: z.number().int() });
const body = <T extends (typeof WEBHOOK_EVENT_TYPES)[number], D extends z.ZodType>(type: T, data: D) => z.object({ type: z.literal(type), timestamp: instant, data });

export const webhookBodySchemas = {
  'invoice.created': body('invoice.created', draftData),
  'invoice.updated': body('invoice.updated', draftData),
  'invoice.deleted': body(
    'invoice.deleted',
    z.object({
      invoiceId: z.string(),
      tenantId: z.string(),
      period: z.string(),
      usage: z.enum(['move', 'discard']),
      successorInvoiceId: z.string().nullable().describe("The draft that took the deleted draft's usage (or, with discard, its SLA credits); null when nothing moved"),
      deletedAt: instant,
      reason: z.string(),
    }),
  ),
  'invoice.finalized': body('invoice.finalized', z.object({ invoiceId: z.string(), tenantId: z.string(), period: z.string(), number: z.string(), total: decimal, currency: z.string(), sha256: z.string(), finalizedAt: instant })),
  'invoice.paid': body('invoice.paid', z.object({ invoiceId: z.string(), tenantId: z.string(), amount: decimal, currency: z.string(), paidAt: instant, paymentReference: z.string().optional() })),
  'invoice.voided': body('invoice.voided', z.object({ invoiceId: z.string(), tenantId: z.string(), number: z.string(), voidedAt: instant })),
  'credit_note.issued': body(
    'credit_note.issued',
    z.object({
      creditNoteId: z.string(),
      number: z.string(),
      invoiceId: z.string(),
      invoiceNumber: z.string().nullable(),
      tenantId: z.string(),
      currency: z.string(),
      net: decimal.nullable(),
      taxes: z.array(z.object({ name: z.string(), rate: z.string(), amount: decimal })),
      total: decimal,
      issuedAt: instant,
    }),
  ),
  'usage.late': body(
    'usage.late',
    z.object({
      usageId: z.string(),
      tenantId: z.string(),
      startAt: instant,
      endAt: instant,
      gpuMs: z.number().int(),
      pieces: z.array(z.union([z.object({ servicePeriod: z.string(), disposition: z.literal('adjustment'), invoiceId: z.string() }), z.object({ servicePeriod: z.string(), disposition: z.literal('review'), reason: z.string() })])),
    }),
  ),
} as const;

/** What each webhook type announces (its `data` is documented in docs/billing.md, "Webhooks"). */
export const WEBHOOK_EVENT_DESCRIPTIONS: Record<WebhookEventType, string> = {
  'invoice.created': "a draft invoice got its first usage or credit (also a draft that succeeds a deleted one, or a reissue's replacement); `cause` names the event",
  'invoice.updated': "a draft invoice changed: more usage or a credit, re-rated by a new price version, usage the ledger moved onto it (late usage at a finalization, a deleted draft's usage), an accrual at period close, a review item billed onto it; `cause` names the event",
  'invoice.deleted': 'a draft invoice was deleted by finance (it never had a number); its usage moved to the successor draft (announced by invoice.created) or was discarded',
  'invoice.finalized': 'an invoice was numbered and frozen (number, total, SHA-256)',
  'invoice.paid': 'a payment was recorded',
  'invoice.voided': 'an invoice was voided (it keeps its number)',
  'credit_note.issued': 'a credit note was issued against an invoice (net, taxes, total)',
  'usage.late': 'usage arrived after its period was finalized: billed as an adjustment on a later invoice, or sent to review',
};

/** The Standard Webhooks headers of every delivery. */
export const WEBHOOK_HEADERS = {
  'webhook-id': 'The message id, the same on every attempt (deduplicate on it)',
  'webhook-timestamp': "The attempt's Unix time in seconds",
  'webhook-signature': "v1,<base64 HMAC-SHA256 of id.timestamp.body with the endpoint's secret>",
} as const;

/** Billing's webhooks as the OpenAPI document's top-level `webhooks` declares them. */
export const billingWebhooks: WebhookDescriptor[] = WEBHOOK_EVENT_TYPES.map((type) => ({ name: type, summary: WEBHOOK_EVENT_DESCRIPTIONS[type], body: webhookBodySchemas[type], headers: WEBHOOK_HEADERS, tags: ['billing', 'webhooks'] }));

export const eventTypesResponse = z.object({
  eventTypes: z.array(z.object({ type: z.enum(WEBHOOK_EVENT_TYPES), description: z.string(), bodySchema: z.record(z.string(), z.unknown()).describe('JSON Schema of the body') })),
  headers: z.array(z.string()).describe('Standard Webhooks headers on every delivery'),
});
