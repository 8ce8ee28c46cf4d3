import { assertInteger } from './gpu-time';
import { amountForGpuMs, Money, roundToMinor, type Money as MoneyValue } from './money';

/**
 * Rating, written once: usage pieces × an effective-dated price timeline → invoice lines.
 *
 * Rules (design.md "Money and time rules"):
 * - Per allocation, the billed duration is rounded up to the price's increment (default 1 s)
 *   with a minimum (default 60 s). The extra billed time (billed − actual) lands on the piece
 *   that contains the allocation's end, priced at the price in force there.
 * - Pieces are split exactly at price-version changes (billing-period splits happen upstream,
 *   in the tenant's time zone). GPU time stays integer milliseconds throughout.
 * - Multiply before dividing: amount = gpuMs × pricePerGpuHour / 3 600 000, exact; exact amounts
 *   are summed per line (integer GPU-ms summed, then one multiplication), each line is rounded
 *   once to the currency's minor unit, half away from zero.
 * - Tiers (graduated or volume) count GPU time per (service period, GPU model, capacity type):
 *   they reset every billing period. Parts are placed into tiers in time order.
 * - An interrupted allocation is billed as usual and credited back by its own line.
 */
export type TierMode = 'graduated' | 'volume';

export interface PriceTier {
  /** Upper bound of the tier in GPU-hours per billing period (inclusive); null = unbounded. */
  upToGpuHours: number | null;
  pricePerGpuHour: string;
}

export interface RatePrice {
  gpuModel: string;
  capacityType: string;
  pricePerGpuHour: string;
  incrementMs: number;
  minimumMs: number;
  tierMode?: TierMode;
  tiers?: readonly PriceTier[];
}

export interface PriceVersion {
  priceBookId: string;
  version: number;
  currency: string;
  effectiveFromMs: number;
  prices: readonly RatePrice[];
}

export const INCREMENT_MS_DEFAULT = 1000;
export const MINIMUM_MS_DEFAULT = 60_000;
/** Bound on tiers in one price (a loop bound and a sanity limit). */
export const TIERS_MAX = 32;

/** Billed duration of one allocation: rounded up to the increment, at least the minimum. A zero-length allocation bills nothing. */
export function billedDurationMs(durationMs: number, incrementMs: number, minimumMs: number): number {
  assertInteger('durationMs', durationMs);
  assertInteger('incrementMs', incrementMs);
  assertInteger('minimumMs', minimumMs);
  if (incrementMs <= 0) throw new Error(`incrementMs must be positive, got ${incrementMs}`);
  if (durationMs < 0) throw new Error(`durationMs must not be negative, got ${durationMs}`);
  if (durationMs === 0) return 0;
  const remainder = durationMs % incrementMs;
  const rounded = remainder === 0 ? durationMs : durationMs - remainder + incrementMs;
  return Math.max(rounded, minimumMs);
}

function priceKey(gpuModel: string, capacityType: string): string {
  return `${gpuModel}\u0000${capacityType}`;
}

/** Validates a price's tiers once: ascending bounds, only the last unbounded, decimal rates. */
export function validateTiers(tiers: readonly PriceTier[]): void {
  if (tiers.length === 0 || tiers.length > TIERS_MAX) throw new Error(`a tiered price needs 1 to ${TIERS_MAX} tiers`);
  let previous = 0;
  tiers.forEach((tier, i) => {
    const last = i === tiers.length - 1;
    if (tier.upToGpuHours === null) {
      if (!last) throw new Error('only the last tier may be unbounded');
    } else {
      assertInteger('upToGpuHours', tier.upToGpuHours);
      if (tier.upToGpuHours <= previous) throw new Error('tier bounds must be ascending and positive');
      previous = tier.upToGpuHours;
    }
    if (!/^\d+(\.\d+)?$/.test(tier.pricePerGpuHour)) throw new Error(`tier price "${tier.pricePerGpuHour}" is not a decimal string`);
  });
  if (tiers[tiers.length - 1]!.upToGpuHours !== null) throw new Error('the last tier must be unbounded');
}

