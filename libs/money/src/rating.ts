import { TIER_MODE_DEFAULT, TierMode } from '@fastgpu/contracts';
import { assertInteger, gpuMsOfDuration, HOUR_MS } from './gpu-time';
import { amountForGpuMs, fromMinor, Money, roundedMinorForGpuMs, type Money as MoneyValue } from './money';
import { billedDurationMs, compareCodeUnits, PriceTimeline, type PriceTier, type PriceVersion, type RatePrice } from './price-timeline';

/**
 * Rating, written once: usage pieces × an effective-dated price timeline → invoice lines.
 *
 * Rules (design.md "Money and time rules"):
 * - Per allocation, the billed duration is rounded up to the price's increment with a minimum
 *   (a price that names neither gets `INCREMENT_MS_DEFAULT` 1 s and `MINIMUM_MS_DEFAULT` 60 s of
 *   libs/contracts pricing.ts, part of the PriceBookPublished contract). The extra billed time (billed − actual) lands on the piece
 *   that contains the allocation's end, priced at the price in force there.
 * - Pieces are split exactly at price-version changes (billing-period splits happen upstream,
 *   in the tenant's time zone). GPU time stays integer milliseconds throughout.
 * - Multiply before dividing: amount = gpuMs × pricePerGpuHour / 3 600 000, exact; exact amounts
 *   are summed per line (integer GPU-ms summed, then one multiplication), each line is rounded
 *   once to the currency's minor unit, half away from zero.
 * - Tiers (a closed set of modes, `TierMode` of libs/contracts: graduated or volume) count GPU
 *   time per (service period, GPU model, capacity type): they reset every billing period. Parts
 *   are placed into tiers in time order. A mode outside the set is an error, never a guess.
 * - An interrupted allocation is billed as usual and credited back by its own line.
 *
 * Prices, tiers, the billed duration and the price timeline are price-timeline.ts.
 */

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
  /** `amount` in minor units (cents): exact integers for bulk totals. */
  amountMinor: bigint;
  usageIds: string[];
}

/** A rated line; its exact (unrounded) amount and its decimal amount are computed only when read, which keeps bulk rating cheap. */
class Line implements RatedLine {
  readonly kind: RatedLineKind;
  readonly servicePeriod: string;
  readonly gpuModel: string;
  readonly capacityType: string;
  readonly priceBookId: string;
  readonly priceBookVersion: number;
  readonly tier: number | null;
  readonly unitPricePerGpuHour: string;
  readonly amountMinor: bigint;
  private decimalAmount?: MoneyValue;

  constructor(
    head: LineHead,
    readonly quantityGpuMs: number,
    private readonly currency: string,
    readonly usageIds: string[],
  ) {
    this.kind = head.kind;
    this.servicePeriod = head.servicePeriod;
    this.gpuModel = head.gpuModel;
    this.capacityType = head.capacityType;
    this.priceBookId = head.priceBookId;
    this.priceBookVersion = head.priceBookVersion;
    this.tier = head.tier;
    this.unitPricePerGpuHour = head.unitPricePerGpuHour;
    this.amountMinor = roundedMinorForGpuMs(this.signedGpuMs, this.unitPricePerGpuHour, currency);
  }

  private get signedGpuMs(): number {
    return this.kind === 'interruption-credit' ? -this.quantityGpuMs : this.quantityGpuMs;
  }

  get amount(): MoneyValue {
    return (this.decimalAmount ??= fromMinor(this.amountMinor, this.currency));
  }

  get exactAmount(): MoneyValue {
    return amountForGpuMs(this.signedGpuMs, this.unitPricePerGpuHour);
  }
}

type LineHead = Omit<RatedLine, 'exactAmount' | 'amount' | 'amountMinor' | 'usageIds' | 'quantityGpuMs'>;

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

/**
 * A stretch of one allocation under one price version, with the GPU-ms it bills (increments and
 * minimum applied). Parts of one tier scope are placed into tiers in `startMs` order.
 */
export interface RatedPart {
  usageId: string;
  servicePeriod: string;
  gpuModel: string;
  capacityType: string;
  interrupted: boolean;
  adjustment: boolean;
  startMs: number;
  billedGpuMs: number;
  version: PriceVersion;
  price: RatePrice;
}

interface LineAccumulator {
  line: LineHead;
  quantityGpuMs: number;
  usageIds: Set<string>;
}

const KIND_ORDER: Record<RatedLineKind, number> = { usage: 0, adjustment: 1, 'interruption-credit': 2 };

function tierRate(price: RatePrice, tierIndex: number | null): string {
  return tierIndex === null ? price.pricePerGpuHour : price.tiers![tierIndex]!.pricePerGpuHour;
}

function tierLimitGpuMs(tier: PriceTier): number {
  return tier.upToGpuHours === null ? Number.POSITIVE_INFINITY : tier.upToGpuHours * HOUR_MS;
}

/** Splits pieces at price-version changes and applies each allocation's increment and minimum; a piece without a price is an error. */
export function billedParts(pieces: readonly UsagePiece[], timeline: PriceTimeline): { parts: RatedPart[]; errors: RatingError[] } {
  const parts: RatedPart[] = [];
  const errors: RatingError[] = [];
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
      const billedGpuMs = gpuMsOfDuration(piece.gpus, billedMs);
      parts.push({
        usageId: piece.usageId,
        servicePeriod: piece.servicePeriod,
        gpuModel: piece.gpuModel,
        capacityType: piece.capacityType,
        interrupted: piece.interrupted,
        adjustment: piece.adjustment,
        startMs,
        billedGpuMs,
        version: found.version,
        price: found.price,
      });
    }
  }
  errors.sort((a, b) => compareCodeUnits(a.usageId, b.usageId) || a.atMs - b.atMs);
  return { parts, errors };
}

