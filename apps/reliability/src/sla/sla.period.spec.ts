/**
 * Proves that an SLA month is the calendar's UTC month (libs/money calendar.ts) and nothing of
 * its own: for any instant from 1970 to 2199, `periodOf` names the UTC month it falls in,
 * `periodBounds` of that name is the calendar's month window containing it (start and end on
 * the first of a month at 00:00 UTC), months tile (one's end is the next one's start), and in
 * UTC the billing period rule of libs/money (`rating-period.ts`) gives the same bounds, so the
 * two month rules differ only in zones other than UTC.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { periodBounds as billingPeriodBounds, periodOf as billingPeriodOf, windowContaining } from '@fastgpu/money';
import { periodBounds, periodOf, previousPeriod, SLA_TIME_ZONE } from './sla.period';

const instant = fc.integer({ min: 0, max: Date.UTC(2199, 11, 31) });

describe('SLA months are UTC calendar months', () => {
  it('names the month an instant falls in, with the calendar month window as bounds', () => {
    fc.assert(
      fc.property(instant, (ms) => {
        const period = periodOf(ms);
        const bounds = periodBounds(period);
        const date = new Date(ms);
        expect(period).toBe(`${date.getUTCFullYear()}-${String(date.getUTCMonth() + 1).padStart(2, '0')}`);
        expect(bounds).toEqual({ startMs: Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1), endMs: Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1) });
        const { startMs, endMs } = windowContaining(ms, 'month', SLA_TIME_ZONE);
        expect(bounds).toEqual({ startMs, endMs });
        expect(periodOf(bounds.endMs)).not.toBe(period);
        expect(previousPeriod(periodOf(bounds.endMs))).toBe(period);
      }),
      { numRuns: 500 },
    );
  });

  it('agrees with the billing period rule in UTC', () => {
    fc.assert(
      fc.property(instant, (ms) => {
        const period = periodOf(ms);
        expect(billingPeriodOf(ms, 'UTC')).toBe(period);
        expect(billingPeriodBounds(period, 'UTC')).toMatchObject(periodBounds(period));
      }),
      { numRuns: 500 },
    );
  });

  it('refuses what is not YYYY-MM', () => {
    for (const bad of ['2026-13', '2026-00', '2026-1', '26-01', '2026-01-01', '']) expect(() => periodBounds(bad)).toThrow(/YYYY-MM/);
  });
});