interface IndexedVersion {
  version: PriceVersion;
  byKey: Map<string, RatePrice>;
}

/** The prices in force over time: versions ordered by effective instant, then version number. */
export class PriceTimeline {
  private readonly versions: IndexedVersion[];

  constructor(versions: readonly PriceVersion[]) {
    this.versions = [...versions]
      .sort((a, b) => a.effectiveFromMs - b.effectiveFromMs || a.version - b.version || a.priceBookId.localeCompare(b.priceBookId))
      .map((version) => ({ version, byKey: new Map(version.prices.map((p) => [priceKey(p.gpuModel, p.capacityType), p])) }));
  }

  /** One version in force at every instant (what-if rating of a past period). */
  static fixed(version: PriceVersion): PriceTimeline {
    return new PriceTimeline([{ ...version, effectiveFromMs: Number.MIN_SAFE_INTEGER }]);
  }

  get isEmpty(): boolean {
    return this.versions.length === 0;
  }

  private indexAt(ms: number): number {
    let lo = 0;
    let hi = this.versions.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.versions[mid]!.version.effectiveFromMs <= ms) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  versionAt(ms: number): PriceVersion | undefined {
    const i = this.indexAt(ms);
    return i < 0 ? undefined : this.versions[i]!.version;
  }

  priceAt(ms: number, gpuModel: string, capacityType: string): { version: PriceVersion; price: RatePrice } | undefined {
    const i = this.indexAt(ms);
    if (i < 0) return undefined;
    const indexed = this.versions[i]!;
    const price = indexed.byKey.get(priceKey(gpuModel, capacityType));
    return price ? { version: indexed.version, price } : undefined;
  }

  /** Price-version changes strictly inside [startMs, endMs). */
  cutsWithin(startMs: number, endMs: number): number[] {
    const cuts: number[] = [];
    for (const { version } of this.versions) {
      if (version.effectiveFromMs > startMs && version.effectiveFromMs < endMs) cuts.push(version.effectiveFromMs);
    }
    return cuts;
  }
}

/** A stretch of one allocation inside one billing period, as the rater receives it. */
export interface UsagePiece {
  usageId: string;
  gpus: number;
  gpuModel: string;
  capacityType: string;
  startMs: number;
  endMs: number;
  allocationStartMs: number;
  allocationEndMs: number;
  interrupted: boolean;
  servicePeriod: string;
  /** Billed on a later invoice than its service period (usage that arrived after finalization). */
  adjustment: boolean;
}

export type RatedLineKind = 'usage' | 'adjustment' | 'interruption-credit';

export interface RatedLine {
  kind: RatedLineKind;
  servicePeriod: string;
  gpuModel: string;
  capacityType: string;
  priceBookId: string;
  priceBookVersion: number;
  /** 1-based tier, or null for an untiered price. */
  tier: number | null;
  unitPricePerGpuHour: string;
  /** Billed GPU-milliseconds (after increments and minimums). */
  quantityGpuMs: number;
  exactAmount: MoneyValue;
  /** exactAmount rounded once to the currency's minor unit. */
  amount: MoneyValue;
  usageIds: string[];
}

export interface RatingError {
  usageId: string;
  gpuModel: string;
  capacityType: string;
  atMs: number;
  message: string;
}

export interface RatingOptions {
  /** GPU-ms already billed per tier scope (`scopeKey`) before these pieces, e.g. on a finalized invoice. */
  priorQuantityGpuMs?: ReadonlyMap<string, number>;
}

/** Tiers count per billing period and GPU model and capacity type. */
export function scopeKey(servicePeriod: string, gpuModel: string, capacityType: string): string {
  return `${servicePeriod}|${gpuModel}|${capacityType}`;
}

interface Part {
  piece: UsagePiece;
  startMs: number;
  billedGpuMs: number;
  version: PriceVersion;
  price: RatePrice;
}

