import { z } from 'zod';
import { multiLineText, singleLineText } from '@fastgpu/contracts';

/**
 * A tenant's billing profile (the buyer its invoices and credit notes print), set by finance with
 * `PUT /v1/billing/tenants/{tenantId}/profile`. Every text field follows the shared storable-text
 * rule (libs/contracts text.ts) with the bounds of the `TenantBillingProfileSet` field it becomes,
 * so nothing is published that a projection cannot store.
 */
/** Address lines a profile holds at most (the event's bound). */
export const ADDRESS_LINES_MAX = 6;
const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/);
const COUNTRY_CODE = /^[A-Z]{2}$/;
// Built on first use: Intl's region names page in ICU data an idle billing process does not need (docs/benchmarks.md, service-rss).
let regions: Intl.DisplayNames | undefined;

/** Whether a two-capital code names a region Intl knows (it throws on malformed codes, which the regex refuses first). */
function knownCountry(code: string): boolean {
  if (!COUNTRY_CODE.test(code)) return true;
  try {
    return (regions ??= new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' })).of(code) !== undefined;
  } catch {
    return false;
  }
}

export const billingProfileParams = z.object({ tenantId: id }).strict();

export const billingProfileRequest = z
  .object({
    legalName: singleLineText(200, 1).describe("The buyer's registered legal name"),
    addressLines: z.array(singleLineText(200, 1)).min(1).max(ADDRESS_LINES_MAX).describe('Postal address, one line each (street, postcode and city, …), without the country'),
    country: z
      .string()
      .regex(COUNTRY_CODE, 'must be an ISO 3166-1 alpha-2 code in capitals, e.g. DE')
      .refine(knownCountry, 'is not a known ISO 3166-1 alpha-2 country code')
      .describe('ISO 3166-1 alpha-2'),
    taxId: singleLineText(64, 1).optional().describe('VAT number or other tax id, when the buyer has one'),
    reason: multiLineText(500).trim().min(1, 'a reason is required for every finance action'),
  })
  .strict();
export type BillingProfileRequest = z.infer<typeof billingProfileRequest>;

export const billingProfileResponse = z.object({
  tenantId: z.string(),
  legalName: z.string(),
  addressLines: z.array(z.string()),
  country: z.string(),
  taxId: z.string().nullable(),
  setAt: z.string().describe('When finance set it'),
  actor: z.string(),
  reason: z.string(),
  eventId: z.string().describe('The TenantBillingProfileSet event'),
  eventSequence: z.number().int(),
});
export type BillingProfileResponse = z.infer<typeof billingProfileResponse>;
