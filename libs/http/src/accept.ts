import { ApiError, badRequest } from './errors';

// Content negotiation by `Accept` (RFC 9110 §12.5.1), the one rule for every route that offers a
// representation in more than one media type.
//
// - The header is a list of media ranges (`*/*`, `type/*`, `type/subtype`), each with optional
//   parameters and a weight `q` (0…1, at most three decimals; absent means 1).
// - An offered type takes the weight of the most specific range that matches it: `text/csv` over
//   `text/*` over `*/*`, and a range with parameters (`text/csv;charset=utf-8`) over the same range
//   without. A range with a parameter the offer lacks does not match it. When equally specific
//   ranges disagree (the header repeats itself), the lower weight holds.
// - `q=0` means "not acceptable": such a type is never served, whatever else the header says.
// - Among acceptable offers the highest weight wins, then the more specific matching range, then
//   the range named first in the header, then the server's order of the offers (its preference).
// - No header, or an empty one: the first offer (the server's default, JSON on every route).
// - Nothing acceptable: 406 `not_acceptable` with field `Accept`, naming what is offered. A header
//   that does not follow the grammar: 400 `invalid_request` with field `Accept` (the weight of a
//   malformed element cannot be known, so guessing could serve what the client refused).
//
// Type, subtype and parameter names compare case-insensitively, as do parameter values (the
// parameters clients send here, such as `charset`, are case-insensitive).

/** Elements one `Accept` header may hold; more is refused (browsers send about ten). */
export const ACCEPT_RANGES_MAX = 64;
/** Characters of one `Accept` header read at most (Node's header limit is far above; nobody needs this much). */
export const ACCEPT_LENGTH_MAX = 4096;

export interface MediaRange {
  /** Lower case; `*` for a wildcard. */
  type: string;
  subtype: string;
  /** Media-type parameters before the weight, names and values in lower case. */
  parameters: Readonly<Record<string, string>>;
  /** 0…1. */
  q: number;
  /** Position in the header, from 0. */
  index: number;
}

/** One representation a route offers: what the handler gets back, and its media type (`text/csv; charset=utf-8`). */
export interface MediaOffer<T> {
  value: T;
  mediaType: string;
}

/** RFC 9110 §5.6.2 token characters. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 9110 §12.4.2 qvalue. */
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/** Splits on `sep` outside quoted strings (a quoted parameter value may hold `,` or `;`). */
function splitOutsideQuotes(text: string, sep: ',' | ';'): string[] | undefined {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      current += c;
      if (c === '\\') {
        if (i + 1 >= text.length) return undefined;
        current += text[++i]!;
      } else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
      current += c;
    } else if (c === sep) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  if (quoted) return undefined;
  parts.push(current);
  return parts;
}

function unquote(value: string): string | undefined {
  if (!value.startsWith('"')) return TOKEN.test(value) ? value : undefined;
  if (value.length < 2 || !value.endsWith('"')) return undefined;
  const inner = value.slice(1, -1).replace(/\\(.)/g, '$1');
  return /^[\t\x20-\x7e\x80-\xff]*$/.test(inner) ? inner : undefined;
}

/**
 * Reads an `Accept` value into its media ranges, or says why it is not one. Empty list elements
 * are skipped (RFC 9110 §5.6.1); an empty header gives no ranges.
 */
export function parseAccept(value: string): MediaRange[] | string {
  if (value.length > ACCEPT_LENGTH_MAX) return `at most ${ACCEPT_LENGTH_MAX} characters`;
  const elements = splitOutsideQuotes(value, ',');
  if (!elements) return 'an unterminated quoted string';
  const ranges: MediaRange[] = [];
  for (const raw of elements) {
    const element = raw.trim();
    if (element === '') continue;
    if (ranges.length === ACCEPT_RANGES_MAX) return `at most ${ACCEPT_RANGES_MAX} media ranges`;
    const [range = '', ...params] = splitOutsideQuotes(element, ';')!.map((p) => p.trim());
    const slash = range.indexOf('/');
    const type = range.slice(0, slash).toLowerCase();
    const subtype = range.slice(slash + 1).toLowerCase();
    if (slash < 0 || !TOKEN.test(type) || !TOKEN.test(subtype)) return `"${printable(element)}" is not a media range (type/subtype, type/* or */*)`;
    if (type === '*' && subtype !== '*') return `"${printable(element)}": a wildcard type needs a wildcard subtype (*/*)`;
    const parameters: Record<string, string> = {};
    let q = 1;
    let weighted = false;
    for (const param of params) {
      const eq = param.indexOf('=');
      const name = param.slice(0, eq).toLowerCase();
      const rawValue = param.slice(eq + 1);
      const parsed = eq < 0 ? undefined : unquote(rawValue);
      if (eq < 0 || !TOKEN.test(name) || parsed === undefined) return `"${printable(element)}": parameter "${printable(param)}" is not name=value`;
      if (weighted) return `"${printable(element)}": the weight q must come last`;
      if (name === 'q') {
        if (!QVALUE.test(rawValue)) return `"${printable(element)}": q must be 0…1 with at most three decimals`;
        q = Number(rawValue);
        weighted = true;
      } else parameters[name] = parsed.toLowerCase();
    }
    ranges.push({ type, subtype, parameters, q, index: ranges.length });
  }
  return ranges;
}

