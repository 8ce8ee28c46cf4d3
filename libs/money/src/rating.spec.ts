/**
 * Proves each rating rule with exact amounts: per-second increments and minimums, multiply
 * before divide, one rounding per line (ties at half a cent away from zero), many-decimal
 * prices, JPY (0 digits) and KWD (3 digits), splits at month boundaries in the tenant's zone and
 * at price changes, graduated and volume tiers that reset per period (no mode means graduated, an
 * unknown mode is refused), interruption credits, tax per rate rounded once, prepaid grants by
 * priority and expiry, and credits larger than the bill.
 */
import { describe, expect, it } from 'vitest';
import { HOUR_MS, TIER_MODE_DEFAULT, TierMode } from '@fastgpu/contracts';
import {
  applyPrepaidGrants,
  billedDurationMs,
  computeTotals,
  amountForGpuMs,
  formatMoney,
  gpuHours,
  roundedAmountForGpuMs,
  roundToMinor,
  gpuHoursDisplay,
  minorUnits,
  money,
  Money,
  periodBounds,
  offsetAt,
  windowContaining,
  periodOf,
  PriceTimeline,
  rateUsage,
  scopeKey,
  slaCreditAmount,
  slaCreditSplit,
  carriedCreditSplit,
  taxRatesInForce,
  splitAtPeriods,
  taxesFor,
  type PriceVersion,
  type RatePrice,
  type UsagePiece,
} from './index';

const T0 = Date.UTC(2026, 9, 5, 10, 0, 0);

function price(gpuModel: string, pricePerGpuHour: string, extra: Partial<RatePrice> = {}): RatePrice {
  return { gpuModel, capacityType: 'on-demand', pricePerGpuHour, incrementMs: 1000, minimumMs: 60_000, ...extra };
}
function book(version: number, currency: string, effectiveFromMs: number, prices: RatePrice[]): PriceVersion {
  return { priceBookId: 'standard', version, currency, effectiveFromMs, prices };
}
let nextId = 0;
function piece(startMs: number, endMs: number, extra: Partial<UsagePiece> = {}): UsagePiece {
  nextId++;
  return {
    usageId: `u${String(nextId).padStart(4, '0')}`,
    gpus: 1,
    gpuModel: 'a100',
    capacityType: 'on-demand',
    startMs,
    endMs,
    allocationStartMs: startMs,
    allocationEndMs: endMs,
    interrupted: false,
    servicePeriod: '2026-10',
    adjustment: false,
    ...extra,
  };
}
const amounts = (lines: { amount: { toString(): string } }[], currency = 'USD') => lines.map((l) => formatMoney(money(l.amount.toString()), currency));

describe('billed duration per allocation', () => {
  it('rounds up to the next second and bills at least the minimum', () => {
    expect(billedDurationMs(61_001, 1000, 60_000)).toBe(62_000);
    expect(billedDurationMs(61_000, 1000, 60_000)).toBe(61_000);
    expect(billedDurationMs(10_000, 1000, 60_000)).toBe(60_000);
    expect(billedDurationMs(61_000, 60_000, 0)).toBe(120_000);
    expect(billedDurationMs(0, 1000, 60_000)).toBe(0);
  });
  it('applies the minimum to the allocation, not to the GPU-ms, and multiplies by GPUs', () => {
    const timeline = new PriceTimeline([book(1, 'USD', 0, [price('a100', '3.60')])]);
    // 8 GPUs for 10 s → 8 × 60 s billed = 480 000 GPU-ms at 3.60/h = 0.48.
    const { lines } = rateUsage([piece(T0, T0 + 10_000, { gpus: 8 })], timeline, 'USD');
    expect(lines[0]!.quantityGpuMs).toBe(480_000);
    expect(amounts(lines)).toEqual(['0.48']);
  });
});

