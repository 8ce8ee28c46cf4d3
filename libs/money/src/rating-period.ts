import { isTimeZone, offsetAt } from './calendar';

/**
 * Monthly billing periods ("YYYY-MM") in a tenant's billing time zone. Instants stay UTC epoch
 * milliseconds; the time zone only moves where a period starts and ends (local midnight of the
 * first day of the month). Zone offsets come from calendar.ts (one Intl reading of a zone for the
 * whole repo); the period rule is written once here, used by billing and its tests.
 *
 * A period starts at `wall − offset`, the offset settled by two fixed-point steps. Where a DST
 * change falls at local midnight on the 1st (America/Asuncion, America/Havana, and Newfoundland's
 * 00:01 changes before 2011: 18 of 419 zones × 2000–2040 months), that instant differs by the
 * DST hour from the start of calendar.ts's month window (the first instant of the local month).
 * Invoices already finalized were split by this rule, so it stays; moving to the window start is
 * a money change for those tenants (see docs/billing.md).
 */

/**
 * The billing period rule, named and versioned: version 1 (`monthStartMs` below: local midnight of
 * the 1st as `wall − offset`, the offset settled by two fixed-point steps) is the only one. Every
 * invoice ever finalized was split by it, so its documents and their SHA-256 depend on it: it is
 * never changed in place. Another rule (calendar.ts's month window, say) would be version 2, and
 * the invoices it splits would have to carry the version (a new `InvoiceFinalized` version, with
 * its upcaster reading v1 events as split by version 1) before any code used it.
 */
export const BillingPeriodRule = { name: 'month-start-fixed-point', version: 1 } as const;

const PERIOD_PATTERN = /^(\d{4})-(\d{2})$/;

export function isValidTimeZone(timeZone: string): boolean {
  return isTimeZone(timeZone);
}

/** Offset of the zone's wall clock from UTC at an instant, in ms (local − UTC), to the second: calendar.ts's `offsetAt`. */
export function zoneOffsetMs(instantMs: number, timeZone: string): number {
  return offsetAt(timeZone, instantMs);
}

/** The UTC instant of local midnight starting day 1 of `month` (1–12) in the zone. */
export function monthStartMs(year: number, month: number, timeZone: string): number {
  const wall = Date.UTC(year, month - 1, 1);
  // Two fixed-point steps settle the offset, also across a DST change near midnight.
  let instant = wall - zoneOffsetMs(wall, timeZone);
  instant = wall - zoneOffsetMs(instant, timeZone);
  return instant;
}

export function parsePeriod(period: string): { year: number; month: number } {
  const m = PERIOD_PATTERN.exec(period);
  const year = Number(m?.[1]);
  const month = Number(m?.[2]);
  if (!m || month < 1 || month > 12) throw new Error(`invalid billing period "${period}", expected YYYY-MM`);
  return { year, month };
}

export function formatPeriod(year: number, month: number): string {
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}`;
}

/** Months since year 0: periods compare and subtract as integers. */
export function periodIndex(period: string): number {
  const { year, month } = parsePeriod(period);
  return year * 12 + (month - 1);
}

export function periodFromIndex(index: number): string {
  return formatPeriod(Math.floor(index / 12), (index % 12) + 1);
}

export function addPeriods(period: string, months: number): string {
  return periodFromIndex(periodIndex(period) + months);
}

/** The billing period containing an instant, in the zone: the month of its local wall-clock date. */
export function periodOf(instantMs: number, timeZone: string): string {
  const wall = new Date(instantMs + offsetAt(timeZone, instantMs));
  return formatPeriod(wall.getUTCFullYear(), wall.getUTCMonth() + 1);
}

const boundsCache = new Map<string, Readonly<{ startMs: number; endMs: number }>>();
/** Bound on memoized period bounds (zones × periods in use). */
const BOUNDS_CACHE_MAX = 100_000;

/** [startMs, endMs) of a billing period in the zone (memoized and frozen: zone rules do not change while we run). */
export function periodBounds(period: string, timeZone: string): Readonly<{ startMs: number; endMs: number }> {
  const key = `${period}\u0000${timeZone}`;
  const cached = boundsCache.get(key);
  if (cached) return cached;
  const { year, month } = parsePeriod(period);
  const next = parsePeriod(addPeriods(period, 1));
  const bounds = Object.freeze({ startMs: monthStartMs(year, month, timeZone), endMs: monthStartMs(next.year, next.month, timeZone) });
  if (boundsCache.size >= BOUNDS_CACHE_MAX) boundsCache.clear();
  boundsCache.set(key, bounds);
  return bounds;
}

/** Bound on billing periods one allocation may span when split (100 years). */
export const SPLIT_PERIODS_MAX = 1200;

/** Splits [startMs, endMs) exactly at billing-period boundaries in the zone. */
export function splitAtPeriods(startMs: number, endMs: number, timeZone: string): Array<{ period: string; startMs: number; endMs: number }> {
  if (endMs <= startMs) return [];
  const pieces: Array<{ period: string; startMs: number; endMs: number }> = [];
  let cursor = startMs;
  let period = periodOf(startMs, timeZone);
  // Where DST springs forward at local midnight on the 1st, an instant can still be in the old
  // month by its local date but past the end of that period's bounds (see above): it belongs to the
  // next period, or its piece would run backwards (the ledger would stall on it).
  if (startMs > periodBounds(period, timeZone).endMs) period = addPeriods(period, 1);
  for (let i = 0; cursor < endMs; i++) {
    if (i >= SPLIT_PERIODS_MAX) throw new Error(`interval spans more than ${SPLIT_PERIODS_MAX} billing periods`);
    const bounds = periodBounds(period, timeZone);
    const end = Math.min(bounds.endMs, endMs);
    pieces.push({ period, startMs: cursor, endMs: end });
    cursor = end;
    period = addPeriods(period, 1);
  }
  return pieces;
}