/** Rates usage pieces into lines: billedParts then rateParts. Usage without a price is reported, never billed as zero. */
export function rateUsage(pieces: readonly UsagePiece[], timeline: PriceTimeline, currency: string, options: RatingOptions = {}): { lines: RatedLine[]; errors: RatingError[] } {
  const { parts, errors } = billedParts(pieces, timeline);
  return { lines: rateParts(parts, currency, options), errors };
}

/**
 * Rates billed parts into lines: tiers per scope in time order, one exact sum per line, one
 * rounding per line. The caller keeps an invoice with rating errors in draft.
 */
export function rateParts(parts: readonly RatedPart[], currency: string, options: RatingOptions = {}): RatedLine[] {
  for (const part of parts) {
    if (part.version.currency !== currency) throw new Error(`price book ${part.version.priceBookId} v${part.version.version} is in ${part.version.currency}, the invoice in ${currency}`);
  }

  // Untiered prices: a line's quantity is a plain sum, whatever the order (a period run's common case).
  const tiered = parts.some((p) => p.price.tiers !== undefined && p.price.tiers.length > 0);
  // Group parts by tier scope; within a scope, place GPU time into tiers in time order.
  const scopes = new Map<string, RatedPart[]>();
  for (const part of tiered ? parts : []) {
    const key = scopeKey(part.servicePeriod, part.gpuModel, part.capacityType);
    let list = scopes.get(key);
    if (!list) scopes.set(key, (list = []));
    list.push(part);
  }

  const lines = new Map<string, LineAccumulator>();
  const add = (kind: RatedLineKind, part: RatedPart, tier: number | null, quantityGpuMs: number): void => {
    const { version } = part;
    const piece = part;
    const key = `${kind}\u0000${piece.servicePeriod}\u0000${piece.gpuModel}\u0000${piece.capacityType}\u0000${version.priceBookId}\u0000${version.version}\u0000${tier ?? ''}`;
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
    acc.usageIds.add(part.usageId);
  };
  const addPart = (part: RatedPart, tier: number | null, quantityGpuMs: number): void => {
    add(part.adjustment ? 'adjustment' : 'usage', part, tier, quantityGpuMs);
    if (part.interrupted) add('interruption-credit', part, tier, quantityGpuMs);
  };

  if (!tiered) for (const part of parts) addPart(part, null, part.billedGpuMs);
  for (const [key, scopeParts] of tiered ? scopes : []) {
    scopeParts.sort((a, b) => a.startMs - b.startMs || (a.usageId < b.usageId ? -1 : a.usageId > b.usageId ? 1 : 0));
    const priorGpuMs = options.priorQuantityGpuMs?.get(key) ?? 0;
    const scopeTotalGpuMs = priorGpuMs + scopeParts.reduce((sum, p) => sum + p.billedGpuMs, 0);
    let cumulativeGpuMs = priorGpuMs;
    for (const part of scopeParts) {
      const tiers = part.price.tiers ?? [];
      const mode = tiers.length === 0 ? null : (part.price.tierMode ?? TIER_MODE_DEFAULT);
      switch (mode) {
        case null:
          addPart(part, null, part.billedGpuMs);
          break;
        case TierMode.volume: {
          // Every unit of the period at the rate of the tier the period's total falls in.
          const tier = tiers.findIndex((t) => scopeTotalGpuMs <= tierLimitGpuMs(t));
          addPart(part, tier < 0 ? tiers.length - 1 : tier, part.billedGpuMs);
          break;
        }
        case TierMode.graduated: {
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
          break;
        }
        default: {
          const unknownMode: never = mode;
          throw new Error(`price ${part.version.priceBookId} v${part.version.version} ${part.gpuModel}/${part.capacityType} has an unknown tier mode ${String(unknownMode)}`);
        }
      }
      cumulativeGpuMs += part.billedGpuMs;
    }
  }

  const rated: RatedLine[] = [...lines.values()].map((acc) => new Line(acc.line, acc.quantityGpuMs, currency, [...acc.usageIds].sort()));
  rated.sort(
    (a, b) =>
      KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
      compareCodeUnits(a.servicePeriod, b.servicePeriod) ||
      compareCodeUnits(a.gpuModel, b.gpuModel) ||
      compareCodeUnits(a.capacityType, b.capacityType) ||
      compareCodeUnits(a.priceBookId, b.priceBookId) ||
      a.priceBookVersion - b.priceBookVersion ||
      (a.tier ?? 0) - (b.tier ?? 0),
  );
  return rated;
}

/** Billed GPU-hours of a quantity, exact, as a decimal. */
export function gpuHours(quantityGpuMs: number): MoneyValue {
  return new Money(quantityGpuMs).dividedBy(HOUR_MS);
}

/** GPU-hours of a quantity to six decimals (half up), for display; integer arithmetic, no trailing zeros. */
export function gpuHoursDisplay(quantityGpuMs: number): string {
  assertInteger('quantityGpuMs', quantityGpuMs);
  if (quantityGpuMs < 0) return `-${gpuHoursDisplay(-quantityGpuMs)}`;
  // micro-hours = ms / 3.6 = ms × 10 / 36, rounded half up.
  const tenths = quantityGpuMs * 10;
  assertInteger('quantityGpuMs × 10', tenths);
  const whole = Math.floor(tenths / 36);
  const microHours = (tenths - whole * 36) * 2 >= 36 ? whole + 1 : whole;
  const hours = Math.floor(microHours / 1_000_000);
  const fraction = String(microHours - hours * 1_000_000).padStart(6, '0').replace(/0+$/, '');
  return fraction ? `${hours}.${fraction}` : String(hours);
}