describe('rounding, once per line', () => {
  it('rounds a tie at half a cent away from zero', () => {
    // 1 000 s at 0.018/h = exactly 0.005.
    const timeline = new PriceTimeline([book(1, 'USD', 0, [price('a100', '0.018')])]);
    const { lines } = rateUsage([piece(T0, T0 + 1_000_000)], timeline, 'USD');
    expect(lines[0]!.exactAmount.toString()).toBe('0.005');
    expect(amounts(lines)).toEqual(['0.01']);
  });
  it('sums exact amounts in a line before rounding it (no per-allocation rounding)', () => {
    // Two allocations of 0.004 each: per-allocation rounding would give 0.00; the line is 0.008 → 0.01.
    const timeline = new PriceTimeline([book(1, 'USD', 0, [price('a100', '0.0144')])]);
    const { lines } = rateUsage([piece(T0, T0 + 1_000_000), piece(T0 + HOUR_MS, T0 + HOUR_MS + 1_000_000)], timeline, 'USD');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.exactAmount.toString()).toBe('0.008');
    expect(amounts(lines)).toEqual(['0.01']);
    expect(lines[0]!.usageIds).toHaveLength(2);
  });
  it('keeps prices with many decimals exact by multiplying before dividing', () => {
    const timeline = new PriceTimeline([book(1, 'USD', 0, [price('a100', '2.123456789123')])]);
    const { lines } = rateUsage([piece(T0, T0 + 90 * 60_000)], timeline, 'USD');
    expect(lines[0]!.exactAmount.toString()).toBe('3.1851851836845');
    expect(amounts(lines)).toEqual(['3.19']);
    // 7 s at 0.0000001/h: 7 000 × 0.0000001 / 3 600 000, kept to 40 significant digits.
    const tiny = rateUsage([piece(T0, T0 + 7000, { usageId: 'tiny' })], new PriceTimeline([book(1, 'USD', 0, [price('a100', '0.0000001', { minimumMs: 0 })])]), 'USD');
    expect(tiny.lines[0]!.exactAmount.toString()).toBe('0.0000000001944444444444444444444444444444444444444');
    expect(amounts(tiny.lines)).toEqual(['0.00']);
  });
  it('rounds JPY to whole yen and KWD to three decimals', () => {
    const jpy = new PriceTimeline([book(1, 'JPY', 0, [price('a100', '15')])]);
    // 2 minutes at 15 ¥/h = 0.5 ¥ → 1 ¥ (half away from zero).
    const yen = rateUsage([piece(T0, T0 + 120_000)], jpy, 'JPY');
    expect(amounts(yen.lines, 'JPY')).toEqual(['1']);
    const kwd = new PriceTimeline([book(1, 'KWD', 0, [price('a100', '1.2345')])]);
    const dinar = rateUsage([piece(T0, T0 + HOUR_MS)], kwd, 'KWD');
    expect(amounts(dinar.lines, 'KWD')).toEqual(['1.235']);
  });
  it('refuses to mix a price book currency with the invoice currency', () => {
    const timeline = new PriceTimeline([book(1, 'EUR', 0, [price('a100', '1')])]);
    expect(() => rateUsage([piece(T0, T0 + HOUR_MS)], timeline, 'USD')).toThrow(/EUR/);
  });
});

