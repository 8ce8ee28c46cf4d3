import { z } from 'zod';

/**
 * The parts of a price that are contract, not just billing's rule: what a `PriceBookPublished`
 * price means when it leaves a field out, and the closed set of tier modes it may name. They
 * live here, beside the event schema, because a stored event without `incrementMs` means these
 * values forever: changing a default would re-rate history. libs/money's rating reads them from
 * here (money may depend on contracts; contracts never depends on money).
 */

/** Billing increment per allocation when a price names none: per second, rounded up. */
export const INCREMENT_MS_DEFAULT = 1000;
/** Minimum billed duration per allocation when a price names none. */
export const MINIMUM_MS_DEFAULT = 60_000;
/** Most tiers one price may have: the event schema's bound, and a loop bound for rating. */
export const TIERS_MAX = 32;

/**
 * How a tiered price counts GPU time per billing period: `graduated` prices each tier's part at
 * its own rate; `volume` prices every unit at the rate of the tier the period's total reaches.
 */
export const TierMode = { graduated: 'graduated', volume: 'volume' } as const;
export type TierMode = (typeof TierMode)[keyof typeof TierMode];
/** The mode of a tiered price that names none. */
export const TIER_MODE_DEFAULT: TierMode = TierMode.graduated;
export const tierModeSchema = z.enum(TierMode);
