import { money, periodIndex, scopeKey, sumMoney, type PrepaidGrant, type PriceVersion, type RatedPart, type TaxRate, type UsagePiece } from '@fastgpu/money';
import type { AdjustmentReference, BuyerProfile, CarriedCredit, InvoiceDocument, InvoiceInputs, SlaCreditInput, TenantInfo } from '../invoices/invoice-document';
import type { InvoiceRow, PieceRow, SlaCreditRow } from './billing-tables';

/**
 * The inputs of `buildInvoice`, assembled purely from the rows of one invoice however they were
 * loaded (one invoice by `BillingStore.inputs`, many by a period run, period-run.ts): its pieces
 * (or parts summed in SQL), credits, the finalized documents of its tenant up to the cutoff (tier
 * positions, SLA credit bases, carried credits, adjustment references), prices, taxes and grants.
 */
export interface InputOptions {
  cutoff: number;
  atMs: number;
  issuer: string;
  finalization: { number: string; finalizedAt: string } | null;
}

/** What one invoice's inputs are assembled from, however it was loaded. */
export interface RawInvoiceData {
  row: InvoiceRow;
  tenant: TenantInfo;
  pieces: readonly PieceRow[];
  /** Parts summed by a period run, instead of pieces (see piecesOrAggregates). */
  preRated?: readonly RatedPart[];
  pieceCount?: number;
  finalized: readonly InvoiceDocument[];
  slaCredits: readonly SlaCreditRow[];
  priceVersions: readonly PriceVersion[];
  taxRates: readonly TaxRate[];
  grants: readonly PrepaidGrant[];
  /** A reissue's replacement: the void invoice it replaces. */
  replaces?: { invoiceId: string; number: string | null };
  /** The tenant's billing profile in force at the cutoff. */
  buyer?: BuyerProfile;
}

/** A stored piece as libs/money rates it; `adjustment` marks late usage of an earlier period. */
export function usagePieceOf(p: PieceRow, adjustment: boolean): UsagePiece {
  return {
    usageId: p.usage_id,
    gpus: p.gpus,
    gpuModel: p.gpu_model,
    capacityType: p.capacity_type,
    startMs: p.start_ms,
    endMs: p.end_ms,
    allocationStartMs: p.allocation_start_ms,
    allocationEndMs: p.allocation_end_ms,
    interrupted: p.interrupted,
    servicePeriod: p.service_period,
    adjustment,
  };
}

/**
 * The invoice each adjustment (late usage of an earlier period) corrects: the tenant's invoice of
 * that service period finalized last up to this invoice's cutoff (a reissue replaces a void one),
 * with its number. These are facts of the ledger at the cutoff, so a rebuild finds the same.
 */
export function adjustmentReferencesOf(row: InvoiceRow, raw: Pick<RawInvoiceData, 'pieces' | 'preRated' | 'finalized'>): AdjustmentReference[] {
  const periods = new Set<string>();
  for (const p of raw.pieces) if (p.service_period !== row.period) periods.add(p.service_period);
  for (const p of raw.preRated ?? []) if (p.servicePeriod !== row.period) periods.add(p.servicePeriod);
  const references: AdjustmentReference[] = [];
  for (const servicePeriod of [...periods].sort()) {
    const original = raw.finalized.filter((doc) => doc.period === servicePeriod && doc.invoiceId !== row.invoice_id).at(-1);
    if (original) references.push({ servicePeriod, invoiceId: original.invoiceId, number: original.number });
  }
  return references;
}

/** Pure: raw rows of one invoice → the inputs of `buildInvoice`. */
export function assembleInputs(raw: RawInvoiceData, options: InputOptions): InvoiceInputs {
  const { row } = raw;
  const pieces: UsagePiece[] = raw.pieces.map((p) => usagePieceOf(p, p.service_period !== row.period));
  const priorQuantityGpuMs = new Map<string, number>();
  const finalizedBase = new Map<string, ReturnType<typeof money>>();
  for (const doc of raw.finalized) {
    if (doc.invoiceId === row.invoice_id) continue;
    for (const line of doc.lines) {
      if (line.kind === 'sla-credit' || line.gpuModel === null || line.capacityType === null) continue;
      if (line.kind !== 'interruption-credit') {
        const key = scopeKey(line.servicePeriod, line.gpuModel, line.capacityType);
        priorQuantityGpuMs.set(key, (priorQuantityGpuMs.get(key) ?? 0) + (line.quantityGpuMs ?? 0));
      }
      finalizedBase.set(line.servicePeriod, sumMoney([finalizedBase.get(line.servicePeriod) ?? money('0'), money(line.amount)]));
    }
  }
  // Credits carried forward: each finalized document (in finalization order) lists what is left of
  // every credit it held; a carried-credit line means it took some. Open to invoices of later periods.
  const carried = new Map<string, { credit: CarriedCredit; holderPeriod: string }>();
  for (const doc of raw.finalized) {
    if (doc.invoiceId === row.invoice_id) continue;
    for (const line of doc.lines) if (line.kind === 'carried-credit' && line.reference !== null) carried.delete(line.reference);
    for (const credit of doc.creditsCarriedForward ?? []) carried.set(credit.reference, { credit, holderPeriod: doc.period });
  }
  const carriedCredits = [...carried.values()].filter((c) => periodIndex(c.holderPeriod) < periodIndex(row.period)).map((c) => c.credit);
  const slaCredits: SlaCreditInput[] = raw.slaCredits.map((c) => ({
    creditId: c.credit_id,
    period: c.period,
    metric: c.metric,
    measured: c.measured,
    target: c.target,
    percent: c.credit_percent,
    finalizedBase: (finalizedBase.get(c.period) ?? money('0')).toString(),
  }));
  const adjustmentReferences = adjustmentReferencesOf(row, raw);
  return {
    invoiceId: row.invoice_id,
    issuer: options.issuer,
    tenant: raw.tenant,
    period: row.period,
    // Each piece or credit accepted onto the invoice up to the cutoff is one revision.
    revision: (raw.pieceCount ?? pieces.length) + slaCredits.length,
    cutoffSequence: options.cutoff,
    finalization: options.finalization,
    pieces,
    ...(raw.preRated ? { preRated: raw.preRated } : {}),
    priceVersions: raw.priceVersions,
    priorQuantityGpuMs,
    slaCredits,
    ...(carriedCredits.length ? { carriedCredits } : {}),
    ...(adjustmentReferences.length ? { adjustmentReferences } : {}),
    ...(raw.replaces ? { replaces: raw.replaces } : {}),
    ...(raw.buyer ? { buyer: raw.buyer } : {}),
    taxRates: raw.taxRates,
    grants: raw.grants,
    atMs: options.atMs,
  };
}
