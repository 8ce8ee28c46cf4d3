import { z } from 'zod';
import { multiLineText } from '@fastgpu/contracts';
import type { CreditNoteRequest } from './credit-note.decider';

/** Request shapes of the credit-note routes, validated at the edge (400 malformed, 422 unacceptable). */
const decimal = z.string().regex(/^\d+(\.\d+)?$/, 'must be a positive decimal string');
const reason = multiLineText(500).trim().min(1, 'a reason is required for every finance action');
/** Bound on the lines of one credit note (an invoice line is credited at most once per note). */
export const CREDIT_NOTE_LINES_MAX = 1000;

export const creditNoteLineRequest = z
  .object({
    /** The invoice line credited (its `line` number). */
    invoiceLine: z.number().int().positive(),
    /** GPU-hours credited at the line's unit price (at most 6 decimals). */
    quantityGpuHours: decimal.optional(),
    /** Or a net amount of the line. Neither: all that is left of the line. */
    amount: decimal.optional(),
  })
  .strict();

/** Lines of the invoice to credit, or a lump `amount` including tax (the whole invoice); a reason either way. */
export const creditNoteRequest = z
  .object({
    reason,
    lines: z.array(creditNoteLineRequest).min(1).max(CREDIT_NOTE_LINES_MAX).optional(),
    amount: decimal.optional(),
  })
  .strict()
  .refine((b) => (b.lines === undefined) !== (b.amount === undefined), { message: 'give either lines or an amount', path: ['lines'] });

export function creditNoteRequestOf(body: z.infer<typeof creditNoteRequest>): CreditNoteRequest {
  if (body.amount !== undefined) return { kind: 'amount', amount: body.amount };
  return {
    kind: 'lines',
    lines: body.lines!.map((l) => ({ invoiceLine: l.invoiceLine, ...(l.quantityGpuHours !== undefined ? { quantityGpuHours: l.quantityGpuHours } : {}), ...(l.amount !== undefined ? { amount: l.amount } : {}) })),
  };
}

