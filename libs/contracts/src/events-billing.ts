import { z } from 'zod';
import { INCREMENT_MS_DEFAULT, MINIMUM_MS_DEFAULT, TIERS_MAX, tierModeSchema } from './pricing';
import { capacityTypeSchema, gpuModelText, id, instant, nonNegativeInt, periodSchema, positiveInt, type TextRule } from './events-fields';

/**
 * Billing's events: price books, invoices and finance actions on them, tenant billing settings,
 * period closes and review decisions. Built by events.ts with each text rule.
 */
export function billingEventSchemas(text: TextRule) {
  const gpuModel = gpuModelText(text);
  const decimalString = z.string().regex(/^\d+(\.\d+)?$/);
  const priceTierSchema = z.object({
    /** Upper bound of the tier in GPU-hours per billing period; null = unbounded (the last tier). */
    upToGpuHours: z.number().int().positive().nullable(),
    pricePerGpuHour: decimalString,
  });
  const priceSchema = z.object({
    gpuModel,
    capacityType: capacityTypeSchema,
    /** Decimal string, price per GPU-hour in the book's currency (the flat price, or the first tier's). */
    pricePerGpuHour: decimalString,
    /** Billing increment per allocation, default 1000 ms (per second, rounded up). */
    incrementMs: positiveInt.default(INCREMENT_MS_DEFAULT),
    /** Minimum billed duration per allocation, default 60 s. */
    minimumMs: nonNegativeInt.default(MINIMUM_MS_DEFAULT),
    /** Tiers reset every billing period: graduated prices each tier's part, volume prices all at the reached tier. */
    tierMode: tierModeSchema.optional(),
    tiers: z.array(priceTierSchema).min(1).max(TIERS_MAX).optional(),
  });
  const PriceBookPublished = z.object({
    priceBookId: id,
    version: positiveInt,
    currency: text.line(3, 3),
    effectiveFrom: instant,
    prices: z.array(priceSchema).min(1).max(1000),
    publishedBy: id,
    publishedAt: instant,
  });
  const InvoiceFinalized = z.object({
    invoiceId: id,
    tenantId: id,
    period: periodSchema,
    number: text.line(64),
    total: text.line(),
    currency: text.line(3, 3),
    cutoffSequence: nonNegativeInt,
    priceBookVersion: positiveInt,
    sha256: text.line(64, 64),
    actor: id,
    reason: text.lines(500),
    finalizedAt: instant,
  });

  /** Finance actions: audited (actor and reason), each an event on the invoice's or tenant's subject. */
  const audit = { actor: id, reason: text.lines(500, 1) };
  const InvoicePaid = z.object({ invoiceId: id, tenantId: id, amount: decimalString, currency: text.line(3, 3), paymentReference: text.line(200).optional(), paidAt: instant, ...audit });
  const InvoiceVoided = z.object({ invoiceId: id, tenantId: id, number: text.line(64), voidedAt: instant, ...audit });
  /** One rate's tax on a credit note or one of its lines (positive: what is credited). */
  const creditNoteTaxSchema = z.object({ name: text.line(64, 1), rate: z.string().regex(/^(0(\.\d+)?|1(\.0+)?)$/), amount: decimalString });
  /** A credit-note line: what it credits of one invoice line (or of the whole invoice when `invoiceLine` is null). */
  const creditNoteLineSchema = z.object({
    line: positiveInt,
    invoiceLine: positiveInt.nullable(),
    description: text.line(300, 1),
    servicePeriod: periodSchema.nullable(),
    quantityGpuHours: decimalString.nullable(),
    unitPrice: decimalString.nullable(),
    net: decimalString,
    taxes: z.array(creditNoteTaxSchema).max(8),
    total: decimalString,
  });
  /**
   * `amount` is the credit note's total (net + taxes). The optional fields were added for credit
   * notes as documents: without them (notes issued before), a note is one amount without a split.
   */
  const CreditNoteIssued = z.object({
    creditNoteId: id,
    invoiceId: id,
    tenantId: id,
    number: text.line(64),
    amount: decimalString,
    currency: text.line(3, 3),
    issuedAt: instant,
    ...audit,
    invoiceNumber: text.line(64).optional(),
    lines: z.array(creditNoteLineSchema).min(1).max(1000).optional(),
    net: decimalString.optional(),
    taxes: z.array(creditNoteTaxSchema).max(8).optional(),
    /** SHA-256 of the request it answers, for the Idempotency-Key rule (same key, other request: 409). */
    requestSha256: text.line(64, 64).optional(),
  });
  const CreditGranted = z.object({
    grantId: id,
    tenantId: id,
    amount: decimalString,
    currency: text.line(3, 3),
    /** Higher is used first. */
    priority: z.number().int().min(0).max(1000),
    expiresAt: instant.nullable(),
    grantedAt: instant,
    ...audit,
  });
  const TaxRatesSet = z.object({
    tenantId: id,
    rates: z.array(z.object({ name: text.line(64, 1), rate: z.string().regex(/^(0(\.\d+)?|1(\.0+)?)$/) })).max(8),
    /** When the rates were set. Without `effectiveFrom`, they apply to invoices finalized from then on. */
    effectiveAt: instant,
    /**
     * Optional: the instant the rates take effect (may be in the future). An invoice is taxed at the
     * rates in force at the end of its billing period (the last instant of the period).
     */
    effectiveFrom: instant.optional(),
    ...audit,
  });

  /**
   * Invoice lifecycle (docs/billing.md). A period close cuts the tenant's running allocations at
   * the period's end onto its invoices (accrual); a draft deletion uses no number and moves its
   * usage to a new draft or discards it; a reissue replaces a void invoice by a new draft; late
   * usage in the review queue is billed onto an open invoice or dismissed.
   */
  const BillingPeriodClosed = z.object({ tenantId: id, period: periodSchema, closedAt: instant, ...audit });
  const InvoiceDraftDeleted = z.object({ invoiceId: id, tenantId: id, period: periodSchema, usage: z.enum(['move', 'discard']), replacementInvoiceId: id.optional(), deletedAt: instant, ...audit });
  const InvoiceReissued = z.object({ invoiceId: id, tenantId: id, period: periodSchema, number: text.line(64), replacementInvoiceId: id, reissuedAt: instant, ...audit });
  const reviewItem = { tenantId: id, usageEventId: id, piece: nonNegativeInt };
  const LateUsageBilled = z.object({ ...reviewItem, invoiceId: id, billedAt: instant, ...audit });
  const LateUsageDismissed = z.object({ ...reviewItem, dismissedAt: instant, ...audit });
  /**
   * A tenant's billing profile, set by finance: the buyer invoices and credit notes print. The last
   * one up to an invoice's cutoff is the one its document holds (docs/billing.md, "Buyer details").
   */
  const TenantBillingProfileSet = z.object({
    tenantId: id,
    legalName: text.line(200, 1),
    addressLines: z.array(text.line(200, 1)).min(1).max(6),
    /** ISO 3166-1 alpha-2 (checked at the edge, as currencies are). */
    country: text.line(2, 2),
    taxId: text.line(64, 1).optional(),
    setAt: instant,
    ...audit,
  });
  return {
    priceTierSchema,
    priceSchema,
    PriceBookPublished,
    InvoiceFinalized,
    InvoicePaid,
    InvoiceVoided,
    CreditNoteIssued,
    CreditGranted,
    TaxRatesSet,
    BillingPeriodClosed,
    InvoiceDraftDeleted,
    InvoiceReissued,
    LateUsageBilled,
    LateUsageDismissed,
    TenantBillingProfileSet,
  };
}
