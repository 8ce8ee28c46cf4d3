import { z } from 'zod';
import { requestIdSchema, roleSchema, singleLineText } from '@fastgpu/contracts';
import { minorUnits } from '@fastgpu/money';

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function isCurrency(code: string): boolean {
  try {
    minorUnits(code);
    return true;
  } catch {
    return false;
  }
}

export const createTenantRequest = z.strictObject({
  tenantId: requestIdSchema.optional(),
  name: singleLineText(200, 1),
  billingTimeZone: singleLineText(64, 1).default('UTC').refine(isTimeZone, 'must be an IANA time zone such as Europe/Berlin'),
  currency: singleLineText(3, 3).default('USD').refine(isCurrency, 'must be a supported ISO 4217 currency (USD, EUR, GBP, JPY, KWD, …)'),
});
export type CreateTenantRequest = z.infer<typeof createTenantRequest>;

export const tenantResponse = z.object({ tenantId: z.string(), name: z.string(), billingTimeZone: z.string(), currency: z.string(), createdAt: z.string() });

export const issueKeyRequest = z.strictObject({
  role: roleSchema.default('tenant'),
  label: singleLineText(200).optional(),
});

export const issuedKeyResponse = z.object({
  keyId: z.string(),
  role: z.string(),
  tenantId: z.string().nullable(),
  /** The secret: shown once, stored only as a hash. */
  secret: z.string(),
});
