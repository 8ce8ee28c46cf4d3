/**
 * GPU time rules, written once: integer milliseconds, half-open intervals [start, end),
 * `gpuMs = gpus × (end − start)`, split exactly at hour (and any other) boundaries.
 * Instants are UTC epoch milliseconds.
 */
export const SECOND_MS = 1000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

export function assertInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be a safe integer, got ${value}`);
}

export function gpuMs(gpus: number, startMs: number, endMs: number): number {
  assertInteger('gpus', gpus);
  assertInteger('startMs', startMs);
  assertInteger('endMs', endMs);
  if (endMs < startMs) throw new Error(`interval ends (${endMs}) before it starts (${startMs})`);
  const product = gpus * (endMs - startMs);
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
