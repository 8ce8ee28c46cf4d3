/**
 * Proves the calendar windows: hours, days and months in IANA zones are exact half-open UTC
 * ranges around DST (743/745-hour months in Berlin, 23/25-hour days), half-hour offsets and a
 * 30-minute DST shift, and that windows partition a range so hours sum to days and days to months.
 */
import { describe, expect, it } from 'vitest';
import { HOUR_MS, DAY_MS } from './gpu-time';
import { assertTimeZone, boundariesOnUtcHours, formatLocal, isTimeZone, isWindowStart, offsetAt, windowContaining, windowsBetween } from './calendar';

const berlinMonth = (year: number, month: number) => {
  const start = windowContaining(Date.UTC(year, month, 15), 'month', 'Europe/Berlin');
  return start;
};
const lengthsH = (pieces: Array<{ startMs: number; endMs: number }>) => pieces.map((p) => (p.endMs - p.startMs) / HOUR_MS);

describe('calendar windows', () => {
  it('gives a Berlin month 743 hours in March and 745 in October', () => {
    const march = berlinMonth(2026, 2);
    const october = berlinMonth(2026, 9);
    expect(formatLocal(march.startMs, 'Europe/Berlin')).toBe('2026-03-01T00:00:00.000+01:00');
    expect(formatLocal(october.endMs, 'Europe/Berlin')).toBe('2026-11-01T00:00:00.000+01:00');
    expect(windowsBetween(march.startMs, march.endMs, 'hour', 'Europe/Berlin')).toHaveLength(743);
    expect(windowsBetween(october.startMs, october.endMs, 'hour', 'Europe/Berlin')).toHaveLength(745);
    expect((october.endMs - october.startMs) / HOUR_MS).toBe(745);
  });

  it('makes DST days 23 and 25 hours long and every hour window exactly one hour in whole-hour zones', () => {
    const spring = windowContaining(Date.UTC(2026, 2, 29, 12), 'day', 'Europe/Berlin');
    const autumn = windowContaining(Date.UTC(2026, 9, 25, 12), 'day', 'Europe/Berlin');
    expect((spring.endMs - spring.startMs) / HOUR_MS).toBe(23);
    expect((autumn.endMs - autumn.startMs) / HOUR_MS).toBe(25);
    const autumnHours = windowsBetween(autumn.startMs, autumn.endMs, 'hour', 'Europe/Berlin');
    expect(lengthsH(autumnHours).every((h) => h === 1)).toBe(true);
    // The repeated local hour 02:00 appears twice, once per offset.
    expect(autumnHours.map((w) => formatLocal(w.startMs, 'Europe/Berlin').slice(11, 16)).filter((t) => t === '02:00')).toHaveLength(2);
    const newYork = windowContaining(Date.UTC(2026, 2, 8, 12), 'day', 'America/New_York');
    expect((newYork.endMs - newYork.startMs) / HOUR_MS).toBe(23);
  });

  it('starts local hours at :30 UTC in Asia/Kolkata and gives Lord Howe one 30-minute hour', () => {
    const kolkata = windowsBetween(Date.UTC(2026, 5, 1, 0), Date.UTC(2026, 5, 1, 3), 'hour', 'Asia/Kolkata');
    expect(kolkata.map((w) => new Date(w.startMs).toISOString().slice(11, 16))).toEqual(['00:00', '00:30', '01:30', '02:30']);
    expect(boundariesOnUtcHours(Date.UTC(2026, 5, 1), Date.UTC(2026, 5, 2), 'hour', 'Asia/Kolkata')).toBe(false);
    expect(boundariesOnUtcHours(Date.UTC(2026, 5, 1), Date.UTC(2026, 7, 1), 'day', 'Europe/Berlin')).toBe(true);
    // Lord Howe moves clocks by 30 minutes: 02:00 → 02:30 on 2026-10-04 local.
    const day = windowContaining(Date.UTC(2026, 9, 4, 2), 'day', 'Australia/Lord_Howe');
    expect((day.endMs - day.startMs) / 60_000).toBe(23.5 * 60);
    const hours = lengthsH(windowsBetween(day.startMs, day.endMs, 'hour', 'Australia/Lord_Howe'));
    expect(hours.filter((h) => h === 0.5)).toHaveLength(1);
    expect(hours.reduce((a, b) => a + b, 0)).toBe(23.5);
  });

  it('is additive: hour windows tile days and day windows tile months exactly', () => {
    for (const tz of ['UTC', 'Europe/Berlin', 'America/Santiago', 'Asia/Kathmandu', 'Pacific/Chatham']) {
      const year = windowsBetween(Date.UTC(2025, 11, 20), Date.UTC(2027, 0, 10), 'month', tz);
      for (const month of year) {
        const days = windowsBetween(month.startMs, month.endMs, 'day', tz);
        expect(days[0]!.startMs).toBe(month.startMs);
        expect(days[days.length - 1]!.endMs).toBe(month.endMs);
        for (let i = 1; i < days.length; i++) expect(days[i]!.startMs).toBe(days[i - 1]!.endMs);
        const hoursInMonth = windowsBetween(month.startMs, month.endMs, 'hour', tz);
        const dayOfHour = hoursInMonth.map((h) => days.findIndex((d) => d.startMs <= h.startMs && h.endMs <= d.endMs));
        expect(dayOfHour.every((i) => i >= 0)).toBe(true);
      }
    }
  });

  it('clips the first and last window to the range and recognises window starts', () => {
    const from = Date.UTC(2026, 0, 1, 10, 15);
    const to = Date.UTC(2026, 0, 3, 5);
    const days = windowsBetween(from, to, 'day', 'UTC');
    expect(days).toEqual([
      { startMs: from, endMs: Date.UTC(2026, 0, 2) },
      { startMs: Date.UTC(2026, 0, 2), endMs: Date.UTC(2026, 0, 3) },
      { startMs: Date.UTC(2026, 0, 3), endMs: to },
    ]);
    expect(windowsBetween(to, from, 'day', 'UTC')).toEqual([]);
    expect(isWindowStart(Date.UTC(2026, 0, 1) - HOUR_MS, 'day', 'Europe/Berlin')).toBe(true);
    expect(isWindowStart(Date.UTC(2026, 0, 1), 'day', 'Europe/Berlin')).toBe(false);
    expect((windowContaining(Date.UTC(2028, 1, 10), 'month', 'UTC').endMs - Date.UTC(2028, 1, 1)) / DAY_MS).toBe(29);
  });

  it('knows IANA zones and offsets with seconds', () => {
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    expect(() => assertTimeZone('nope')).toThrow(/unknown time zone/);
    expect(offsetAt('Asia/Kolkata', Date.UTC(2026, 0, 1))).toBe(5.5 * HOUR_MS);
    expect(offsetAt('America/New_York', Date.UTC(2026, 6, 1))).toBe(-4 * HOUR_MS);
  });
});
