import { z } from 'zod';
import { eventCatalogue } from '@fastgpu/contracts';
import { buyerSchema, creditNoteIssuedResponse } from '../credit-notes/credit-notes.responses';
import { FINANCE_ACTION_TYPES } from '../finance-actions/finance-actions';
import { LIFECYCLE_ACTION_TYPES } from '../ledger/invoice-lifecycle';
import { DOCUMENT_SCHEMA, DOCUMENT_SCHEMA_V1, type InvoiceDocument } from './invoice-document';
import { invoiceSummarySchema } from './invoice-list';
import type { BillingAdminController, InvoicesController } from './invoices.controller';
import type { InvoiceLifecycleController } from './lifecycle.controller';

/**
 * What the invoice routes answer, as the zod schemas the OpenAPI document shows: the invoice
 * document (`InvoiceDocument`, what JSON, CSV and PDF render), the summary of a list row, and each
 * finance action's answer (the recorded event's payload where the route answers it). The
 * type-check at the end holds each schema's fields equal to the handler's answer.
 */
const amount = z.string().describe("Decimal string in the currency's minor digits");
const instant = z.string().describe('RFC 3339 instant, UTC');
const sequence = z.number().int().nonnegative();

export const invoiceLineSchema = z.object({
  line: z.number().int().positive(),
  kind: z.enum(['usage', 'adjustment', 'interruption-credit', 'sla-credit', 'carried-credit']),
  description: z.string(),
  servicePeriod: z.string(),
  gpuModel: z.string().nullable(),
  capacityType: z.string().nullable(),
  priceBookId: z.string().nullable(),
  priceBookVersion: z.number().int().nullable(),
  tier: z.number().int().nullable(),
  quantityGpuMs: z.number().int().nullable(),
  quantityGpuHours: z.string().nullable(),
  unitPrice: z.string().nullable(),
  amount,
  taxable: z.boolean(),
  reference: z.string().nullable().describe('The SLA credit id of a credit line; on an adjustment, the finalized invoice it corrects'),
  referenceNumber: z.string().nullable().optional(),
  taxes: z.array(z.object({ name: z.string(), rate: z.string(), amount })).optional().describe("Layout 2: the invoice's tax of each rate allocated to this line"),
  tax: amount.optional(),
});

export const invoiceDocumentResponse = z.object({
  schema: z.enum([DOCUMENT_SCHEMA, DOCUMENT_SCHEMA_V1]),
  invoiceId: z.string(),
  issuer: z.string(),
  number: z.string().nullable(),
  status: z.enum(['draft', 'finalized']).describe('The document as built; paid and void are settlements (X-Invoice-Status, GET …/status)'),
  revision: z.number().int().nonnegative(),
  tenant: z.object({ tenantId: z.string(), name: z.string(), billingTimeZone: z.string() }),
  currency: z.string(),
  period: z.string(),
  periodStart: instant,
  periodEnd: instant,
  cutoffSequence: sequence.describe('The stream sequence the document is built as of'),
  finalizedAt: instant.nullable(),
  priceBooks: z.array(z.object({ priceBookId: z.string(), version: z.number().int() })),
  lines: z.array(invoiceLineSchema),
  subtotal: amount,
  taxes: z.array(z.object({ name: z.string(), rate: z.string(), taxableAmount: amount, amount })),
  total: amount,
  prepaidCredits: z.array(z.object({ grantId: z.string(), amount })),
  amountDue: amount,
  validationErrors: z.array(z.object({ usageId: z.string(), message: z.string() })).describe('Usage without a price: the draft cannot be finalized'),
  creditsCarriedForward: z.array(z.object({ reference: z.string(), servicePeriod: z.string(), originInvoiceId: z.string(), originNumber: z.string().nullable(), amount })).optional(),
  replaces: z.object({ invoiceId: z.string(), number: z.string().nullable() }).optional(),
  buyer: buyerSchema.optional(),
});

export const invoiceDocumentsResponse = z.array(invoiceDocumentResponse);

export const invoiceStatusResponse = invoiceSummarySchema.extend({
  creditNotes: z.array(creditNoteIssuedResponse).describe('The CreditNoteIssued payloads against the invoice'),
  actions: z.array(
    z.object({
      kind: z.enum([...FINANCE_ACTION_TYPES, ...LIFECYCLE_ACTION_TYPES]),
      actor: z.string(),
      reason: z.string(),
      at: instant,
      eventId: z.string(),
      eventSequence: sequence,
    }),
  ),
});

