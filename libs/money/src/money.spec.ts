/** Proves the shared money and GPU-time rules: exact splits, multiply-before-divide, half-up rounding. */
import { describe, expect, it } from 'vitest';
import { amountForGpuMs, formatMoney, gpuMs, HOUR_MS, money, roundToMinor, splitAt, splitAtHours } from './index';

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
