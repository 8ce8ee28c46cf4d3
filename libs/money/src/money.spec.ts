/**
 * Proves the shared money and GPU-time rules: exact splits, multiply-before-divide, and the one
 * rounding rule (roundHalfAwayFromZero) — equal to decimal.js's ROUND_HALF_UP on generated
 * fractions and decimals of both signs, through roundToMinor and through the tax of a rate, so
 * the integer forms used in bulk give what the decimal forms give.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { amountForGpuMs, fixedUnits, formatMinor, formatMoney, fromMinor, gpuMs, gpuMsOfDuration, HOUR_MS, minorUnits, money, Money, roundHalfAwayFromZero, roundToMinor, splitAt, splitAtHours, taxesFor, toMinor } from './index';

/** The decimal.js path, the reference every integer rounding must agree with: ROUND_HALF_UP to the minor digits. */
const decimalHalfUp = (amount: Money, currency: string) => amount.toDecimalPlaces(minorUnits(currency), Money.ROUND_HALF_UP);

describe('GPU time', () => {
  it('splits a half-open interval exactly at hour boundaries', () => {
    const start = Date.UTC(2026, 9, 31, 22, 30);
    const end = Date.UTC(2026, 10, 1, 1, 15);
    const pieces = splitAtHours(start, end);
    expect(pieces.map((p) => [p.hourStartMs, p.endMs - p.startMs])).toEqual([
      [Date.UTC(2026, 9, 31, 22), 30 * 60_000],
      [Date.UTC(2026, 9, 31, 23), HOUR_MS],
      [Date.UTC(2026, 10, 1, 0), HOUR_MS],
      [Date.UTC(2026, 10, 1, 1), 15 * 60_000],
    ]);
    expect(pieces.reduce((sum, p) => sum + (p.endMs - p.startMs), 0)).toBe(end - start);
  });
  it('does not split at a boundary equal to the start or the end', () => {
    expect(splitAt(0, HOUR_MS, [0, HOUR_MS])).toEqual([{ startMs: 0, endMs: HOUR_MS }]);
    expect(splitAtHours(HOUR_MS, HOUR_MS)).toEqual([]);
  });
  it('multiplies GPUs by duration and refuses reversed intervals', () => {
    expect(gpuMs(8, 1000, 4000)).toBe(24_000);
    expect(() => gpuMs(1, 5, 4)).toThrow(/before it starts/);
    expect(gpuMsOfDuration(8, 3000)).toBe(gpuMs(8, 1000, 4000));
    expect(() => gpuMsOfDuration(1, -1)).toThrow(/negative/);
    expect(() => gpuMsOfDuration(2 ** 30, 2 ** 30)).toThrow(/gpuMs must be a safe integer/);
  });
});

describe('money', () => {
  it('multiplies before dividing so prices with many decimals stay exact', () => {
    // 1 GPU-ms at 2.123456789 per GPU-hour, times 3 600 000, is exactly the price.
    expect(amountForGpuMs(3_600_000, '2.123456789').toString()).toBe('2.123456789');
    expect(amountForGpuMs(1, '3.6').toString()).toBe('0.000001');
  });
  it('rounds ties away from zero once, to the currency minor unit', () => {
    expect(formatMoney(roundToMinor(money('0.125'), 'USD'), 'USD')).toBe('0.13');
    expect(formatMoney(roundToMinor(money('-0.125'), 'USD'), 'USD')).toBe('-0.13');
    expect(formatMoney(roundToMinor(money('100.5'), 'JPY'), 'JPY')).toBe('101');
    expect(formatMoney(roundToMinor(money('1.0005'), 'KWD'), 'KWD')).toBe('1.001');
  });
  it('refuses float inputs', () => {
    expect(() => money(0.1)).toThrow(/decimal string/);
  });
});

