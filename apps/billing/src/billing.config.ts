import { z } from 'zod';

/** Billing's own settings, from the environment (validated once) or given by tests. */
const schema = z.object({
  /** Issuer prefix of invoice numbers (gapless per issuer): `<issuer>-000001`. */
  issuer: z.string().regex(/^[A-Z][A-Z0-9]{1,15}$/).default('FGPU'),
  /** Grace after the end of a period before its drafts are finalized automatically. */
  graceMs: z.coerce.number().int().nonnegative().default(72 * 3_600_000),
  /** How often the automatic finalizer runs (0 = never; finance can still call finalize-due). */
  autoFinalizeIntervalMs: z.coerce.number().int().nonnegative().default(60_000),
});
export type BillingOptions = z.infer<typeof schema>;

export function billingOptions(overrides: Partial<BillingOptions> = {}, env: NodeJS.ProcessEnv = process.env): BillingOptions {
  const graceHours = env.FASTGPU_BILLING_GRACE_HOURS;
  return schema.parse({
    issuer: env.FASTGPU_BILLING_ISSUER || undefined,
    graceMs: graceHours ? Number(graceHours) * 3_600_000 : undefined,
    autoFinalizeIntervalMs: env.FASTGPU_BILLING_AUTO_FINALIZE_INTERVAL_MS || undefined,
    ...overrides,
  });
}

export const BILLING_OPTIONS = Symbol('BillingOptions');