interface LineAccumulator {
  line: Omit<RatedLine, 'exactAmount' | 'amount' | 'usageIds' | 'quantityGpuMs'>;
  quantityGpuMs: number;
  usageIds: Set<string>;
}

const KIND_ORDER: Record<RatedLineKind, number> = { usage: 0, adjustment: 1, 'interruption-credit': 2 };

const GPU_MS_PER_HOUR = 3_600_000;

function tierRate(price: RatePrice, tierIndex: number | null): string {
  return tierIndex === null ? price.pricePerGpuHour : price.tiers![tierIndex]!.pricePerGpuHour;
}

function tierLimitGpuMs(tier: PriceTier): number {
  return tier.upToGpuHours === null ? Number.POSITIVE_INFINITY : tier.upToGpuHours * GPU_MS_PER_HOUR;
}

/** Splits pieces at price-version changes and applies each allocation's increment and minimum. */
function toParts(pieces: readonly UsagePiece[], timeline: PriceTimeline, errors: RatingError[]): Part[] {
  const parts: Part[] = [];
  for (const piece of pieces) {
    assertInteger('gpus', piece.gpus);
    if (piece.endMs < piece.startMs || piece.startMs < piece.allocationStartMs || piece.endMs > piece.allocationEndMs) {
      throw new Error(`usage ${piece.usageId}: piece [${piece.startMs}, ${piece.endMs}) lies outside its allocation`);
    }
    const cuts = [piece.startMs, ...timeline.cutsWithin(piece.startMs, piece.endMs).sort((a, b) => a - b), piece.endMs];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const startMs = cuts[i]!;
      const endMs = cuts[i + 1]!;
      const found = timeline.priceAt(startMs, piece.gpuModel, piece.capacityType);
      if (!found) {
        errors.push({ usageId: piece.usageId, gpuModel: piece.gpuModel, capacityType: piece.capacityType, atMs: startMs, message: `no price for ${piece.gpuModel} ${piece.capacityType} at ${new Date(startMs).toISOString()}` });
        continue;
      }
      let billedMs = endMs - startMs;
      // The allocation's rounding lands where it ends, once.
      if (endMs === piece.allocationEndMs) {
        const durationMs = piece.allocationEndMs - piece.allocationStartMs;
        billedMs += billedDurationMs(durationMs, found.price.incrementMs, found.price.minimumMs) - durationMs;
      }
      if (billedMs === 0) continue;
      const billedGpuMs = piece.gpus * billedMs;
      assertInteger('billedGpuMs', billedGpuMs);
      parts.push({ piece, startMs, billedGpuMs, version: found.version, price: found.price });
    }
  }
  return parts;
}

/**
 * Rates usage pieces into lines. Lines with a missing price are left out and reported as errors
 * (never billed as zero); the caller keeps such an invoice in draft.
 */
