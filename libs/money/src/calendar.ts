import { DAY_MS, HOUR_MS, type Piece } from './gpu-time';

/**
 * Calendar windows in any IANA time zone, from Intl alone: hours, days and months as half-open
 * UTC instant ranges `[startMs, endMs)`, DST-correct. A zone only moves window boundaries;
 * usage itself stays in UTC instants.
 *
 * - An hour window is a run of instants sharing the local hour *and* the UTC offset, so a
 *   fall-back night has two one-hour windows labelled 02:00 (one per offset) and a spring-forward
 *   night has none for the skipped hour: a month in Europe/Berlin has 743 or 745 hours.
 *   In zones with a 30-minute offset (Asia/Kolkata) local hours start at :30 UTC; a 30-minute
 *   DST shift (Australia/Lord_Howe) gives one 30-minute window.
 * - Day and month windows are runs of instants sharing the local date / month: 23, 24 or 25
 *   hours for a day. A day whose midnight is skipped starts at the transition.
 * - Windows partition any range, so sums are additive: hours sum exactly to days, days to months.
 */
export const CalendarWindow = { hour: 'hour', day: 'day', month: 'month' } as const;
export type CalendarWindow = (typeof CalendarWindow)[keyof typeof CalendarWindow];
export const calendarWindows: readonly CalendarWindow[] = ['hour', 'day', 'month'];

/** Offsets are sampled once per this step; tzdata never changes offset twice within it. */
const OFFSET_SAMPLE_STEP_MS = DAY_MS;
/** Cached per-zone, per-UTC-year offset segments. */
const SEGMENT_CACHE_ENTRIES_MAX = 2000;
/** Bound on the span one call may enumerate (windows or offset samples). */
export const CALENDAR_RANGE_MS_MAX = 200 * 366 * DAY_MS;

const formatters = new Map<string, Intl.DateTimeFormat>();
/** Bound on cached formatters (one per zone in use). */
const FORMATTERS_MAX = 1000;

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    if (formatters.size >= FORMATTERS_MAX) formatters.clear();
    formatters.set(timeZone, f);
  }
  return f;
}

/** True when Intl knows the zone (any IANA name, e.g. "Europe/Berlin", "UTC"). */
export function isTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== 'string' || timeZone.length === 0 || timeZone.length > 64) return false;
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

export function assertTimeZone(timeZone: string): void {
  if (!isTimeZone(timeZone)) throw new RangeError(`unknown time zone "${timeZone}"`);
}

function isUtc(timeZone: string): boolean {
  return timeZone === 'UTC' || timeZone === 'Etc/UTC' || timeZone === 'Etc/GMT' || timeZone === 'GMT';
}

function floorDiv(a: number, b: number): number {
  return Math.floor(a / b);
}

/** `local − UTC` in milliseconds at an instant (seconds precision, as tzdata's LMT offsets need). */
export function offsetAt(timeZone: string, instantMs: number): number {
  if (isUtc(timeZone)) return 0;
  const seconds = floorDiv(instantMs, 1000) * 1000;
  const fields: Record<string, string> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(seconds))) fields[part.type] = part.value;
  let year = Number(fields.year);
  if (fields.era === 'BC' || fields.era === 'B') year = 1 - year;
  const date = new Date(Date.UTC(year, Number(fields.month) - 1, Number(fields.day), Number(fields.hour), Number(fields.minute), Number(fields.second)));
  // Date.UTC maps years 0–99 to the 1900s.
  if (year >= 0 && year < 100) date.setUTCFullYear(date.getUTCFullYear() - 1900);
  return date.getTime() - seconds;
}

export interface OffsetSegment extends Piece {
  offsetMs: number;
}

const segmentCache = new Map<string, OffsetSegment[]>();

