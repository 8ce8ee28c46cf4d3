import querystring from 'node:querystring';
import { z } from 'zod';
import { SINGLE_LINE_TEXT_PATTERN } from '@fastgpu/contracts';
import { ApiError, badRequest } from './errors';

/**
 * Strict parsing of what arrives in a URL: every query parameter at most once, and periods,
 * dates, instants, time zones and integers read exactly or refused with 400 and the parameter
 * as `field`. Nothing is rolled over (`2026-13` is not 2027-01), nothing is guessed (`0000-01`
 * is not 1900), nothing is coerced (`1e3`, ` 12`, `0x10` are not integers).
 */

/** Query parameters one request may carry; more is refused (no route takes more than a handful). */
export const QUERY_PARAMETERS_MAX = 64;
/** Periods, dates and instants: from the Unix epoch to the last four-digit year. */
export const YEAR_MIN = 1970;
export const YEAR_MAX = 9999;
/** Longest IANA zone name accepted (the longest in tzdata is 32 characters). */
export const TIME_ZONE_LENGTH_MAX = 64;

/**
 * The querystring parser of every route (Fastify `routerOptions.querystringParser`): Node's own
 * parser into an object without a prototype (`?__proto__=` is a plain parameter), with repeated
 * names kept as arrays so `assertSingleValuedQuery` can name the repeated parameter.
 */
export function parseQueryString(raw: string): Record<string, string | string[]> {
  const parsed: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  if (raw.length === 0) return parsed;
  return Object.assign(parsed, querystring.parse(raw, '&', '=', { maxKeys: 0 }));
}

/**
 * Refuses a query where a parameter is given more than once (`?tenantId=a&tenantId=b`): no
 * route takes a list in the query, and picking one value would be a guess. Applied to every
 * request by the platform, before authentication and body parsing.
 */
export function assertSingleValuedQuery(query: unknown): void {
  if (!query || typeof query !== 'object') return;
  const names = Object.keys(query);
  if (names.length > QUERY_PARAMETERS_MAX) throw badRequest(`query: at most ${QUERY_PARAMETERS_MAX} parameters`, 'query');
  for (const name of names) {
    const value = (query as Record<string, unknown>)[name];
    if (Array.isArray(value)) throw badRequest(`${printable(name)}: given ${value.length} times; give it once`, printable(name));
  }
}

/** A parameter name as it may be echoed in a message or `field`: control characters escaped. */
function printable(name: string): string {
  const bounded = name.length > 64 ? `${name.slice(0, 64)}…` : name;
  return SINGLE_LINE_TEXT_PATTERN.test(bounded) ? bounded : JSON.stringify(bounded).slice(1, -1).replace(/[\p{Cc}\p{Cs}]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// ------------------------------------------------------------------ exact readers (pure)

export interface Period {
  year: number;
  month: number;
}
export interface CalendarDate extends Period {
  day: number;
}

const PERIOD = /^(\d{4})-(\d{2})$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** RFC 3339 date-time with a mandatory offset; fraction up to milliseconds. */
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-](\d{2}):(\d{2}))$/;
/** IANA names: segments starting with a capital (`Europe/Berlin`, `UTC`, `Etc/GMT+5`); Intl accepts lower case too, which would make two spellings of one zone. */
const TIME_ZONE = /^[A-Z][A-Za-z0-9_+-]*(?:\/[A-Z][A-Za-z0-9_+-]*)*$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function yearProblem(year: number): string | undefined {
  return year < YEAR_MIN || year > YEAR_MAX ? `year must be ${YEAR_MIN}…${YEAR_MAX}` : undefined;
}

/** `YYYY-MM` → the period, or why not. */
export function readPeriod(value: string): Period | string {
  const m = PERIOD.exec(value);
  if (!m) return 'must be a month as YYYY-MM';
  const year = Number(m[1]);
  const month = Number(m[2]);
  if (month < 1 || month > 12) return 'month must be 01…12';
  return yearProblem(year) ?? { year, month };
}

/** `YYYY-MM-DD` (a real calendar day) → the date, or why not. */
export function readDate(value: string): CalendarDate | string {
  const m = DATE.exec(value);
  if (!m) return 'must be a date as YYYY-MM-DD';
  const period = readPeriod(`${m[1]}-${m[2]}`);
  if (typeof period === 'string') return period;
  const day = Number(m[3]);
  if (day < 1 || day > daysInMonth(period.year, period.month)) return `day must be 01…${daysInMonth(period.year, period.month)}`;
  return { ...period, day };
}

