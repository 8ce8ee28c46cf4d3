import { canonicalJson, sha256Hex } from '@fastgpu/contracts';
import {
  computeTotals,
  fixedUnits,
  formatMinor,
  formatMoney,
  fractionDigits,
  compareCodeUnits,
  gpuHoursDisplay,
  money,
  periodBounds,
  PriceTimeline,
  rateParts,
  rateUsage,
  carriedCreditSplit,
  slaCreditSplit,
  sumMoney,
  toMinor,
  allocateTaxToLines,
  type Money,
  type PrepaidGrant,
  type PriceVersion,
  type RatedLine,
  type RatedPart,
  type TaxRate,
  type UsagePiece,
} from '@fastgpu/money';

/**
 * The invoice document: one pure function from the billing inputs (usage pieces on the
 * invoice, price versions, credits, tax rates, grants) to the document that JSON, CSV and PDF
 * are all rendered from. Same inputs, same bytes: a rebuild from the log reproduces every
 * finalized invoice exactly, and its SHA-256 is checked against the `InvoiceFinalized` event.
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

const CAPACITY_LABEL: Record<string, string> = { 'on-demand': 'on-demand', preemptible: 'preemptible', reserved: 'reserved' };

function describe(line: RatedLine): string {
  const what = `${line.gpuModel.toUpperCase()} ${CAPACITY_LABEL[line.capacityType] ?? line.capacityType} GPU time`;
  const price = `${line.priceBookId} v${line.priceBookVersion}${line.tier === null ? '' : `, tier ${line.tier}`}`;
  switch (line.kind) {
    case 'usage':
      return `${what} (${price})`;
    case 'adjustment':
      return `Late usage for ${line.servicePeriod}: ${what} (${price})`;
    case 'interruption-credit':
      return `Interruption credit: ${what} (${price})`;
    default: {
      const unreachable: never = line.kind;
      throw new Error(`unknown line kind ${String(unreachable)}`);
    }
  }
}

/** A period run hands every invoice the same versions array: build its timeline once per currency. */
const timelines = new WeakMap<readonly PriceVersion[], Map<string, PriceTimeline>>();
function timelineFor(versions: readonly PriceVersion[], currency: string): PriceTimeline {
  let byCurrency = timelines.get(versions);
  if (!byCurrency) timelines.set(versions, (byCurrency = new Map()));
  let timeline = byCurrency.get(currency);
  if (!timeline) byCurrency.set(currency, (timeline = new PriceTimeline(versions.filter((v) => v.currency === currency))));
  return timeline;
}

/**
 * Which interruptions are credited back. Layout 2: only those of capacity that is not preemptible —
 * preemptible (spot) capacity is billed up to its preemption and not credited, as preemption is
 * its contract (docs/billing.md, "Interruptions and preemption"). Layout 1 credited every one.
 */
function creditedInterruptions<T extends { interrupted: boolean; capacityType: string }>(items: readonly T[], layout: DocumentLayout): readonly T[] {
  if (layout === 1) return items;
  return items.map((item) => (item.interrupted && item.capacityType === 'preemptible' ? { ...item, interrupted: false } : item));
}