/** The first instant in (lowMs, highMs] whose offset differs from the offset at lowMs. */
function transitionBetween(timeZone: string, lowMs: number, highMs: number, lowOffset: number): number {
  let low = lowMs;
  let high = highMs;
  // Transitions happen on whole seconds: search in seconds (bounded: ~27 steps for a day).
  while (high - low > 1000) {
    const middle = floorDiv(floorDiv(low + high, 2), 1000) * 1000;
    if (middle <= low) break;
    if (offsetAt(timeZone, middle) === lowOffset) low = middle;
    else high = middle;
  }
  return high;
}

/** Offset segments covering one UTC calendar year, cached. */
function yearSegments(timeZone: string, year: number): OffsetSegment[] {
  const key = `${timeZone}\u0000${year}`;
  const cached = segmentCache.get(key);
  if (cached) return cached;
  const startMs = Date.UTC(year, 0, 1);
  const endMs = Date.UTC(year + 1, 0, 1);
  const segments: OffsetSegment[] = [];
  let segmentStart = startMs;
  let offset = offsetAt(timeZone, startMs);
  for (let sample = startMs; sample < endMs; ) {
    const next = Math.min(sample + OFFSET_SAMPLE_STEP_MS, endMs);
    const nextOffset = offsetAt(timeZone, next);
    if (nextOffset !== offset) {
      const at = transitionBetween(timeZone, sample, next, offset);
      if (at < endMs) {
        segments.push({ startMs: segmentStart, endMs: at, offsetMs: offset });
        segmentStart = at;
        offset = offsetAt(timeZone, at);
        // Resume sampling from the transition: a second change in the same step is caught.
        sample = at;
        continue;
      }
    }
    sample = next;
  }
  segments.push({ startMs: segmentStart, endMs, offsetMs: offset });
  if (segmentCache.size >= SEGMENT_CACHE_ENTRIES_MAX) segmentCache.clear();
  segmentCache.set(key, segments);
  return segments;
}

/** Pieces of [fromMs, toMs) with a constant UTC offset, in order; adjacent pieces differ in offset. */
export function offsetSegments(timeZone: string, fromMs: number, toMs: number): OffsetSegment[] {
  assertRange(fromMs, toMs);
  if (toMs <= fromMs) return [];
  if (isUtc(timeZone)) return [{ startMs: fromMs, endMs: toMs, offsetMs: 0 }];
  assertTimeZone(timeZone);
  const out: OffsetSegment[] = [];
  const firstYear = new Date(fromMs).getUTCFullYear();
  const lastYear = new Date(toMs - 1).getUTCFullYear();
  for (let year = firstYear; year <= lastYear; year++) {
    for (const segment of yearSegments(timeZone, year)) {
      const startMs = Math.max(segment.startMs, fromMs);
      const endMs = Math.min(segment.endMs, toMs);
      if (endMs <= startMs) continue;
      const previous = out[out.length - 1];
      if (previous && previous.offsetMs === segment.offsetMs && previous.endMs === startMs) previous.endMs = endMs;
      else out.push({ startMs, endMs, offsetMs: segment.offsetMs });
    }
  }
  return out;
}

function assertRange(fromMs: number, toMs: number): void {
  if (!Number.isSafeInteger(fromMs) || !Number.isSafeInteger(toMs)) throw new RangeError('range bounds must be integer milliseconds');
  if (toMs - fromMs > CALENDAR_RANGE_MS_MAX) throw new RangeError(`range longer than ${CALENDAR_RANGE_MS_MAX} ms`);
}

/** The local calendar key of an instant for a window kind (wall-clock fields, plus the offset for hours). */
function localKey(wallMs: number, offsetMs: number, window: CalendarWindow): string {
  const d = new Date(wallMs);
  switch (window) {
    case 'hour':
      return `${floorDiv(wallMs, HOUR_MS)}@${offsetMs}`;
    case 'day':
      return String(floorDiv(wallMs, DAY_MS));
    case 'month':
      return `${d.getUTCFullYear()}-${d.getUTCMonth()}`;
    default: {
      const unreachable: never = window;
      throw new Error(`unknown window ${String(unreachable)}`);
    }
  }
}

