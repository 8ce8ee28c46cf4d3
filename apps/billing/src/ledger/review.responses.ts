import { z } from 'zod';
import type { ReviewQueueService } from './review-queue.service';

/**
 * The review queue as the routes answer it (`GET /v1/billing/review-queue`, the JSON of
 * `GET /v1/billing/late-usage`, and a decision on an item), as the zod schemas the OpenAPI
 * document shows. The type-check holds them to what ReviewQueueService returns.
 */
const instant = z.string().describe('RFC 3339 instant, UTC');

export const reviewItemSchema = z.object({
  kind: z.string().describe('usage, late-usage, accrual-overrun, period-close, sla-credit, finance-action, …: why the item is here'),
  tenantId: z.string(),
  referenceId: z.string().describe('The usage, credit or event the item is about'),
  servicePeriod: z.string(),
  eventId: z.string(),
  piece: z.number().int().nonnegative(),
  eventSequence: z.number().int().nonnegative(),
  reason: z.string(),
  status: z.enum(['open', 'billed', 'dismissed']),
  resolvedInvoiceId: z.string().nullable().describe('The draft a billed item went onto'),
  // Usage items: the piece they would bill.
  gpuModel: z.string().optional(),
  capacityType: z.string().optional(),
  gpus: z.number().int().positive().optional(),
  startAt: instant.optional(),
  endAt: instant.optional(),
  gpuMs: z.number().int().nonnegative().optional(),
});

export const reviewItemsResponse = z.object({ items: z.array(reviewItemSchema) });

export const reviewDecisionResponse = z.object({
  usageEventId: z.string(),
  piece: z.number().int().nonnegative(),
  status: z.enum(['billed', 'dismissed']),
  invoiceId: z.string().nullable().describe('The draft the item was billed onto (null when dismissed)'),
});

/** Both ways assignable: neither side has a field, or a field type, the other lacks. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails the type-check (at its line) unless given `true`. */
type Assert<T extends true> = T;
type Returned<K extends keyof ReviewQueueService> = ReviewQueueService[K] extends (...args: never[]) => infer R ? Awaited<R> : never;
export type AnswersMatchSchemas = [
  Assert<Same<Returned<'reviewQueue'>[number], z.output<typeof reviewItemSchema>>>,
  // `status` is a string to the type-checker (read back from the row); the schema names its two values.
  Assert<Same<Omit<Returned<'decideReviewItem'>, 'status'>, Omit<z.output<typeof reviewDecisionResponse>, 'status'>>>,
];