export function buildInvoice(inputs: InvoiceInputs, layout: DocumentLayout = 2): BuiltInvoice {
  const { tenant } = inputs;
  const currency = tenant.currency;
  const timeline = inputs.fixedVersion ? PriceTimeline.fixed(inputs.fixedVersion) : timelineFor(inputs.priceVersions, currency);
  const rated = inputs.preRated
    ? { lines: rateParts(creditedInterruptions(inputs.preRated, layout), currency, { priorQuantityGpuMs: inputs.priorQuantityGpuMs }), errors: [] }
    : rateUsage(creditedInterruptions(inputs.pieces, layout), timeline, currency, { priorQuantityGpuMs: inputs.priorQuantityGpuMs });
  const references = new Map<string, AdjustmentReference>();
  for (const reference of layout === 2 ? (inputs.adjustmentReferences ?? []) : []) references.set(reference.servicePeriod, reference);

  const lines: InvoiceLine[] = [];
  const lineAmountsMinor: bigint[] = [];
  const evidence: string[][] = [];
  for (const r of rated.lines) {
    // Layout 2 leaves out what bills nothing by rounding (a price of zero on purpose stays shown);
    // a tier step stays, as its GPU time moves the tier position of later usage.
    if (layout === 2 && r.amountMinor === 0n && r.tier === null && !isZeroPrice(r.unitPricePerGpuHour)) continue;
    const corrects = r.kind === 'adjustment' ? references.get(r.servicePeriod) : undefined;
    lines.push({
      line: lines.length + 1,
      kind: r.kind,
      description: describe(r),
      servicePeriod: r.servicePeriod,
      gpuModel: r.gpuModel,
      capacityType: r.capacityType,
      priceBookId: r.priceBookId,
      priceBookVersion: r.priceBookVersion,
      tier: r.tier,
      quantityGpuMs: r.quantityGpuMs,
      quantityGpuHours: layout === 2 ? quantityFixed(r.quantityGpuMs) : gpuHoursDisplay(r.quantityGpuMs),
      unitPrice: r.unitPricePerGpuHour,
      amount: formatMinor(r.amountMinor, currency),
      taxable: true,
      reference: corrects?.invoiceId ?? null,
      ...(layout === 2 && r.kind === 'adjustment' ? { referenceNumber: corrects?.number ?? null } : {}),
    });
    lineAmountsMinor.push(r.amountMinor);
    evidence.push(r.usageIds);
  }

  // SLA credits: a percentage of the period's net charges, as their own lines, never more than is
  // left; the rest carries forward. Then credits carried from earlier invoices, oldest first, as far
  // as this invoice still charges.
  const carriedIn = inputs.carriedCredits ?? [];
  let running = inputs.slaCredits.length || carriedIn.length ? sumMoney(rated.lines.map((l) => l.amount)) : money('0');
  /** A credit line (its amount negative or zero); its evidence is its reference, not usage. */
  const pushCreditLine = (kind: 'sla-credit' | 'carried-credit', description: string, servicePeriod: string, amount: Money, reference: string) => {
    lines.push({ line: lines.length + 1, kind, description, servicePeriod, gpuModel: null, capacityType: null, priceBookId: null, priceBookVersion: null, tier: null, quantityGpuMs: null, quantityGpuHours: null, unitPrice: null, amount: formatMoney(amount, currency), taxable: true, reference });
    lineAmountsMinor.push(toMinor(amount, currency));
    evidence.push([]);
  };
  const carriedForward: CarriedCredit[] = [];
  for (const credit of [...inputs.slaCredits].sort((a, b) => compareCodeUnits(a.period, b.period) || compareCodeUnits(a.creditId, b.creditId))) {
    const base = money(credit.finalizedBase).plus(sumMoney(rated.lines.filter((l) => l.servicePeriod === credit.period).map((l) => l.amount)));
    const { applied: amount, carried } = slaCreditSplit(base, credit.percent, currency, running);
    running = running.plus(amount);
    if (carried.gt(0)) {
      carriedForward.push({ reference: credit.creditId, servicePeriod: credit.period, originInvoiceId: inputs.invoiceId, originNumber: inputs.finalization?.number ?? null, amount: formatMoney(carried, currency) });
    }
    pushCreditLine('sla-credit', `SLA credit for ${credit.period}: ${credit.metric} ${credit.measured} below ${credit.target} (${credit.percent}%)`, credit.period, amount, credit.creditId);
  }
  for (const credit of [...carriedIn].sort((a, b) => compareCodeUnits(a.servicePeriod, b.servicePeriod) || compareCodeUnits(a.reference, b.reference))) {
    const { applied, carried } = carriedCreditSplit(money(credit.amount), running);
    if (carried.gt(0)) carriedForward.push({ ...credit, amount: formatMoney(carried, currency) });
    if (applied.isZero()) continue;
    running = running.plus(applied);
    pushCreditLine('carried-credit', `SLA credit for ${credit.servicePeriod} carried forward from invoice ${credit.originNumber ?? credit.originInvoiceId} (${credit.reference})`, credit.servicePeriod, applied, credit.reference);
  }

  const totals = computeTotals(
    lines.map((l, i) => ({ amountMinor: lineAmountsMinor[i]!, taxable: l.taxable })),
    inputs.taxRates,
    inputs.grants,
    inputs.atMs,
    currency,
  );
  const usedVersions = new Map<string, { priceBookId: string; version: number }>();
  for (const r of rated.lines) usedVersions.set(`${r.priceBookId}\u0000${r.priceBookVersion}`, { priceBookId: r.priceBookId, version: r.priceBookVersion });
  const priceBooks = [...usedVersions.values()].sort((a, b) => compareCodeUnits(a.priceBookId, b.priceBookId) || a.version - b.version);
  const bounds = periodBounds(inputs.period, tenant.billingTimeZone);
  const fallbackVersion = timeline.versionAt(bounds.endMs - 1)?.version ?? 1;

  if (layout === 2) {
    const allocated = allocateTaxToLines(
      lines.map((l, i) => ({ amountMinor: lineAmountsMinor[i]!, taxable: l.taxable })),
      totals.taxes,
    );
    for (const [i, line] of lines.entries()) {
      const taxes = allocated[i]!;
      line.taxes = taxes.map((t) => ({ name: t.name, rate: t.rate, amount: formatMinor(t.amountMinor, currency) }));
      line.tax = formatMinor(
        taxes.reduce((sum, t) => sum + t.amountMinor, 0n),
        currency,
      );
    }
  }
  const document: InvoiceDocument = {
    schema: layout === 2 ? DOCUMENT_SCHEMA : DOCUMENT_SCHEMA_V1,
    invoiceId: inputs.invoiceId,
    issuer: inputs.issuer,
    number: inputs.finalization?.number ?? null,
    status: inputs.finalization ? 'finalized' : 'draft',
    revision: inputs.revision,
    tenant: { tenantId: tenant.tenantId, name: tenant.name, billingTimeZone: tenant.billingTimeZone },
    currency,
    period: inputs.period,
    periodStart: new Date(bounds.startMs).toISOString(),
    periodEnd: new Date(bounds.endMs).toISOString(),
    cutoffSequence: inputs.cutoffSequence,
    finalizedAt: inputs.finalization?.finalizedAt ?? null,
    priceBooks,
    lines,
    subtotal: totals.formatted.subtotal,
    taxes: totals.taxes.map((t) => ({ name: t.name, rate: t.rate, taxableAmount: formatMoney(t.taxableAmount, currency), amount: formatMinor(t.amountMinor, currency) })),
    total: totals.formatted.total,
    prepaidCredits: totals.prepaid.map((p) => ({ grantId: p.grantId, amount: formatMoney(p.amount, currency) })),
    amountDue: totals.formatted.amountDue,
    validationErrors: rated.errors.map((e) => ({ usageId: e.usageId, message: e.message })),
    ...(carriedForward.length ? { creditsCarriedForward: carriedForward } : {}),
    ...(layout === 2 && inputs.replaces ? { replaces: inputs.replaces } : {}),
    ...(layout === 2 && inputs.buyer ? { buyer: buyerProfileOf(inputs.buyer) } : {}),
  };
  assertDocument(document);
  return { document, evidence, priceBookVersion: priceBooks.reduce((max, p) => Math.max(max, p.version), 0) || fallbackVersion };
}

/**
 * A finalized invoice rebuilt in the layout its recorded SHA-256 was taken of: layout 2, or layout 1
 * for invoices finalized before layout 2 existed. A layout-2 invoice finalized without the buyer its
 * cutoff holds (by a billing process that did not know billing profiles yet, during an upgrade)
 * rebuilds without it. When none matches, the layout-2 build is returned and the caller's hash
 * check fails on it.
 */
export function buildFinalizedInvoice(inputs: InvoiceInputs, sha256: string): BuiltInvoice {
  const built = buildInvoice(inputs, 2);
  if (documentSha256(built.document) === sha256) return built;
  const { buyer, ...withoutBuyer } = inputs;
  if (buyer) {
    const unnamed = buildInvoice(withoutBuyer, 2);
    if (documentSha256(unnamed.document) === sha256) return unnamed;
  }
  const legacy = buildInvoice(withoutBuyer, 1);
  return documentSha256(legacy.document) === sha256 ? legacy : built;
}

function isZeroPrice(price: string): boolean {
  return /^0*(\.0*)?$/.test(price);
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
