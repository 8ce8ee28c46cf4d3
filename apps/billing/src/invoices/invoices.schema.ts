import { z } from 'zod';
import { capacityTypeSchema, INCREMENT_MS_DEFAULT, MINIMUM_MS_DEFAULT, multiLineText, singleLineText, TIERS_MAX, tierModeSchema } from '@fastgpu/contracts';

/**
 * Request shapes of the billing API, validated at the edge (400 malformed, 422 unacceptable).
 * Every free-text field follows the shared storable-text rule (libs/contracts text.ts) with the
 * bounds of the event field it becomes, so nothing is published that a projection cannot store.
 */
const period = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be YYYY-MM');
const reason = multiLineText(500).trim().min(1, 'a reason is required for every finance action');
const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/);

export const finalizeRequest = z.object({ reason: reason.default('finalized by finance'), at: z.iso.datetime({ offset: false }).optional() }).strict();
export const finalizeDueRequest = z.object({ asOf: z.iso.datetime({ offset: false }).optional(), reason: reason.default('grace period after the billing period elapsed') }).strict();
export const payRequest = z.object({ reason, paymentReference: singleLineText(200).optional() }).strict();
export const voidRequest = z.object({ reason }).strict();
/** Deleting a draft: what happens to its usage — onto a new draft of the period (`move`) or nowhere (`discard`). */
export const deleteDraftRequest = z.object({ usage: z.enum(['move', 'discard']), reason }).strict();
export const reissueRequest = z.object({ reason }).strict();
/** Billing a review item of usage onto an open draft of its tenant. */
export const billReviewItemRequest = z.object({ invoiceId: id, reason }).strict();
export const dismissReviewItemRequest = z.object({ reason }).strict();
export const lateUsageQuery = z.object({ tenantId: id.optional() }).strict();
export const whatIfQuery = z.object({ priceBookId: id, version: z.coerce.number().int().positive() });
export const exportQuery = z.object({ period, tenantId: id.optional() });
export const creditGrantRequest = z
  .object({
    tenantId: id,
    amount: z.string().regex(/^\d+(\.\d+)?$/, 'must be a positive decimal string'),
    priority: z.number().int().min(0).max(1000).default(0),
    expiresAt: z.iso.datetime({ offset: false }).nullable().default(null),
    reason,
  })
  .strict();
export const taxRatesRequest = z
  .object({
    tenantId: id,
    rates: z.array(z.object({ name: singleLineText(64, 1), rate: z.string().regex(/^(0(\.\d+)?|1(\.0+)?)$/, 'must be a decimal fraction between 0 and 1') }).strict()).max(8),
    /** When the rates take effect (may be in the future): periods ending after it are taxed at them. Omitted: for invoices finalized from now on. */
    effectiveFrom: z.iso.datetime({ offset: false }).optional(),
    reason,
  })
  .strict();

const tier = z.object({ upToGpuHours: z.number().int().positive().nullable(), pricePerGpuHour: z.string().regex(/^\d+(\.\d+)?$/) }).strict();
export const publishPriceBookRequest = z
  .object({
    priceBookId: id,
    version: z.number().int().positive().optional(),
    currency: z.string().regex(/^[A-Z]{3}$/),
    effectiveFrom: z.iso.datetime({ offset: false }),
    prices: z
      .array(
        z
          .object({
            gpuModel: singleLineText(64, 1),
            capacityType: capacityTypeSchema,
            /** Optional for a tiered price: it is the first tier's. */
            pricePerGpuHour: z.string().regex(/^\d+(\.\d+)?$/, 'must be a decimal string').optional(),
            incrementMs: z.number().int().positive().default(INCREMENT_MS_DEFAULT),
            minimumMs: z.number().int().nonnegative().default(MINIMUM_MS_DEFAULT),
            tierMode: tierModeSchema.optional(),
            tiers: z.array(tier).min(1).max(TIERS_MAX).optional(),
          })
          .strict(),
      )
      .min(1)
      .max(1000),
  })
  .strict();
