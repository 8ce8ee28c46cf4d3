/**
 * GPU time rules, written once: integer milliseconds, half-open intervals [start, end),
 * `gpuMs = gpus × (end − start)`, split exactly at hour (and any other) boundaries.
 * Instants are UTC epoch milliseconds.
 */
import { HOUR_MS } from '@fastgpu/contracts';

export { HOUR_MS };
export const SECOND_MS = 1000;
export const DAY_MS = 24 * HOUR_MS;

export function assertInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be a safe integer, got ${value}`);
}

export function gpuMs(gpus: number, startMs: number, endMs: number): number {
  assertInteger('startMs', startMs);
  assertInteger('endMs', endMs);
  if (endMs < startMs) throw new Error(`interval ends (${endMs}) before it starts (${startMs})`);
  return gpuMsOfDuration(gpus, endMs - startMs);
}

/** GPU-ms of `gpus` held for `durationMs` (a billed or overrun duration rather than an interval). */
export function gpuMsOfDuration(gpus: number, durationMs: number): number {
  assertInteger('gpus', gpus);
  assertInteger('durationMs', durationMs);
  if (durationMs < 0) throw new Error(`duration ${durationMs} is negative`);
  const product = gpus * durationMs;
  // Past 2^53 the product is no longer an exact integer: refuse rather than round usage.
  assertInteger('gpuMs', product);
  return product;
}

export interface Piece {
  startMs: number;
  endMs: number;
}

/** Start of the UTC hour containing `ms`. */
export function hourStart(ms: number): number {
  return ms - (((ms % HOUR_MS) + HOUR_MS) % HOUR_MS);
}

/**
 * Splits [startMs, endMs) at every boundary strictly inside it. Boundaries need not be sorted.
 * The pieces are half-open, contiguous, and their lengths sum exactly to endMs − startMs.
 */
export function splitAt(startMs: number, endMs: number, boundaries: readonly number[]): Piece[] {
  if (endMs <= startMs) return [];
  const cuts = [...new Set(boundaries.filter((b) => b > startMs && b < endMs))].sort((a, b) => a - b);
  const pieces: Piece[] = [];
  let cursor = startMs;
  for (const cut of cuts) {
    pieces.push({ startMs: cursor, endMs: cut });
    cursor = cut;
  }
  pieces.push({ startMs: cursor, endMs });
  return pieces;
}

/** Bound on the hours one allocation may span when split (about 11 years). */
export const SPLIT_HOURS_MAX = 100_000;

/** Splits [startMs, endMs) at UTC hour boundaries: one piece per hour touched. */
export function splitAtHours(startMs: number, endMs: number): Array<Piece & { hourStartMs: number }> {
  if (endMs <= startMs) return [];
  const pieces: Array<Piece & { hourStartMs: number }> = [];
  let cursor = startMs;
  for (let i = 0; cursor < endMs; i++) {
    if (i >= SPLIT_HOURS_MAX) throw new Error(`interval spans more than ${SPLIT_HOURS_MAX} hours`);
    const hour = hourStart(cursor);
    const end = Math.min(hour + HOUR_MS, endMs);
    pieces.push({ hourStartMs: hour, startMs: cursor, endMs: end });
    cursor = end;
  }
  return pieces;
}

const digitAt = (s: string, i: number): number => {
  const d = s.charCodeAt(i) - 48;
  return d >= 0 && d <= 9 ? d : NaN;
};

/**
 * Epoch milliseconds of an RFC 3339 instant: exactly `Date.parse(iso)`. The form every publisher
 * writes, `YYYY-MM-DDTHH:MM:SS.sssZ` (toISOString's), is read digit by digit, several times
 * cheaper than Date.parse, which the replay called about three times per event; any other form
 * (days past the 28th, hour 24, years before 100) goes to Date.parse itself.
 */
export function instantMs(iso: string): number {
  if (iso.length !== 24 || iso.charCodeAt(4) !== 45 || iso.charCodeAt(7) !== 45 || iso.charCodeAt(10) !== 84 || iso.charCodeAt(13) !== 58 || iso.charCodeAt(16) !== 58 || iso.charCodeAt(19) !== 46 || iso.charCodeAt(23) !== 90) {
    return Date.parse(iso);
  }
  const year = digitAt(iso, 0) * 1000 + digitAt(iso, 1) * 100 + digitAt(iso, 2) * 10 + digitAt(iso, 3);
  const month = digitAt(iso, 5) * 10 + digitAt(iso, 6);
  const day = digitAt(iso, 8) * 10 + digitAt(iso, 9);
  const hour = digitAt(iso, 11) * 10 + digitAt(iso, 12);
  const minute = digitAt(iso, 14) * 10 + digitAt(iso, 15);
  const second = digitAt(iso, 17) * 10 + digitAt(iso, 18);
  const milli = digitAt(iso, 20) * 100 + digitAt(iso, 21) * 10 + digitAt(iso, 22);
  // NaN (a non-digit) fails every comparison and falls through too; Date.UTC reads years 0-99 as 19xx.
  if (!(year >= 100 && month >= 1 && month <= 12 && day >= 1 && day <= 28 && hour <= 23 && minute <= 59 && second <= 59 && milli >= 0)) return Date.parse(iso);
  return Date.UTC(year, month - 1, day, hour, minute, second, milli);
}