describe('splits', () => {
  it('splits at month boundaries in the tenant time zone, not in UTC', () => {
    // New York leaves daylight time on Sunday 1 Nov 2026 at 02:00 local; midnight is still EDT (UTC−4).
    expect(periodBounds('2026-10', 'America/New_York')).toEqual({ startMs: Date.UTC(2026, 9, 1, 4), endMs: Date.UTC(2026, 10, 1, 4) });
    expect(periodBounds('2026-11', 'America/New_York').endMs).toBe(Date.UTC(2026, 11, 1, 5));
    expect(periodBounds('2026-10', 'Europe/Berlin').startMs).toBe(Date.UTC(2026, 8, 30, 22));
    const start = Date.UTC(2026, 10, 1, 3, 30);
    const end = Date.UTC(2026, 10, 1, 4, 30);
    expect(splitAtPeriods(start, end, 'America/New_York')).toEqual([
      { period: '2026-10', startMs: start, endMs: Date.UTC(2026, 10, 1, 4) },
      { period: '2026-11', startMs: Date.UTC(2026, 10, 1, 4), endMs: end },
    ]);
    expect(splitAtPeriods(start, end, 'UTC')).toEqual([{ period: '2026-11', startMs: start, endMs: end }]);
    expect(periodOf(Date.UTC(2026, 9, 31, 23), 'Asia/Tokyo')).toBe('2026-11');
  });
  it('takes zone offsets from calendar.ts: periods start where its month windows do, except where DST changes at local midnight on the 1st', () => {
    const windowStart = (period: string, zone: string) => {
      const [year, month] = period.split('-').map(Number) as [number, number];
      const midMonth = Date.UTC(year, month - 1, 15);
      return windowContaining(midMonth - offsetAt(zone, midMonth), 'month', zone).startMs;
    };
    for (const zone of ['UTC', 'America/New_York', 'Europe/Berlin', 'Asia/Tokyo', 'Asia/Kolkata', 'Australia/Lord_Howe', 'America/Santiago']) {
      for (const period of ['2026-01', '2026-03', '2026-04', '2026-10', '2026-11']) expect(periodBounds(period, zone).startMs, `${zone} ${period}`).toBe(windowStart(period, zone));
    }
    // Asunción sprang forward at 00:00 on 1 October 2023: no local midnight that day. The period rule
    // (kept: invoices were finalized under it) starts October an hour before the first October instant.
    expect(periodBounds('2023-10', 'America/Asuncion').startMs).toBe(Date.UTC(2023, 9, 1, 3));
    expect(windowStart('2023-10', 'America/Asuncion')).toBe(Date.UTC(2023, 9, 1, 4));
    expect(periodOf(Date.UTC(2023, 9, 1, 3, 30), 'America/Asuncion')).toBe('2023-09');
    // Usage starting in that hour is split by the period bounds, never into a piece that runs backwards.
    expect(splitAtPeriods(Date.UTC(2023, 9, 1, 3, 30), Date.UTC(2023, 9, 1, 5), 'America/Asuncion')).toEqual([{ period: '2023-10', startMs: Date.UTC(2023, 9, 1, 3, 30), endMs: Date.UTC(2023, 9, 1, 5) }]);
    expect(splitAtPeriods(Date.UTC(2009, 10, 1, 2, 45), Date.UTC(2009, 10, 1, 4), 'America/St_Johns')).toEqual([{ period: '2009-11', startMs: Date.UTC(2009, 10, 1, 2, 45), endMs: Date.UTC(2009, 10, 1, 4) }]);
  });
  it('bills each side of a month boundary on its own period, with the rounding on the side where the allocation ends', () => {
    const timeline = new PriceTimeline([book(1, 'USD', 0, [price('a100', '3.60')])]);
    const boundary = Date.UTC(2026, 10, 1);
    const allocation = { allocationStartMs: boundary - 30_000, allocationEndMs: boundary + 10_000 };
    const { lines } = rateUsage(
      [piece(boundary - 30_000, boundary, { ...allocation, usageId: 'x' }), piece(boundary, boundary + 10_000, { ...allocation, usageId: 'x', servicePeriod: '2026-11' })],
      timeline,
      'USD',
    );
    // 40 s actual, 60 s minimum: October gets its 30 s, November 10 s + the 20 s of minimum.
    expect(lines.map((l) => [l.servicePeriod, l.quantityGpuMs])).toEqual([
      ['2026-10', 30_000],
      ['2026-11', 30_000],
    ]);
  });
  it('splits exactly at a price change, with one line per price version', () => {
    const change = T0 + HOUR_MS;
    const timeline = new PriceTimeline([book(1, 'USD', 0, [price('a100', '2.00')]), book(2, 'USD', change, [price('a100', '3.00')])]);
    // 30 min before the change and 30 min + 0.5 s after (rounded up to a whole second there).
    const { lines } = rateUsage([piece(change - 30 * 60_000, change + 30 * 60_000 + 500)], timeline, 'USD');
    expect(lines.map((l) => [l.priceBookVersion, l.quantityGpuMs, l.exactAmount.toString()])).toEqual([
      [1, 1_800_000, '1'],
      [2, 1_801_000, '1.500833333333333333333333333333333333333'],
    ]);
    expect(amounts(lines)).toEqual(['1.00', '1.50']);
    expect(timeline.versionAt(change - 1)!.version).toBe(1);
    expect(timeline.versionAt(change)!.version).toBe(2);
  });
});

