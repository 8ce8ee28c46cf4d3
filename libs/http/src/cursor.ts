import { z } from 'zod';
import { MALFORMED, queryParam } from './query';

/**
 * Keyset pages for list routes: every list is ordered by (time, id), newest first, and a page
 * ends with `nextCursor`, which names the last row it holds; the next page starts after it. So
 * walking the pages yields every row once, also while rows are added (a new row lands before or
 * after the walk's position, never twice), and a page costs the same at any depth.
 *
 * A cursor is the base64url of `[list, time, id]`: opaque to clients, and independent of the
 * caller and the filters. It carries no tenant: the tenant always comes from the key and every
 * page query is scoped by it, so a cursor from another tenant only positions the caller within
 * its own rows and can never reveal another tenant's. It is read strictly: anything that is not
 * exactly a cursor of this list (another list's, edited, re-padded, a time or id of the wrong
 * shape) is 400 with field `cursor`.
 */

/** Rows one page holds at most, and by default. */
export const PAGE_LIMIT_MAX = 500;
export const PAGE_LIMIT_DEFAULT = 100;
/** Longest cursor accepted (one is about 100 characters). */
export const CURSOR_LENGTH_MAX = 512;
/** Instants a cursor may carry: the Unix epoch to the end of year 9999, like every instant the API reads. */
const INSTANT_MS_MAX = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/** Ids a cursor may carry: the characters and length every id of the API has. */
const CURSOR_ID = /^[A-Za-z0-9_-]{1,128}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** Where a page ends: the sort key of its last row. */
export interface PagePosition<T extends number | string = number | string> {
  time: T;
  id: string;
}

export function encodeCursor(list: string, position: PagePosition): string {
  return Buffer.from(JSON.stringify([list, position.time, position.id]), 'utf8').toString('base64url');
}

/** The position a cursor of `list` names, or why it is not one. `readTime` checks the time part (undefined: wrong). */
export function decodeCursor<T extends number | string>(list: string, cursor: string, readTime: (value: unknown) => T | undefined): PagePosition<T> | string {
  const problem = 'not a cursor of this list (give nextCursor exactly as a page of this list returned it)';
  if (cursor.length === 0 || cursor.length > CURSOR_LENGTH_MAX || !BASE64URL.test(cursor)) return problem;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return problem;
  }
  if (!Array.isArray(value) || value.length !== 3 || value[0] !== list || typeof value[2] !== 'string' || !CURSOR_ID.test(value[2])) return problem;
  const time = readTime(value[1]);
  if (time === undefined) return problem;
  const position = { time, id: value[2] };
  // One spelling per position: a cursor that is not our own encoding was made elsewhere.
  return encodeCursor(list, position) === cursor ? position : problem;
}

/** The time part of a cursor as epoch milliseconds. */
export function cursorInstantMs(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= INSTANT_MS_MAX ? value : undefined;
}

/** The time part of a cursor as a billing period `YYYY-MM`. */
export function cursorPeriod(value: unknown): string | undefined {
  return typeof value === 'string' && /^\d{4}-(0[1-9]|1[0-2])$/.test(value) ? value : undefined;
}

/** Query parameters of every paged list, as zod schemas (a bad value is 400 with the parameter as field). */
export const pageParam = {
  /** Rows per page, 1…PAGE_LIMIT_MAX, default PAGE_LIMIT_DEFAULT. */
  limit: () => queryParam.integer(1, PAGE_LIMIT_MAX).default(PAGE_LIMIT_DEFAULT).describe(`Rows per page, 1…${PAGE_LIMIT_MAX} (default ${PAGE_LIMIT_DEFAULT})`),
  /** The previous page's `nextCursor`, read into its position. */
  cursor: <T extends number | string>(list: string, readTime: (value: unknown) => T | undefined) =>
    z
      .string()
      .transform((value, ctx) => {
        const position = decodeCursor(list, value, readTime);
        if (typeof position === 'string') {
          ctx.addIssue({ code: 'custom', message: position, params: MALFORMED });
          return z.NEVER;
        }
        return position;
      })
      .describe("The previous page's nextCursor, as given (opaque)"),
};

/** `nextCursor` in a page's body: give it as `cursor` for the next page; null on the last page. */
export const nextCursorSchema = z.string().nullable().describe('Give as `cursor` to read the next page; null on the last page. A page may hold fewer rows than `limit` and still have a next one');

/** A page of `limit + 1` rows read → the page and its `nextCursor` (the extra row only says that more follow). */
export function pageOf<R>(rows: readonly R[], limit: number, list: string, positionOf: (row: R) => PagePosition): { rows: R[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { rows: page, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(list, positionOf(last)) : null };
}