export function rateUsage(pieces: readonly UsagePiece[], timeline: PriceTimeline, currency: string, options: RatingOptions = {}): { lines: RatedLine[]; errors: RatingError[] } {
  const errors: RatingError[] = [];
  const parts = toParts(pieces, timeline, errors);
  for (const part of parts) {
    if (part.version.currency !== currency) throw new Error(`price book ${part.version.priceBookId} v${part.version.version} is in ${part.version.currency}, the invoice in ${currency}`);
  }

  // Group parts by tier scope; within a scope, place GPU time into tiers in time order.
  const scopes = new Map<string, Part[]>();
  for (const part of parts) {
    const key = scopeKey(part.piece.servicePeriod, part.piece.gpuModel, part.piece.capacityType);
    let list = scopes.get(key);
    if (!list) scopes.set(key, (list = []));
    list.push(part);
  }

  const lines = new Map<string, LineAccumulator>();
  const add = (kind: RatedLineKind, part: Part, tier: number | null, quantityGpuMs: number): void => {
    const { piece, version } = part;
    const key = [kind, piece.servicePeriod, piece.gpuModel, piece.capacityType, version.priceBookId, version.version, tier ?? ''].join('\u0000');
    let acc = lines.get(key);
    if (!acc) {
      acc = {
        line: {
          kind,
          servicePeriod: piece.servicePeriod,
          gpuModel: piece.gpuModel,
          capacityType: piece.capacityType,
          priceBookId: version.priceBookId,
          priceBookVersion: version.version,
          tier: tier === null ? null : tier + 1,
          unitPricePerGpuHour: tierRate(part.price, tier),
        },
        quantityGpuMs: 0,
        usageIds: new Set(),
      };
      lines.set(key, acc);
    }
    acc.quantityGpuMs += quantityGpuMs;
    assertInteger('line quantityGpuMs', acc.quantityGpuMs);
    acc.usageIds.add(piece.usageId);
  };
  const addPart = (part: Part, tier: number | null, quantityGpuMs: number): void => {
    add(part.piece.adjustment ? 'adjustment' : 'usage', part, tier, quantityGpuMs);
    if (part.piece.interrupted) add('interruption-credit', part, tier, quantityGpuMs);
  };

  for (const [key, scopeParts] of scopes) {
    scopeParts.sort((a, b) => a.startMs - b.startMs || (a.piece.usageId < b.piece.usageId ? -1 : a.piece.usageId > b.piece.usageId ? 1 : 0));
    const priorGpuMs = options.priorQuantityGpuMs?.get(key) ?? 0;
    const scopeTotalGpuMs = priorGpuMs + scopeParts.reduce((sum, p) => sum + p.billedGpuMs, 0);
    let cumulativeGpuMs = priorGpuMs;
    for (const part of scopeParts) {
      const tiers = part.price.tiers;
      if (!tiers || tiers.length === 0) {
        addPart(part, null, part.billedGpuMs);
      } else if (part.price.tierMode === 'volume') {
        // Every unit of the period at the rate of the tier the period's total falls in.
        const tier = tiers.findIndex((t) => scopeTotalGpuMs <= tierLimitGpuMs(t));
        addPart(part, tier < 0 ? tiers.length - 1 : tier, part.billedGpuMs);
      } else {
        let remaining = part.billedGpuMs;
        let position = cumulativeGpuMs;
        for (let tier = 0; tier < tiers.length && remaining > 0; tier++) {
          const limit = tierLimitGpuMs(tiers[tier]!);
          if (position >= limit) continue;
          const take = Math.min(remaining, limit - position);
          addPart(part, tier, take);
          remaining -= take;
          position += take;
        }
        if (remaining !== 0) throw new Error('graduated tiers left GPU time unplaced');
      }
      cumulativeGpuMs += part.billedGpuMs;
    }
  }

  const rated: RatedLine[] = [...lines.values()].map((acc) => {
    const sign = acc.line.kind === 'interruption-credit' ? -1 : 1;
    const exactAmount = amountForGpuMs(acc.quantityGpuMs, acc.line.unitPricePerGpuHour).times(sign);
    return {
      ...acc.line,
      quantityGpuMs: acc.quantityGpuMs,
      exactAmount,
      amount: roundToMinor(exactAmount, currency),
      usageIds: [...acc.usageIds].sort(),
    };
  });
  rated.sort(
    (a, b) =>
      KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
      a.servicePeriod.localeCompare(b.servicePeriod) ||
      a.gpuModel.localeCompare(b.gpuModel) ||
      a.capacityType.localeCompare(b.capacityType) ||
      a.priceBookId.localeCompare(b.priceBookId) ||
      a.priceBookVersion - b.priceBookVersion ||
      (a.tier ?? 0) - (b.tier ?? 0),
  );
  errors.sort((a, b) => a.usageId.localeCompare(b.usageId) || a.atMs - b.atMs);
  return { lines: rated, errors };
}

/** Billed GPU-hours of a quantity, exact, as a decimal. */
export function gpuHours(quantityGpuMs: number): MoneyValue {
  return new Money(quantityGpuMs).dividedBy(GPU_MS_PER_HOUR);
}