describe('line rounding in integers', () => {
  it('equals rounding the exact decimal amount once, half away from zero, for every currency and sign', () => {
    let seed = 7;
    const next = () => (seed = (seed * 48_271) % 2_147_483_647);
    const prices = ['0', '0.018', '2.123456789123', '3.6', '0.0000001', '15', '1.2345', '4499.99', '0.005'];
    for (let i = 0; i < 3000; i++) {
      const gpuMs = (next() % 50_000_000) * (i % 2 ? -1 : 1);
      const price = prices[i % prices.length]!;
      for (const currency of ['USD', 'JPY', 'KWD']) {
        // The reference is the decimal.js path (ROUND_HALF_UP), independent of roundHalfAwayFromZero.
        const decimal = amountForGpuMs(gpuMs, price).toDecimalPlaces(minorUnits(currency), Money.ROUND_HALF_UP);
        expect(roundedAmountForGpuMs(gpuMs, price, currency).eq(decimal)).toBe(true);
        expect(roundToMinor(amountForGpuMs(gpuMs, price), currency).eq(decimal)).toBe(true);
      }
    }
    expect(roundedAmountForGpuMs(1_000_000, '0.018', 'USD').toString()).toBe('0.01');
    expect(roundedAmountForGpuMs(-1_000_000, '0.018', 'USD').toString()).toBe('-0.01');
  });
});

describe('display of GPU-hours', () => {
  it('shows six decimals, half up, exactly as the decimal division rounds', () => {
    for (const ms of [0, 1, 3, 1800, 3_600_000, 80_000, 7_200_001, 123_456_789, 5_400_000_000_018]) {
      expect(gpuHoursDisplay(ms)).toBe(gpuHours(ms).toDecimalPlaces(6, Money.ROUND_HALF_UP).toString());
    }
    expect(gpuHoursDisplay(1800)).toBe('0.0005');
    expect(gpuHoursDisplay(-1800)).toBe('-0.0005');
  });
});

describe('tiers', () => {
  const tiered = (tierMode: TierMode | undefined) =>
    new PriceTimeline([
      book(1, 'USD', 0, [
        price('a100', '9.99', {
          tierMode,
          tiers: [
            { upToGpuHours: 10, pricePerGpuHour: '2.00' },
            { upToGpuHours: null, pricePerGpuHour: '1.50' },
          ],
        }),
      ]),
    ]);
  const oct = Date.UTC(2026, 9, 10);
  const nov = Date.UTC(2026, 10, 10);

  it('graduated tiers fill in time order and reset in the next billing period', () => {
    const pieces = [piece(oct, oct + 15 * HOUR_MS), piece(nov, nov + 5 * HOUR_MS, { servicePeriod: '2026-11' })];
    const { lines } = rateUsage(pieces, tiered('graduated'), 'USD');
    expect(lines.map((l) => [l.servicePeriod, l.tier, l.quantityGpuMs / HOUR_MS, formatMoney(l.amount, 'USD')])).toEqual([
      ['2026-10', 1, 10, '20.00'],
      ['2026-10', 2, 5, '7.50'],
      ['2026-11', 1, 5, '10.00'],
    ]);
  });
  it('volume tiers price every unit of the period at the tier its total falls in', () => {
    const { lines } = rateUsage([piece(oct, oct + 6 * HOUR_MS), piece(oct + 7 * HOUR_MS, oct + 16 * HOUR_MS)], tiered('volume'), 'USD');
    expect(lines.map((l) => [l.tier, l.quantityGpuMs / HOUR_MS, formatMoney(l.amount, 'USD')])).toEqual([[2, 15, '22.50']]);
    const small = rateUsage([piece(oct, oct + 10 * HOUR_MS)], tiered('volume'), 'USD');
    expect(small.lines.map((l) => [l.tier, formatMoney(l.amount, 'USD')])).toEqual([[1, '20.00']]);
  });
  it('rates a tiered price that names no mode as graduated, and refuses a mode outside the closed set instead of guessing', () => {
    const pieces = [piece(oct, oct + 15 * HOUR_MS)];
    const amounts = (timeline: PriceTimeline) => rateUsage(pieces, timeline, 'USD').lines.map((l) => [l.tier, formatMoney(l.amount, 'USD')]);
    expect(TIER_MODE_DEFAULT).toBe(TierMode.graduated);
    expect(amounts(tiered(undefined))).toEqual(amounts(tiered(TierMode.graduated)));
    expect(amounts(tiered(TierMode.volume))).not.toEqual(amounts(tiered(TierMode.graduated)));
    expect(() => rateUsage(pieces, tiered('stairstep' as TierMode), 'USD')).toThrow(/unknown tier mode stairstep/);
  });
  it('continues a period that was already billed from its prior quantity (late usage)', () => {
    const prior = new Map([[scopeKey('2026-10', 'a100', 'on-demand'), 9 * HOUR_MS]]);
    const { lines } = rateUsage([piece(oct, oct + 2 * HOUR_MS, { adjustment: true })], tiered('graduated'), 'USD', { priorQuantityGpuMs: prior });
    expect(lines.map((l) => [l.kind, l.tier, l.quantityGpuMs / HOUR_MS])).toEqual([
      ['adjustment', 1, 1],
      ['adjustment', 2, 1],
    ]);
  });
});

