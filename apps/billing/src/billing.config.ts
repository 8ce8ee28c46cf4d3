import { z } from 'zod';
import { HOUR_MS, multiLineText, singleLineText } from '@fastgpu/contracts';

/** Billing's own settings, from the environment (validated once) or given by tests. */
const schema = z.object({
  /** Issuer prefix of invoice numbers (gapless per issuer): `<issuer>-000001`. */
  issuer: z.string().regex(/^[A-Z][A-Z0-9]{1,15}$/).default('FGPU'),
  /** Grace after the end of a period before its drafts are finalized automatically. */
  graceMs: z.coerce.number().int().nonnegative().default(72 * HOUR_MS),
  /** How often the automatic finalizer runs (0 = never; finance can still call finalize-due). */
  autoFinalizeIntervalMs: z.coerce.number().int().nonnegative().default(60_000),
  /** The seller printed on invoice and credit-note PDFs (rendering only: documents and hashes do not hold it). */
  seller: z
    .object({
      name: singleLineText(200, 1).default('FastGPU'),
      /** Postal address, one line per line of the address. */
      address: multiLineText(500).default(''),
      taxId: singleLineText(64).default(''),
      email: singleLineText(200).default(''),
    })
    .default({ name: 'FastGPU', address: '', taxId: '', email: '' }),
  /** Days after the issue date an invoice is due (printed as payment terms). */
  paymentTermsDays: z.coerce.number().int().min(0).max(365).default(30),
  /** Webhook delivery: exponential backoff from `retryBaseMs` (doubling, capped), at most `attemptsMax` automatic attempts. */
  webhooks: z
    .object({
      retryBaseMs: z.coerce.number().int().positive().default(5_000),
      retryMaxMs: z.coerce.number().int().positive().default(10 * HOUR_MS),
      attemptsMax: z.coerce.number().int().min(1).max(20).default(8),
      pollIntervalMs: z.coerce.number().int().positive().default(1_000),
      timeoutMs: z.coerce.number().int().positive().default(10_000),
    })
    .default({ retryBaseMs: 5_000, retryMaxMs: 10 * HOUR_MS, attemptsMax: 8, pollIntervalMs: 1_000, timeoutMs: 10_000 }),
});
export type BillingOptions = z.infer<typeof schema>;

export function billingOptions(overrides: Partial<BillingOptions> = {}, env: NodeJS.ProcessEnv = process.env): BillingOptions {
  const graceHours = env.FASTGPU_BILLING_GRACE_HOURS;
  return schema.parse({
    issuer: env.FASTGPU_BILLING_ISSUER || undefined,
    graceMs: graceHours ? Number(graceHours) * HOUR_MS : undefined,
    autoFinalizeIntervalMs: env.FASTGPU_BILLING_AUTO_FINALIZE_INTERVAL_MS || undefined,
    seller: {
      name: env.FASTGPU_BILLING_SELLER_NAME || undefined,
      // One variable, lines separated by "|" (environment values are single lines).
      address: env.FASTGPU_BILLING_SELLER_ADDRESS?.split('|').map((part) => part.trim()).join('\n') || undefined,
      taxId: env.FASTGPU_BILLING_SELLER_TAX_ID || undefined,
      email: env.FASTGPU_BILLING_SELLER_EMAIL || undefined,
    },
    paymentTermsDays: env.FASTGPU_BILLING_PAYMENT_TERMS_DAYS || undefined,
    webhooks: {
      retryBaseMs: env.FASTGPU_BILLING_WEBHOOK_RETRY_BASE_MS || undefined,
      retryMaxMs: env.FASTGPU_BILLING_WEBHOOK_RETRY_MAX_MS || undefined,
      attemptsMax: env.FASTGPU_BILLING_WEBHOOK_ATTEMPTS_MAX || undefined,
      pollIntervalMs: env.FASTGPU_BILLING_WEBHOOK_POLL_INTERVAL_MS || undefined,
      timeoutMs: env.FASTGPU_BILLING_WEBHOOK_TIMEOUT_MS || undefined,
    },
    ...overrides,
  });
}

export const BILLING_OPTIONS = Symbol('BillingOptions');
