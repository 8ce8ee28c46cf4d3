import {
  allocateTaxToLines,
  carriedCreditSplit,
  compareCodeUnits,
  computeTotals,
  formatMinor,
  formatMoney,
  gpuHoursDisplay,
  money,
  periodBounds,
  PriceTimeline,
  rateParts,
  rateUsage,
  slaCreditSplit,
  sumMoney,
  toMinor,
  type Money,
  type PriceVersion,
  type RatedLine,
} from '@fastgpu/money';
import { assertDocument, buyerProfileOf, DOCUMENT_SCHEMA, DOCUMENT_SCHEMA_V1, documentSha256, quantityFixed, type AdjustmentReference, type BuiltInvoice, type CarriedCredit, type DocumentLayout, type InvoiceDocument, type InvoiceInputs, type InvoiceLine } from './invoice-document';

/**
 * Building an invoice document: one pure function from the billing inputs (usage pieces on the
 * invoice, price versions, credits, tax rates, grants) to the document that JSON, CSV and PDF are
 * all rendered from (its types are invoice-document.ts). Same inputs, same bytes: a rebuild from
 * the log reproduces every finalized invoice exactly, in the layout its SHA-256 was taken of.
 */
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
