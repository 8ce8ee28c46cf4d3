import { canonicalJson, sha256Hex } from '@fastgpu/contracts';
import { fixedUnits, fractionDigits, gpuHoursDisplay, type PrepaidGrant, type PriceVersion, type RatedLine, type RatedPart, type TaxRate, type UsagePiece } from '@fastgpu/money';

/**
 * The invoice document: its layout (the types below), the inputs it is built from, and the checks
 * and hash every document written or read back goes through. invoice-builder.ts builds it, one
 * pure function from the inputs to the document that JSON, CSV and PDF are all rendered from. Same
 * inputs, same bytes: a rebuild from the log reproduces every finalized invoice exactly, and its
 * SHA-256 is checked against the `InvoiceFinalized` event.
 */
export const DOCUMENT_SCHEMA = 'fastgpu.invoice/2';
/** The layout of invoices finalized before schema 2: rebuilt in it when their hash says so. */
export const DOCUMENT_SCHEMA_V1 = 'fastgpu.invoice/1';
/**
 * Layout 2 adds, per line, the tax allocated to it (`taxes`, `tax`) and, on adjustment lines, the
 * invoice they correct (`reference` = its id, `referenceNumber`); quantities have six fixed
 * decimals; untiered rated lines that round to zero at a non-zero price are left out.
 */
export type DocumentLayout = 1 | 2;

/** One rate's tax allocated to a line. */
export interface LineTax {
  name: string;
  rate: string;
  amount: string;
}

export type LineKind = RatedLine['kind'] | 'sla-credit' | 'carried-credit';

export interface InvoiceLine {
  line: number;
  kind: LineKind;
  description: string;
  servicePeriod: string;
  gpuModel: string | null;
  capacityType: string | null;
  priceBookId: string | null;
  priceBookVersion: number | null;
  tier: number | null;
  quantityGpuMs: number | null;
  quantityGpuHours: string | null;
  unitPrice: string | null;
  amount: string;
  taxable: boolean;
  /**
   * What the line refers to: the SLA credit id of a credit line; on an adjustment (layout 2), the
   * id of the finalized invoice of its service period that it corrects (null until known).
   */
  reference: string | null;
  /** Layout 2, adjustment lines: the number of the invoice in `reference`. */
  referenceNumber?: string | null;
  /** Layout 2: the invoice's tax of each rate allocated to this line (largest remainder). */
  taxes?: LineTax[];
  /** Layout 2: the sum of `taxes`. */
  tax?: string;
}

export interface InvoiceDocument {
  schema: typeof DOCUMENT_SCHEMA | typeof DOCUMENT_SCHEMA_V1;
  invoiceId: string;
  issuer: string;
  number: string | null;
  status: 'draft' | 'finalized';
  revision: number;
  tenant: { tenantId: string; name: string; billingTimeZone: string };
  currency: string;
  period: string;
  periodStart: string;
  periodEnd: string;
  cutoffSequence: number;
  finalizedAt: string | null;
  priceBooks: Array<{ priceBookId: string; version: number }>;
  lines: InvoiceLine[];
  subtotal: string;
  taxes: Array<{ name: string; rate: string; taxableAmount: string; amount: string }>;
  total: string;
  prepaidCredits: Array<{ grantId: string; amount: string }>;
  amountDue: string;
  validationErrors: Array<{ usageId: string; message: string }>;
  /**
   * Credits the tenant is still owed after this invoice (an SLA credit larger than what an invoice
   * charged), carried to its next invoices. Absent when there are none, so documents without
   * carried credits keep the bytes they had before this field existed.
   */
  creditsCarriedForward?: CarriedCredit[];
  /** Layout 2, a reissue's replacement: the void invoice it replaces (absent on every other invoice). */
  replaces?: { invoiceId: string; number: string | null };
  /**
   * Layout 2: the buyer, the tenant's billing profile in force at the cutoff. Absent when none was
   * set by then, so documents finalized before profiles existed keep their bytes.
   */
  buyer?: BuyerProfile;
}

/** The buyer a document names: a tenant's billing profile (`TenantBillingProfileSet`). */
export interface BuyerProfile {
  legalName: string;
  addressLines: string[];
  /** ISO 3166-1 alpha-2. */
  country: string;
  /** Absent when the buyer has none (or none was given). */
  taxId?: string;
}

/** Exactly the buyer fields of a `TenantBillingProfileSet` payload (nothing else reaches a document). */
export function buyerProfileOf(payload: { legalName: string; addressLines: readonly string[]; country: string; taxId?: string | null }): BuyerProfile {
  return { legalName: payload.legalName, addressLines: [...payload.addressLines], country: payload.country, ...(payload.taxId ? { taxId: payload.taxId } : {}) };
}

/** A credit, or what is left of it, carried forward to the tenant's next invoice. */
export interface CarriedCredit {
  /** The SLA credit id. */
  reference: string;
  /** The period the credit is for. */
  servicePeriod: string;
  /** The invoice the credit was first issued on (and its number, once finalized). */
  originInvoiceId: string;
  originNumber: string | null;
  /** What is left of the credit, positive, in the currency's minor digits. */
  amount: string;
}

export interface TenantInfo {
  tenantId: string;
  name: string;
  currency: string;
  billingTimeZone: string;
}