describe('roundHalfAwayFromZero, the one rounding rule', () => {
  it('rounds a fraction to the nearest integer, ties away from zero, as decimal.js ROUND_HALF_UP does', () => {
    expect([5n, 15n, 25n, -5n, -15n, -25n, 14n, -14n, 16n, -16n, 0n].map((n) => roundHalfAwayFromZero(n, 10n))).toEqual([1n, 2n, 3n, -1n, -2n, -3n, 1n, -1n, 2n, -2n, 0n]);
    expect(() => roundHalfAwayFromZero(1n, 0n)).toThrow(/positive denominator/);
    expect(() => roundHalfAwayFromZero(1n, -2n)).toThrow(/positive denominator/);
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }), fc.bigInt({ min: 1n, max: 10n ** 15n }), (numerator, denominator) => {
        const decimal = new Money(numerator.toString()).dividedBy(denominator.toString()).toDecimalPlaces(0, Money.ROUND_HALF_UP);
        expect(roundHalfAwayFromZero(numerator, denominator).toString()).toBe(decimal.abs().toFixed() === '0' ? '0' : decimal.toFixed());
      }),
      { numRuns: 3000 },
    );
  });
  it('roundToMinor equals decimal.js ROUND_HALF_UP on decimals of both signs and any scale, a negative zero included', () => {
    const decimalText = fc
      .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 30n }), fc.integer({ min: 0, max: 30 }))
      .map(([negative, digits, scale]) => new Money(`${negative ? '-' : ''}${digits}e-${scale}`));
    fc.assert(
      fc.property(decimalText, fc.constantFrom('USD', 'JPY', 'KWD'), (amount, currency) => {
        const rounded = roundToMinor(amount, currency);
        const reference = decimalHalfUp(amount, currency);
        expect(rounded.eq(reference)).toBe(true);
        expect(rounded.isNegative()).toBe(reference.isNegative());
        expect(formatMoney(rounded, currency)).toBe(formatMoney(reference, currency));
      }),
      { numRuns: 3000 },
    );
    expect(roundToMinor(money('-0.004'), 'USD').isNegative()).toBe(true);
  });
});

describe('minor units', () => {
  it('formats minor units exactly as formatMoney formats the same amount', () => {
    const cases: Array<[string, string]> = [['0', 'USD'], ['0.01', 'USD'], ['-0.01', 'USD'], ['-12.30', 'USD'], ['1234567.89', 'USD'], ['7', 'JPY'], ['-7', 'JPY'], ['0.001', 'KWD'], ['-1.005', 'KWD']];
    for (const [amount, currency] of cases) {
      const minor = toMinor(money(amount), currency);
      expect(formatMinor(minor, currency)).toBe(formatMoney(money(amount), currency));
      expect(fromMinor(minor, currency).eq(amount)).toBe(true);
    }
    expect(() => toMinor(money('0.005'), 'USD')).toThrow(/not rounded/);
  });
  it('taxes in integers as decimal.js rounds base × rate, ties away from zero', () => {
    // A seeded generator: the same cases on every run.
    let seed = 7;
    const next = (bound: number) => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) % bound;
    for (let i = 0; i < 2000; i++) {
      const currency = ['USD', 'JPY', 'KWD'][next(3)]!;
      const base = fromMinor(BigInt(next(100_000_000)), currency);
      const rate = `0.${String(next(1_000_000)).padStart(1 + next(6), '0')}`;
      const [tax] = taxesFor(base, [{ name: 'T', rate }], currency);
      expect(tax!.amount.eq(decimalHalfUp(base.times(rate), currency)), `${base.toString()} × ${rate} ${currency}`).toBe(true);
    }
    // 0.125 exactly: a tie, rounded up; a negative base is taxed as zero.
    expect(taxesFor(money('1.25'), [{ name: 'VAT', rate: '0.1' }], 'USD')[0]!.amount.toString()).toBe('0.13');
    expect(taxesFor(money('-5'), [{ name: 'VAT', rate: '0.2' }], 'USD')[0]!.amount.isZero()).toBe(true);
  });
  it('reads fixed-point strings as exact integers at a scale', () => {
    expect(fixedUnits('-12.3', 3)).toBe(-12_300n);
    expect(fixedUnits('7', 2)).toBe(700n);
    expect(() => fixedUnits('0.001', 2)).toThrow(/fraction digits/);
    expect(() => fixedUnits('1e3', 2)).toThrow(/fixed-point/);
  });
});