/** Wall-clock starts of `window` strictly after wallFromMs and strictly before wallToMs. */
function wallBoundaries(wallFromMs: number, wallToMs: number, window: CalendarWindow): number[] {
  const out: number[] = [];
  switch (window) {
    case 'hour':
    case 'day': {
      const step = window === 'hour' ? HOUR_MS : DAY_MS;
      for (let b = (floorDiv(wallFromMs, step) + 1) * step; b < wallToMs; b += step) out.push(b);
      return out;
    }
    case 'month': {
      const from = new Date(wallFromMs);
      let year = from.getUTCFullYear();
      let month = from.getUTCMonth() + 1;
      for (;;) {
        if (month === 12) {
          year++;
          month = 0;
        }
        const b = Date.UTC(year, month, 1);
        if (b >= wallToMs) return out;
        out.push(b);
        month++;
      }
    }
    default: {
      const unreachable: never = window;
      throw new Error(`unknown window ${String(unreachable)}`);
    }
  }
}

/** Window boundaries strictly inside (fromMs, toMs), ascending. */
export function windowBoundaries(fromMs: number, toMs: number, window: CalendarWindow, timeZone: string): number[] {
  const boundaries: number[] = [];
  let previous: OffsetSegment | undefined;
  for (const segment of offsetSegments(timeZone, fromMs, toMs)) {
    const o = segment.offsetMs;
    // A boundary at the transition itself when the local key changes across it.
    if (previous && localKey(segment.startMs - 1 + previous.offsetMs, previous.offsetMs, window) !== localKey(segment.startMs + o, o, window)) {
      boundaries.push(segment.startMs);
    }
    for (const wall of wallBoundaries(segment.startMs + o, segment.endMs + o, window)) boundaries.push(wall - o);
    previous = segment;
  }
  return boundaries;
}

/** [fromMs, toMs) cut into calendar windows (the first and last clipped to the range). */
export function windowsBetween(fromMs: number, toMs: number, window: CalendarWindow, timeZone: string): Piece[] {
  if (toMs <= fromMs) return [];
  const cuts = windowBoundaries(fromMs, toMs, window, timeZone);
  const pieces: Piece[] = [];
  let cursor = fromMs;
  for (const cut of cuts) {
    pieces.push({ startMs: cursor, endMs: cut });
    cursor = cut;
  }
  pieces.push({ startMs: cursor, endMs: toMs });
  return pieces;
}

/** The whole window (not clipped) containing an instant. */
export function windowContaining(instantMs: number, window: CalendarWindow, timeZone: string): Piece {
  const spanMs = window === 'hour' ? 2 * DAY_MS : 64 * DAY_MS;
  const windows = windowsBetween(instantMs - spanMs, instantMs + spanMs, window, timeZone);
  const found = windows.find((w) => w.startMs <= instantMs && instantMs < w.endMs)!;
  return found;
}

/** True when `instantMs` starts a window of this kind in the zone. */
export function isWindowStart(instantMs: number, window: CalendarWindow, timeZone: string): boolean {
  return windowContaining(instantMs, window, timeZone).startMs === instantMs;
}

function pad(n: number, width = 2): string {
  return String(Math.abs(n)).padStart(width, '0');
}

/** ISO-8601 local time with its offset, e.g. `2026-10-25T02:00:00.000+01:00`. */
export function formatLocal(instantMs: number, timeZone: string): string {
  const o = offsetAt(timeZone, instantMs);
  const d = new Date(instantMs + o);
  const sign = o < 0 ? '-' : '+';
  const minutes = Math.abs(o) / 60_000;
  const offset = `${sign}${pad(floorDiv(minutes, 60))}:${pad(minutes % 60)}`;
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}${offset}`;
}

/** True when every window boundary of this zone and kind inside the range falls on a UTC hour. */
export function boundariesOnUtcHours(fromMs: number, toMs: number, window: CalendarWindow, timeZone: string): boolean {
  return windowBoundaries(fromMs, toMs, window, timeZone).every((b) => b % HOUR_MS === 0);
}