export interface SlaCreditInput {
  creditId: string;
  period: string;
  metric: string;
  measured: string;
  target: string;
  percent: number;
  /** Net charges for `period` already billed on finalized invoices (decimal string). */
  finalizedBase: string;
}

export interface InvoiceInputs {
  invoiceId: string;
  issuer: string;
  tenant: TenantInfo;
  period: string;
  revision: number;
  cutoffSequence: number;
  finalization: { number: string; finalizedAt: string } | null;
  pieces: readonly UsagePiece[];
  priceVersions: readonly PriceVersion[];
  /** Rate every piece under this one version instead of the timeline (what-if). */
  fixedVersion?: PriceVersion;
  priorQuantityGpuMs: ReadonlyMap<string, number>;
  slaCredits: readonly SlaCreditInput[];
  /** Credits carried forward to this invoice from the tenant's earlier finalized invoices. */
  carriedCredits?: readonly CarriedCredit[];
  taxRates: readonly TaxRate[];
  grants: readonly PrepaidGrant[];
  /** Parts already billed by libs/money (a period run's aggregates); when given, `pieces` is not rated. */
  preRated?: readonly RatedPart[];
  /** Instant at which taxes and grants are taken (the finalization time for a finalized invoice). */
  atMs: number;
  /**
   * The finalized invoice each service period's late usage corrects (the tenant's invoice of that
   * period), for the `reference` of adjustment lines. A period missing here leaves it null.
   */
  adjustmentReferences?: readonly AdjustmentReference[];
  /**
   * A reissue's replacement (the billing ledger's fact): the void invoice it replaces, for the
   * document to name. Absent on every other invoice.
   */
  replaces?: { invoiceId: string; number: string | null };
  /** The tenant's billing profile in force at the cutoff (the last one set up to it); absent when none. */
  buyer?: BuyerProfile;
}

/** The invoice an adjustment line corrects: the finalized invoice of its service period. */
export interface AdjustmentReference {
  servicePeriod: string;
  invoiceId: string;
  number: string | null;
}

export interface BuiltInvoice {
  document: InvoiceDocument;
  /** Usage ids rated by each line, by line index (0-based). */
  evidence: string[][];
  /** The highest price-book version used (for `InvoiceFinalized.priceBookVersion`). */
  priceBookVersion: number;
}

/** GPU-hours with exactly six decimals (libs/money rounds them, half up). */
export function quantityFixed(quantityGpuMs: number): string {
  const text = gpuHoursDisplay(quantityGpuMs);
  const dot = text.indexOf('.');
  return dot < 0 ? `${text}.000000` : text.padEnd(dot + 7, '0');
}

/**
 * Invariants checked on every document written or read back: the exports' sums hold exactly
 * (and, in layout 2, every rate's line taxes sum to that rate's tax).
 * Amounts are fixed-point strings, checked as exact integers at their finest scale.
 */
export function assertDocument(doc: InvoiceDocument): void {
  let scale = Math.max(fractionDigits(doc.subtotal), fractionDigits(doc.total), fractionDigits(doc.amountDue));
  for (const l of doc.lines) scale = Math.max(scale, fractionDigits(l.amount));
  for (const t of doc.taxes) scale = Math.max(scale, fractionDigits(t.amount));
  for (const p of doc.prepaidCredits) scale = Math.max(scale, fractionDigits(p.amount));
  const units = (text: string) => fixedUnits(text, scale);
  let subtotal = 0n;
  for (const l of doc.lines) subtotal += units(l.amount);
  if (subtotal !== units(doc.subtotal)) throw new Error(`invoice ${doc.invoiceId}: lines sum to ${subtotal} × 10^-${scale}, subtotal is ${doc.subtotal}`);
  let total = subtotal;
  for (const t of doc.taxes) total += units(t.amount);
  if (total !== units(doc.total)) throw new Error(`invoice ${doc.invoiceId}: subtotal + taxes = ${total} × 10^-${scale}, total is ${doc.total}`);
  let due = total;
  for (const p of doc.prepaidCredits) due -= units(p.amount);
  if (due !== units(doc.amountDue) || due < 0n) throw new Error(`invoice ${doc.invoiceId}: amount due ${doc.amountDue} does not follow from the total`);
  if (doc.schema !== DOCUMENT_SCHEMA) return;
  for (const [r, tax] of doc.taxes.entries()) {
    let allocated = 0n;
    for (const l of doc.lines) allocated += fixedUnits(l.taxes?.[r]?.amount ?? 'missing', scale);
    if (allocated !== units(tax.amount)) throw new Error(`invoice ${doc.invoiceId}: line taxes of ${tax.name} sum to ${allocated} × 10^-${scale}, the invoice says ${tax.amount}`);
  }
  for (const l of doc.lines) {
    let sum = 0n;
    for (const t of l.taxes ?? []) sum += fixedUnits(t.amount, scale);
    if (l.taxes?.length !== doc.taxes.length || sum !== fixedUnits(l.tax ?? 'missing', scale)) throw new Error(`invoice ${doc.invoiceId}: line ${l.line} tax ${l.tax} is not the sum of its rates`);
  }
}

/** Documents are written and hashed as canonical JSON (`@fastgpu/contracts`; re-exported for billing's modules). */
export { canonicalJson };

export function documentSha256(doc: InvoiceDocument): string {
  return sha256Hex(canonicalJson(doc));
}