/** Echoable text: control characters escaped, bounded. */
function printable(text: string): string {
  const bounded = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  // eslint-disable-next-line no-control-regex
  return bounded.replace(/[\x00-\x1f\x7f"\\]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// How specific a range is: `*/*` 0, `type/*` 1, `type/subtype` 2, plus one per parameter.
function specificity(range: MediaRange): number {
  return (range.type === '*' ? 0 : range.subtype === '*' ? 1 : 2) + Object.keys(range.parameters).length;
}

function parseOffer(mediaType: string): { type: string; subtype: string; parameters: Record<string, string> } {
  const [range = '', ...params] = mediaType.split(';').map((p) => p.trim());
  const [type = '', subtype = ''] = range.toLowerCase().split('/');
  const parameters: Record<string, string> = {};
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq > 0) parameters[param.slice(0, eq).trim().toLowerCase()] = param.slice(eq + 1).trim().replace(/^"|"$/g, '').toLowerCase();
  }
  return { type, subtype, parameters };
}

function matches(range: MediaRange, offer: ReturnType<typeof parseOffer>): boolean {
  if (range.type !== '*' && range.type !== offer.type) return false;
  if (range.subtype !== '*' && range.subtype !== offer.subtype) return false;
  return Object.entries(range.parameters).every(([name, value]) => offer.parameters[name] === value);
}

/**
 * The offer the ranges prefer, or undefined when none is acceptable (pure). No ranges (no header,
 * or an empty one) accept anything: the first offer.
 */
export function preferredOffer<T>(ranges: readonly MediaRange[], offers: readonly MediaOffer<T>[]): T | undefined {
  if (ranges.length === 0) return offers[0]?.value;
  let best: { value: T; q: number; specificity: number; index: number; order: number } | undefined;
  offers.forEach((offer, order) => {
    const parsed = parseOffer(offer.mediaType);
    // The most specific matching range decides this offer's weight; among equally specific ones, the lowest weight.
    let decisive: MediaRange | undefined;
    for (const range of ranges) {
      if (!matches(range, parsed)) continue;
      if (!decisive || specificity(range) > specificity(decisive) || (specificity(range) === specificity(decisive) && range.q < decisive.q)) decisive = range;
    }
    if (!decisive || decisive.q === 0) return;
    const candidate = { value: offer.value, q: decisive.q, specificity: specificity(decisive), index: decisive.index, order };
    const better =
      !best ||
      candidate.q > best.q ||
      (candidate.q === best.q && (candidate.specificity > best.specificity || (candidate.specificity === best.specificity && candidate.index < best.index)));
    if (better) best = candidate;
  });
  return best?.value;
}

/**
 * The representation to answer with, for a handler: `accept` as the request carries it (Node
 * joins repeated `Accept` lines with commas; an array is joined the same way). Throws 400 for a
 * malformed header and 406 when nothing offered is acceptable, both with field `Accept`.
 */
export function negotiateMediaType<T>(accept: string | readonly string[] | undefined, offers: readonly MediaOffer<T>[], what = 'this resource'): T {
  const value = typeof accept === 'string' ? accept : accept === undefined ? '' : accept.join(', ');
  const ranges = parseAccept(value);
  if (typeof ranges === 'string') throw badRequest(`Accept: ${ranges}`, 'Accept');
  const chosen = preferredOffer(ranges, offers);
  if (chosen === undefined) throw notAcceptable(offers, what);
  return chosen;
}

/** 406 naming the media types offered (without parameters). */
export function notAcceptable(offers: readonly MediaOffer<unknown>[], what = 'this resource'): ApiError {
  const types = offers.map((o) => o.mediaType.split(';')[0]!.trim());
  const listed = types.length > 1 ? `${types.slice(0, -1).join(', ')} or ${types.at(-1)}` : (types[0] ?? 'nothing');
  return new ApiError(406, 'not_acceptable', `${what} is available as ${listed}; the Accept header allows none of them`, 'Accept');
}
