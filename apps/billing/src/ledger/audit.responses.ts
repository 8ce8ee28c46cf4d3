import { z } from 'zod';
import { AuditOutcome } from './billing-audit';
import type { BillingAuditController } from './audit.controller';

/**
 * What the audit routes answer (a page of the audit trail), as the zod schema the OpenAPI
 * document shows; the type-check holds it equal to both handlers' answers.
 */
export const auditPageResponse = z.object({
  events: z.array(
    z.object({
      sequence: z.number().int().nonnegative().describe('Stream sequence of the event'),
      eventId: z.string(),
      type: z.string().describe('The event type'),
      invoiceId: z.string().nullable().describe('The invoice it concerns (null: none, e.g. a price book)'),
      tenantId: z.string().nullable(),
      outcome: z.enum(Object.values(AuditOutcome) as [AuditOutcome, ...AuditOutcome[]]).describe('What became of the event: applied, duplicate, conflict, review (see the review queue) or late'),
      detail: z.string().nullable(),
    }),
  ),
  next: z.number().int().nonnegative().nullable().describe('Give it as `after` for the next page; null on the last page'),
});

/** Both ways assignable: neither side has a field, or a field type, the other lacks. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails the type-check (at its line) unless given `true`. */
type Assert<T extends true> = T;
type Answer<K extends keyof BillingAuditController> = BillingAuditController[K] extends (...args: never[]) => infer R ? Awaited<R> : never;
/** The rows type `outcome` as a string; the schema names its values. */
type Event<T extends { events: unknown[] }> = Omit<T['events'][number], 'outcome'>;
export type AnswersMatchSchemas = [
  Assert<Same<Event<Answer<'invoice'>>, Event<z.output<typeof auditPageResponse>>>>,
  Assert<Same<Answer<'tenant'>, Answer<'invoice'>>>,
  Assert<Same<Omit<Answer<'invoice'>, 'events'>, Omit<z.output<typeof auditPageResponse>, 'events'>>>,
];
