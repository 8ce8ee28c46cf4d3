import { hash } from 'node:crypto';

/**
 * Canonical JSON: the one way to turn a value into bytes that are hashed, so the same content
 * always gives the same hash, in every service. Its output is part of contracts
 * (`InvoiceFinalized.sha256`, `SlaCreditIssued.reportHash`, intake's Idempotency-Key request
 * hashes, metering's external event payload hashes): changing what it writes for any value a
 * caller passes changes those hashes, so it never changes.
 *
 * What it writes:
 * - objects: their own enumerable string keys in ascending order of UTF-16 code units (the order
 *   `<` and `Array.prototype.sort` give, not a locale order), each key written as
 *   `JSON.stringify` writes a string; a member whose value is `undefined` is left out, so an
 *   optional field that is absent and one set to `undefined` write the same bytes;
 * - arrays in their order;
 * - strings, `true`, `false` and `null` as `JSON.stringify` writes them (lone surrogates escaped);
 * - numbers: safe integers only (|n| ≤ 2^53 − 1), in decimal without exponent (−0 as `0`).
 *   Amounts, rates and percentages with a fraction travel as decimal strings (`"12.50"`), so
 *   the bytes never depend on binary floating point;
 * - no whitespace anywhere.
 *
 * What it refuses (throws `CanonicalJsonError` naming the path), because each would otherwise
 * be written silently as something else: a number that is not a safe integer (fractions,
 * NaN, ±Infinity, 2^53 and beyond), `bigint`, symbols, functions, `undefined` anywhere but as an
 * object member (at the top or as an array element), and objects that are not plain (a `Date`,
 * `Map`, class instance or typed array: their fields are not what `JSON.stringify` would write).
 *
 * Plain loops and concatenation: it runs once per ingested external event.
 */
export function canonicalJson(value: unknown): string {
  try {
    return write(value);
  } catch (error) {
    if (error instanceof Refused) throw new CanonicalJsonError(`$${error.segments.reverse().join('')}`, error.reason);
    throw error;
  }
}

/** A value canonical JSON cannot hold (see `canonicalJson`); `path` names where, from `$`. */
export class CanonicalJsonError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`canonical JSON cannot hold ${reason} at ${path}`);
  }
}

/** SHA-256 of a text's UTF-8 bytes, as 64 lowercase hex digits. */
export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

/** A refusal on its way out of the recursion, collecting the path (innermost first) only when one happens. */
class Refused extends Error {
  readonly segments: string[] = [];
  constructor(readonly reason: string) {
    super(reason);
  }
}

function refusedWithin(error: unknown, segment: string): unknown {
  if (error instanceof Refused) error.segments.push(segment);
  return error;
}

function write(value: unknown): string {
  const kind = typeof value;
  switch (kind) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) throw new Refused(`the number ${value} (integers only; a fraction travels as a decimal string)`);
      return String(value);
    case 'object':
      if (value === null) return 'null';
      if (Array.isArray(value)) return writeArray(value);
      return writeObject(value as object);
    case 'undefined':
      throw new Refused('undefined outside an object member');
    case 'bigint':
    case 'symbol':
    case 'function':
      throw new Refused(`a ${kind}`);
    default: {
      const unexpected: never = kind;
      throw new Refused(`a ${String(unexpected)}`);
    }
  }
}

function writeArray(array: readonly unknown[]): string {
  let out = '[';
  let i = 0;
  try {
    for (; i < array.length; i++) out += `${i > 0 ? ',' : ''}${write(array[i])}`;
  } catch (error) {
    throw refusedWithin(error, `[${i}]`);
  }
  return `${out}]`;
}

function writeObject(object: object): string {
  const prototype: unknown = Object.getPrototypeOf(object);
  if (prototype !== Object.prototype && prototype !== null) throw new Refused(`a ${(object.constructor as { name?: string } | undefined)?.name ?? 'non-plain'} object`);
  const record = object as Record<string, unknown>;
  // Default sort: UTF-16 code units, the order `<` gives.
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  let key = '';
  try {
    for (key of keys) {
      const item = record[key];
      if (item === undefined) continue;
      out += `${first ? '' : ','}${JSON.stringify(key)}:${write(item)}`;
      first = false;
    }
  } catch (error) {
    throw refusedWithin(error, `.${key}`);
  }
  return `${out}}`;
}