/** An RFC 3339 instant with its offset (`2026-03-01T00:00:00Z`, `…+01:00`) → epoch ms, or why not. */
export function readInstant(value: string): number | string {
  const m = INSTANT.exec(value);
  if (!m) return 'must be an instant as YYYY-MM-DDThh:mm:ss[.sss] with Z or ±hh:mm';
  const date = readDate(`${m[1]}-${m[2]}-${m[3]}`);
  if (typeof date === 'string') return date;
  const [hours, minutes, seconds] = [Number(m[4]), Number(m[5]), Number(m[6])];
  if (hours > 23 || minutes > 59 || seconds > 59) return 'time must be 00:00:00…23:59:59';
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return 'offset must be -23:59…+23:59';
  const offsetMinutes = m[8] === 'Z' ? 0 : (m[8]!.startsWith('-') ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10]));
  const millis = Number((m[7] ?? '').padEnd(3, '0'));
  return Date.UTC(date.year, date.month - 1, date.day, hours, minutes, seconds, millis) - offsetMinutes * 60_000;
}

/** An IANA time zone name Intl knows, spelt as tzdata spells it → the name, or why not. */
export function readTimeZone(value: string): string | { problem: string } {
  if (value.length === 0 || value.length > TIME_ZONE_LENGTH_MAX || !TIME_ZONE.test(value)) return { problem: 'must be an IANA time zone name such as UTC or Europe/Berlin' };
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return value;
  } catch {
    return { problem: `unknown IANA time zone "${value}"` };
  }
}

/** A decimal integer written plainly (digits, an optional minus), within [min, max] → the number, or why not. */
export function readInteger(value: string, min: number, max: number): number | string {
  if (!/^-?\d{1,16}$/.test(value)) return 'must be an integer written in digits';
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) return `must be ${min}…${max}`;
  return n;
}

// ------------------------------------------------------------------ for controllers

/** The same readers as functions that throw 400 with `field` (for values read outside zod). */
export function parsePeriod(value: string, field: string): Period {
  const read = readPeriod(value);
  if (typeof read === 'string') throw malformed(field, read);
  return read;
}
export function parseDate(value: string, field: string): CalendarDate {
  const read = readDate(value);
  if (typeof read === 'string') throw malformed(field, read);
  return read;
}
export function parseInstant(value: string, field: string): number {
  const read = readInstant(value);
  if (typeof read === 'string') throw malformed(field, read);
  return read;
}
export function parseTimeZone(value: string, field: string): string {
  const read = readTimeZone(value);
  if (typeof read !== 'string') throw malformed(field, read.problem);
  return read;
}

function malformed(field: string, problem: string): ApiError {
  return badRequest(`${field}: ${problem}`, field);
}

/**
 * Marks a zod issue as malformed input, so `parseInput` answers 400 rather than 422:
 * `schema.refine(check, { message, params: MALFORMED })`.
 */
export const MALFORMED = { malformed: true } as const;

/** A string schema whose `problem(value)` names what is wrong, as a malformed (400) issue. */
function exact(problem: (value: string) => string | undefined) {
  return z.string().superRefine((value, ctx) => {
    const found = problem(value);
    if (found !== undefined) ctx.addIssue({ code: 'custom', message: found, params: MALFORMED });
  });
}
const problemOf = (read: unknown): string | undefined => (typeof read === 'string' ? read : undefined);

/** Zod schemas for query and path parameters; a bad value is 400 with the parameter as field. */
export const queryParam = {
  /** `YYYY-MM`, month 01…12, year 1970…9999. */
  period: () => exact((v) => problemOf(readPeriod(v))).describe('A month as YYYY-MM'),
  /** `YYYY-MM-DD`, a day that exists. */
  date: () => exact((v) => problemOf(readDate(v))).describe('A date as YYYY-MM-DD'),
  /** RFC 3339 with an offset. */
  instant: () => exact((v) => problemOf(readInstant(v))).describe('An instant as RFC 3339 with Z or ±hh:mm'),
  /** An IANA zone name as tzdata spells it. */
  timeZone: () =>
    exact((v) => {
      const read = readTimeZone(v);
      return typeof read === 'string' ? undefined : read.problem;
    }).describe('An IANA time zone, e.g. UTC or Europe/Berlin'),
  /** A plain decimal integer in [min, max], read into a number. */
  integer: (min: number, max: number) =>
    exact((v) => problemOf(readInteger(v, min, max)))
      .transform((v) => Number(v))
      .describe(`An integer ${min}…${max}`),
};