describe('usage without a price and interruptions', () => {
  it('reports usage with no price as an error and never bills it as zero', () => {
    const timeline = new PriceTimeline([book(1, 'USD', 0, [price('a100', '1')])]);
    const { lines, errors } = rateUsage([piece(T0, T0 + HOUR_MS, { gpuModel: 'h100', usageId: 'orphan' })], timeline, 'USD');
    expect(lines).toEqual([]);
    expect(errors).toMatchObject([{ usageId: 'orphan', gpuModel: 'h100' }]);
    const before = rateUsage([piece(T0 - HOUR_MS, T0)], new PriceTimeline([book(1, 'USD', T0, [price('a100', '1')])]), 'USD');
    expect(before.errors).toHaveLength(1);
  });
  it('bills an interrupted allocation and credits it back as its own line', () => {
    const timeline = new PriceTimeline([book(1, 'USD', 0, [price('a100', '2.50')])]);
    const { lines } = rateUsage([piece(T0, T0 + HOUR_MS, { gpus: 2 }), piece(T0, T0 + 30 * 60_000, { interrupted: true, usageId: 'int' })], timeline, 'USD');
    expect(lines.map((l) => [l.kind, formatMoney(l.amount, 'USD')])).toEqual([
      ['usage', '6.25'],
      ['interruption-credit', '-1.25'],
    ]);
    expect(lines[1]!.usageIds).toEqual(['int']);
  });
});