export const evidenceResponse = z.object({
  invoiceId: z.string(),
  line: invoiceLineSchema,
  usage: z.array(
    z.object({
      usageId: z.string(),
      eventId: z.string(),
      eventSequence: sequence.describe('Stream sequence of its UsageRecorded'),
      sourceSequences: z.array(sequence).describe('Stream sequences of the events it was metered from'),
      projectId: z.string(),
      jobId: z.string().nullable(),
      subtaskId: z.string().nullable(),
      attempt: z.number().int().nullable(),
      leaseId: z.string().nullable(),
      gpuModel: z.string(),
      capacityType: z.string(),
      gpus: z.number().int().positive(),
      startAt: instant,
      endAt: instant,
      gpuMs: z.number().int().nonnegative(),
      interrupted: z.boolean(),
      pieces: z.array(z.object({ servicePeriod: z.string(), startAt: instant, endAt: instant })).describe('The pieces of it on this invoice'),
    }),
  ),
  slaCredits: z.array(z.object({ creditId: z.string(), eventId: z.string(), eventSequence: sequence, period: z.string(), percent: z.number().int() })),
  eventSequences: z.array(sequence).describe('Every stream sequence behind the line, ascending'),
});

export const whatIfResponse = z.object({
  invoiceId: z.string(),
  priceBook: z.object({ priceBookId: z.string(), version: z.number().int() }),
  currency: z.string(),
  lines: z.array(
    z.object({
      kind: z.string(),
      servicePeriod: z.string(),
      gpuModel: z.string().nullable(),
      capacityType: z.string().nullable(),
      tier: z.number().int().nullable(),
      reference: z.string().nullable(),
      currentAmount: amount,
      whatIfAmount: amount,
      difference: amount,
    }),
  ),
  total: z.object({ current: amount, whatIf: amount, difference: amount }),
  validationErrors: z.array(z.object({ usageId: z.string(), message: z.string() })).describe('Usage the chosen version has no price for'),
});

export const finalizeDueResponse = z.object({
  finalized: z.array(z.object({ invoiceId: z.string(), number: z.string() })),
  skipped: z.array(z.object({ invoiceId: z.string(), reason: z.string() })),
});

export const creditGrantResponse = eventCatalogue.CreditGranted.schema.describe('The CreditGranted payload recorded');
export const taxRatesResponse = eventCatalogue.TaxRatesSet.schema.describe('The TaxRatesSet payload recorded');

export const deletedDraftResponse = z.object({
  deletedInvoiceId: z.string(),
  usage: z.enum(['move', 'discard']),
  replacementInvoiceId: z.string().nullable().describe('The new draft its usage moved to (usage=move)'),
});

export const reissueResponse = z.object({
  voidedInvoiceId: z.string(),
  number: z.string().describe('The number of the voided invoice'),
  replacementInvoiceId: z.string().describe('The replacement draft; it takes the next number when finalized'),
});

/** Both ways assignable: neither side has a field, or a field type, the other lacks. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails the type-check (at its line) unless given `true`. */
type Assert<T extends true> = T;
type Returned<F> = F extends (...args: never[]) => infer R ? Awaited<R> : never;
type Invoices<K extends keyof InvoicesController> = Returned<InvoicesController[K]>;
type Out<S extends z.ZodType> = z.output<S>;
export type AnswersMatchSchemas = [
  Assert<Same<InvoiceDocument, Out<typeof invoiceDocumentResponse>>>,
  Assert<Same<Invoices<'finalize'>, Out<typeof invoiceDocumentResponse>>>,
  // Credit notes in the status are payloads read back as records; the schema gives their fields.
  Assert<Same<Omit<Invoices<'status'>, 'creditNotes'>, Omit<Out<typeof invoiceStatusResponse>, 'creditNotes'>>>,
  Assert<Same<Invoices<'evidence'>, Out<typeof evidenceResponse>>>,
  Assert<Same<Invoices<'whatIf'>, Out<typeof whatIfResponse>>>,
  Assert<Same<Invoices<'finalizeDue'>, Out<typeof finalizeDueResponse>>>,
  Assert<Same<Invoices<'pay'>, Out<typeof invoiceSummarySchema>>>,
  Assert<Same<Invoices<'void'>, Out<typeof invoiceSummarySchema>>>,
  Assert<Same<Invoices<'creditNote'>, Out<typeof creditNoteIssuedResponse>>>,
  Assert<Same<Returned<BillingAdminController['grant']>, Out<typeof creditGrantResponse>>>,
  Assert<Same<Returned<BillingAdminController['taxRates']>, Out<typeof taxRatesResponse>>>,
  Assert<Same<Returned<InvoiceLifecycleController['deleteDraft']>, Out<typeof deletedDraftResponse>>>,
  Assert<Same<Returned<InvoiceLifecycleController['reissue']>, Out<typeof reissueResponse>>>,
];
