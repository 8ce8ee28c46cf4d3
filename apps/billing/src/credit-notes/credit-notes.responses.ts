import { z } from 'zod';
import { eventCatalogue } from '@fastgpu/contracts';
import { CREDIT_NOTE_SCHEMA, type CreditNoteDocument } from './credit-note-document';
import type { CreditNoteData } from './credit-note.decider';

/**
 * Credit notes as the routes answer them, as the zod schemas the OpenAPI document shows: the
 * document (`CreditNoteDocument`, what JSON, CSV and PDF render) and the issued note (the
 * `CreditNoteIssued` payload of libs/contracts). The type-check holds them equal.
 */
const amount = z.string().describe("Decimal string in the currency's minor digits");
const tax = z.object({ name: z.string(), rate: z.string().describe('Decimal fraction, e.g. 0.19'), amount });

/** The buyer a document names (the tenant's billing profile in force at the invoice's cutoff); absent when none was set. */
export const buyerSchema = z.object({ legalName: z.string(), addressLines: z.array(z.string()), country: z.string().describe('ISO 3166-1 alpha-2'), taxId: z.string().optional() });

export const creditNoteDocumentResponse = z.object({
  schema: z.literal(CREDIT_NOTE_SCHEMA),
  creditNoteId: z.string(),
  number: z.string().describe('CN-<issuer>-NNNNNN'),
  invoiceId: z.string(),
  invoiceNumber: z.string().nullable(),
  tenant: z.object({ tenantId: z.string(), name: z.string(), billingTimeZone: z.string() }),
  currency: z.string(),
  issuedAt: z.string(),
  actor: z.string(),
  reason: z.string(),
  split: z.boolean().describe('False for a note issued before credit notes had lines: its total is not split into net and tax'),
  lines: z.array(
    z.object({
      line: z.number().int().positive(),
      invoiceLine: z.number().int().positive().nullable().describe('The invoice line it credits; null for a credit on the whole invoice'),
      description: z.string(),
      servicePeriod: z.string().nullable(),
      quantityGpuHours: z.string().nullable(),
      unitPrice: z.string().nullable(),
      net: amount,
      taxes: z.array(tax),
      tax: amount,
      total: amount,
    }),
  ),
  net: amount,
  taxes: z.array(tax),
  total: amount,
  buyer: buyerSchema.optional(),
});

export const creditNoteDocumentsResponse = z.object({ creditNotes: z.array(creditNoteDocumentResponse) });

/** An issued credit note: its `CreditNoteIssued` payload. */
export const creditNoteIssuedResponse = eventCatalogue.CreditNoteIssued.schema;

/** Both ways assignable: neither side has a field, or a field type, the other lacks. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails the type-check (at its line) unless given `true`. */
type Assert<T extends true> = T;
export type AnswersMatchSchemas = [Assert<Same<CreditNoteDocument, z.output<typeof creditNoteDocumentResponse>>>, Assert<Same<CreditNoteData, z.output<typeof creditNoteIssuedResponse>>>];