describe('totals, tax and credits', () => {
  it('taxes the taxable subtotal per rate, each rounded once', () => {
    const taxes = taxesFor(money('10.05'), [
      { name: 'VAT', rate: '0.19' },
      { name: 'levy', rate: '0.005' },
    ], 'USD');
    expect(taxes.map((t) => formatMoney(t.amount, 'USD'))).toEqual(['1.91', '0.05']);
  });
  it('subtotal is the sum of rounded lines; tax, total, prepaid and amount due follow exactly', () => {
    const lines = [
      { amount: money('10.01'), taxable: true },
      { amount: money('0.01'), taxable: true },
      { amount: money('-2.00'), taxable: true },
    ];
    const totals = computeTotals(lines, [{ name: 'VAT', rate: '0.2' }], [], 0, 'USD');
    expect([totals.subtotal, totals.taxes[0]!.amount, totals.total, totals.amountDue].map((m) => formatMoney(m, 'USD'))).toEqual(['8.02', '1.60', '9.62', '9.62']);
    expect(() => computeTotals([{ amount: money('0.005'), taxable: true }], [], [], 0, 'USD')).toThrow(/not rounded/);
  });
  it('uses grants by priority, then soonest expiry, skips expired ones, and never goes below zero', () => {
    const grants = [
      { grantId: 'low', remaining: money('100'), priority: 0, grantedAtMs: 0, expiresAtMs: null },
      { grantId: 'high-late', remaining: money('5'), priority: 5, grantedAtMs: 0, expiresAtMs: 2000 },
      { grantId: 'high-soon', remaining: money('3'), priority: 5, grantedAtMs: 0, expiresAtMs: 1500 },
      { grantId: 'expired', remaining: money('50'), priority: 9, grantedAtMs: 0, expiresAtMs: 1000 },
      { grantId: 'future', remaining: money('50'), priority: 9, grantedAtMs: 5000, expiresAtMs: null },
    ];
    const applied = applyPrepaidGrants(money('27.50'), grants, 1000);
    expect(applied.map((a) => [a.grantId, a.amount.toString()])).toEqual([
      ['high-soon', '3'],
      ['high-late', '5'],
      ['low', '19.5'],
    ]);
    const totals = computeTotals([{ amount: money('27.50'), taxable: true }], [], grants, 1000, 'USD');
    expect(formatMoney(totals.amountDue, 'USD')).toBe('0.00');
  });
  it('caps an SLA credit larger than the amount it credits', () => {
    expect(slaCreditAmount(money('10.01'), 25, 'USD', money('100')).toString()).toBe('-2.5');
    expect(slaCreditAmount(money('0.02'), 50, 'USD', money('100')).toString()).toBe('-0.01');
    expect(slaCreditAmount(money('100'), 50, 'USD', money('20')).toString()).toBe('-20');
    expect(slaCreditAmount(money('100'), 50, 'USD', money('-5')).isZero()).toBe(true);
  });
  it('taxes a period at the rates in force at its end; undated rates apply from when they were set, as before', () => {
    const END = Date.UTC(2026, 11, 1);
    const set = (rate: string, setAtMs: number, effectiveFromMs: number | null, sequence: number) => ({ rates: [{ name: 'VAT', rate }], setAtMs, effectiveFromMs, sequence });
    const rate = (sets: ReturnType<typeof set>[], atMs = END + 3 * 86_400_000) => taxRatesInForce(sets, { periodEndMs: END, atMs }).map((r) => r.rate);
    // Undated (the only kind before effective dates): the latest set at or before the invoice's time.
    expect(rate([set('0.1', END - 10, null, 1), set('0.2', END + 10, null, 2)])).toEqual(['0.2']);
    expect(rate([set('0.1', END - 10, null, 1), set('0.2', END + 10, null, 2)], END)).toEqual(['0.1']);
    // Dated: in force when it takes effect before the period ends, whenever the invoice is taxed.
    expect(rate([set('0.1', END - 10, null, 1), set('0.2', END - 20, END, 2)])).toEqual(['0.1']); // takes effect as the next period starts
    expect(rate([set('0.1', END - 10, null, 1), set('0.2', END - 20, END - 1, 2)])).toEqual(['0.2']); // in force at the last instant
    expect(rate([set('0.2', END + 99, END - 86_400_000, 2)])).toEqual(['0.2']); // set after the period, back-dated into it
    // The one taking effect last wins; at the same instant, the later in the log.
    expect(rate([set('0.1', 0, END - 100, 1), set('0.2', 0, END - 200, 2)])).toEqual(['0.1']);
    expect(rate([set('0.1', 0, END - 100, 2), set('0.2', 0, END - 100, 1)])).toEqual(['0.1']);
    expect(rate([])).toEqual([]);
  });
  it('carries the part of an SLA credit an invoice cannot take, to the minor unit', () => {
    const split = (base: string, percent: number, currency: string, cap: string) => {
      const { applied, carried } = slaCreditSplit(money(base), percent, currency, money(cap));
      return [formatMoney(applied, currency), formatMoney(carried, currency)];
    };
    expect(split('100', 50, 'USD', '20')).toEqual(['-20.00', '30.00']);
    expect(split('350', 25, 'JPY', '58')).toEqual(['-58', '30']); // 87.5 → 88, of which 58 on this invoice
    expect(split('10.005', 10, 'KWD', '0.4')).toEqual(['-0.400', '0.601']); // 1.0005 → 1.001
    expect(split('100', 50, 'USD', '0')).toEqual(['0.00', '50.00']);
    expect(split('100', 10, 'USD', '500')).toEqual(['-10.00', '0.00']);
    // A carried credit is taken as far as the next invoice charges, the rest carried on.
    const carried = (remaining: string, cap: string) => Object.values(carriedCreditSplit(money(remaining), money(cap))).map((m) => m.toString());
    expect(carried('30', '12.34')).toEqual(['-12.34', '17.66']);
    expect(carried('17.66', '100')).toEqual(['-17.66', '0']);
    expect(carried('5', '-3')).toEqual(['0', '5']);
    expect(() => carriedCreditSplit(money('-1'), money('5'))).toThrow(/cannot be negative/);
  });
});
