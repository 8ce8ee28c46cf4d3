import { TIERS_MAX, type TierMode } from '@fastgpu/contracts';
import { assertInteger } from './gpu-time';

/**
 * Prices as rating reads them (rating.ts): effective-dated, immutable price versions of price
 * books, their tiers (checked by `validateTiers`), the billed duration of an allocation (rounded up
 * to the price's increment, with a minimum), and the timeline that answers which price version is
 * in force for a GPU model and capacity type at an instant.
 */
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

/** Locale-independent string order (UTF-16 code units): the same on every machine, and fast. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
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
      .sort((a, b) => a.effectiveFromMs - b.effectiveFromMs || a.version - b.version || compareCodeUnits(a.priceBookId, b.priceBookId))
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
