import { z } from 'zod';
import { WEBHOOK_EVENT_TYPES } from './webhook-events';
import type { EndpointView } from './webhooks.service';
import type { AttemptOutcome } from './webhook-dispatcher';
import type { WebhooksController } from './webhooks.controller';
import { webhookBodySchemas } from './webhooks.schema';

/**
 * What the webhook routes answer, as the zod schemas the OpenAPI document shows. The type-check
 * holds them to `EndpointView`, `AttemptOutcome` and the handlers' answers; a delivery's payload
 * is one of the webhook bodies of webhooks.schema.ts.
 */
const instant = z.string().describe('RFC 3339 instant, UTC');

export const endpointResponse = z.object({
  endpointId: z.string(),
  tenantId: z.string().nullable().describe('null: a global endpoint (every tenant)'),
  url: z.string(),
  events: z.array(z.string()).describe('The webhook types it receives (`*`: all)'),
  description: z.string(),
  enabled: z.boolean(),
  fromSequence: z.number().int().nonnegative().describe('It receives events after this stream sequence'),
  createdBy: z.string(),
  createdAt: instant,
});

export const registeredEndpointResponse = endpointResponse.extend({ secret: z.string().describe('The signing secret (whsec_…): in this answer only') });
export const endpointsResponse = z.object({ endpoints: z.array(endpointResponse) });

const deliveryView = z.object({
  deliveryId: z.string(),
  messageId: z.string().describe('The webhook-id header: the same on every attempt'),
  endpointId: z.string(),
  eventType: z.enum(WEBHOOK_EVENT_TYPES),
  eventId: z.string(),
  eventSequence: z.number().int().nonnegative(),
  tenantId: z.string().nullable(),
  status: z.enum(['pending', 'succeeded', 'failed']),
  attemptCount: z.number().int().nonnegative(),
  nextAttemptAt: instant.nullable().describe('While pending'),
  lastStatusCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  createdAt: instant,
  deliveredAt: instant.nullable(),
});

export const deliveriesResponse = z.object({ deliveries: z.array(deliveryView) });

export const deliveryResponse = deliveryView.extend({
  payload: z.union(Object.values(webhookBodySchemas)).describe('The webhook body sent: { type, timestamp, data }'),
  attempts: z.array(
    z.object({
      attempt: z.number().int().positive(),
      at: instant,
      statusCode: z.number().int().nullable().describe("The receiver's HTTP status (null: no answer)"),
      error: z.string().nullable(),
      durationMs: z.number().int().nonnegative(),
      manual: z.boolean().describe('A redelivery by hand'),
    }),
  ),
});

export const attemptOutcomeResponse = z.object({
  deliveryId: z.string(),
  attempt: z.number().int().positive(),
  statusCode: z.number().int().nullable(),
  error: z.string().nullable(),
  succeeded: z.boolean(),
});

/** Both ways assignable: neither side has a field, or a field type, the other lacks. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails the type-check (at its line) unless given `true`. */
type Assert<T extends true> = T;
type Answer<K extends keyof WebhooksController> = WebhooksController[K] extends (...args: never[]) => infer R ? Awaited<R> : never;
/** The delivery views type `eventType` and `status` as strings; the schemas name their values. */
type Loose<T> = Omit<T, 'eventType' | 'status' | 'payload'>;
export type AnswersMatchSchemas = [
  Assert<Same<EndpointView, z.output<typeof endpointResponse>>>,
  Assert<Same<Answer<'register'>, z.output<typeof registeredEndpointResponse>>>,
  Assert<Same<Answer<'endpoints'>, z.output<typeof endpointsResponse>>>,
  Assert<Same<Answer<'disable'>, z.output<typeof endpointResponse>>>,
  Assert<Same<Loose<Answer<'deliveries'>['deliveries'][number]>, Loose<z.output<typeof deliveriesResponse>['deliveries'][number]>>>,
  Assert<Same<Loose<Answer<'delivery'>>, Loose<z.output<typeof deliveryResponse>>>>,
  Assert<Same<AttemptOutcome, z.output<typeof attemptOutcomeResponse>>>,
  Assert<Same<Answer<'redeliver'>, z.output<typeof attemptOutcomeResponse>>>,
];
