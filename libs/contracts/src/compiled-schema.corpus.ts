import { STORABLE_TEXT_PATTERN } from './events';
import { MULTI_LINE_TEXT_PATTERN, SINGLE_LINE_TEXT_PATTERN } from './text';

/**
 * The corpus compiled-schema.spec.ts walks: deterministic values generated from a zod schema's
 * definition (`sample`), and mutations of them (`mutants`: fields removed, null, wrong types,
 * strings at their length bounds in ASCII and astral code points, regex violators, text with
 * control characters and lone surrogates, edge ISO date-times, numbers at and past their bounds,
 * unknown keys, arrays at their bounds, enum outsiders). Apart from the spec, so the spec reads as
 * what it proves; only tests import it.
 */

export type Def = { type: string; [key: string]: unknown };
export type Schema = { _zod: { def: Def; optin?: string; optout?: string; values?: Set<unknown>; traits: Set<string> } };
export type CheckDef = { check?: string; [key: string]: unknown };

export const asSchema = (schema: unknown) => schema as Schema;

/** Deterministic PRNG (mulberry32) so every run walks the same corpus. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export type Rng = () => number;
export const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
export const between = (rng: Rng, low: number, high: number) => low + Math.floor(rng() * (high - low + 1));

export const validInstants = ['2026-11-01T00:00:00.000Z', '2024-02-29T23:59:59.999Z', '2026-01-01T00:00:00Z', '2026-12-31T23:59:59.5Z', '2000-02-29T12:00:00.123456Z'];
export const edgeInstants = [
  '2026-02-29T00:00:00Z',
  '2024-02-29T00:00:00Z',
  '1900-02-29T00:00:00Z',
  '2000-02-29T00:00:00Z',
  '2026-04-31T00:00:00Z',
  '2026-01-01T00:00:00.123Z',
  '2026-01-01T00:00:00.1234567890Z',
  '2026-01-01T00:00:00.Z',
  '2026-01-01T00:00:00+01:00',
  '2026-01-01T00:00:00+00:00',
  '2026-01-01T00:00:00-05:30',
  '2026-01-01T00:00:00',
  '2026-01-01T00:00Z',
  '2026-01-01',
  '2026-13-01T00:00:00Z',
  '2026-00-10T00:00:00Z',
  '2026-01-01T24:00:00Z',
  '2026-01-01T23:60:00Z',
  '2026-01-01T00:00:60Z',
  '2026-01-01t00:00:00z',
  '2026-01-01 00:00:00Z',
  ' 2026-01-01T00:00:00Z',
  '2026-01-01T00:00:00Z ',
  '2026-01-01T00:00:00Z\n',
  '+02026-01-01T00:00:00Z',
  '0000-01-01T00:00:00Z',
  '9999-12-31T23:59:59.999Z',
];

/** Samplers for the regexes the catalogue uses; an unknown regex fails the test so its sampler gets written. */
export const idAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
export function regexSample(pattern: RegExp, rng: Rng, low: number, high: number): string {
  if (pattern === SINGLE_LINE_TEXT_PATTERN || pattern === MULTI_LINE_TEXT_PATTERN || pattern === STORABLE_TEXT_PATTERN) {
    // Storable text in every plane: ASCII, Latin, astral pairs, and for multi-line text tabs and line breaks.
    const alphabet = pattern === SINGLE_LINE_TEXT_PATTERN ? ['a', 'Z', ' ', 'é', astral, '\u2028', '\ufeff'] : ['a', ' ', 'é', astral, '\t', '\n', '\r'];
    return Array.from({ length: between(rng, low, Math.min(high, low + 12)) }, () => pick(rng, alphabet)).join('');
  }
  switch (pattern.source) {
    case '^[A-Za-z0-9_-]+$': {
      const length = between(rng, Math.max(low, 1), Math.min(high, Math.max(low, 1) + 24));
      return Array.from({ length }, () => pick(rng, [...idAlphabet])).join('');
    }
    case '^\\d{4}-\\d{2}$':
      return pick(rng, ['2026-11', '1999-01', '0000-99']);
    case '^\\d+(\\.\\d+)?$':
      return pick(rng, ['0', '12', '12.5', '0.000001', '1000000.25']);
    case '^(0(\\.\\d+)?|1(\\.0+)?)$':
      return pick(rng, ['0', '0.2', '0.19', '1', '1.000']);
    default:
      throw new Error(`no sampler for regex ${pattern.source}: add one to compiled-schema.spec.ts`);
  }
}
export const regexViolators = ['a.b', 'a b', '', 'ä', '😀', 'A\n', '1.', '.5', '2026-1', '-', '1.0.0', '01', '2'];
/**
 * Text at the edges of the storable-text rules: every kind of control character (C0, DEL, C1,
 * U+0000 alone and inside text), lone surrogates (high, low, reversed pair, at either end),
 * well-formed pairs, and the line separators and format characters that are allowed.
 */
export const textEdges = [
  '\u0000',
  'a\u0000b',
  '\u0001',
  '\u001f',
  'a\tb',
  'a\nb',
  'a\rb',
  '\r\n',
  '\u000b',
  '\u000c',
  '\u007f',
  '\u0080',
  '\u0085',
  '\u009f',
  '\u00a0',
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  'a\ud800',
  '\udc00a',
  '\udc00\ud800',
  '\ud83d\ude00',
  '\ud800\ud800\udc00',
  '\u2028',
  '\u2029',
  '\ufeff',
  '\ufffe',
  '\uffff',
  '\u{10ffff}',
  '\u{e0001}',
];

export interface StringBounds {
  low: number;
  high: number;
  exact?: number;
  pattern?: RegExp;
  datetime: boolean;
}
export function stringBounds(schema: Schema): StringBounds {
  const def = schema._zod.def;
  const checks = [...(schema._zod.traits.has('$ZodCheck') ? [def] : []), ...((def.checks as Schema[] | undefined) ?? []).map((check) => check._zod.def as CheckDef)];
  const bounds: StringBounds = { low: 0, high: 40, datetime: false };
  for (const check of checks) {
    if (check.check === 'min_length') bounds.low = Number(check.minimum);
    if (check.check === 'max_length') bounds.high = Number(check.maximum);
    if (check.check === 'length_equals') bounds.exact = Number(check.length);
    if (check.check === 'string_format' && check.format === 'datetime') bounds.datetime = true;
    else if (check.check === 'string_format') bounds.pattern = check.pattern as RegExp;
  }
  return bounds;
}
export function numberBounds(schema: Schema): { low: number; high: number; integer: boolean; values: number[] } {
  const bounds = { low: -1000, high: 1000, integer: false, values: [] as number[] };
  const def = schema._zod.def;
  const checks = [...(schema._zod.traits.has('$ZodCheck') ? [def] : []), ...((def.checks as Schema[] | undefined) ?? []).map((c) => c._zod.def as CheckDef)];
  for (const check of checks) {
    if (check.check === 'number_format') bounds.integer = true;
    const value = Number(check.value);
    if (check.check === 'greater_than') {
      bounds.low = check.inclusive ? value : value + 1;
      bounds.values.push(value - 1, value, value + 1, value - 0.5, value + 0.5);
    }
    if (check.check === 'less_than') {
      bounds.high = check.inclusive ? value : value - 1;
      bounds.values.push(value - 1, value, value + 1, value - 0.5, value + 0.5);
    }
  }
  return bounds;
}

export const astral = '😀';
export function text(rng: Rng, length: number): string {
  // Some strings in astral code points (two UTF-16 units each): zod counts code points.
  const alphabet = rng() < 0.3 ? [astral, 'é', 'a'] : ['a', 'b', 'Z', ' ', '.'];
  return Array.from({ length }, () => pick(rng, alphabet)).join('');
}

/** A valid value for `schema`, walking its zod definition. */
export function sample(schema: Schema, rng: Rng): unknown {
  const def = schema._zod.def;
  switch (def.type) {
    case 'string': {
      const bounds = stringBounds(schema);
      if (bounds.datetime) return pick(rng, validInstants);
      if (bounds.pattern) return regexSample(bounds.pattern, rng, bounds.low, bounds.high);
      if (bounds.exact !== undefined) return text(rng, bounds.exact);
      return text(rng, between(rng, bounds.low, Math.min(bounds.high, bounds.low + 12)));
    }
    case 'number': {
      const bounds = numberBounds(schema);
      const value = Math.min(between(rng, bounds.low, Math.min(bounds.high, bounds.low + 5000)), bounds.high);
      return bounds.integer || value + 0.25 > bounds.high ? value : value + 0.25;
    }
    case 'boolean':
      return rng() < 0.5;
    case 'enum':
    case 'literal':
      return pick(rng, [...schema._zod.values!]);
    case 'unknown':
      return pick(rng, [{ a: 1, b: [true, null] }, 'text', 42, null, [1, 2]]);
    case 'optional':
      return rng() < 0.3 ? undefined : sample(def.innerType as Schema, rng);
    case 'nullable':
      return rng() < 0.2 ? null : sample(def.innerType as Schema, rng);
    case 'default':
      return rng() < 0.4 ? undefined : sample(def.innerType as Schema, rng);
    case 'array': {
      const bounds = stringBounds(schema);
      const length = bounds.exact ?? between(rng, bounds.low, Math.min(bounds.high, bounds.low + 3));
      return Array.from({ length }, () => sample(def.element as Schema, rng));
    }
    case 'record': {
      const out: Record<string, unknown> = {};
      for (let i = between(rng, 0, 3); i > 0; i--) out[sample(def.keyType as Schema, rng) as string] = sample(def.valueType as Schema, rng);
      return out;
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      const shape = def.shape as Record<string, Schema>;
      for (const key of Object.keys(shape)) {
        const value = sample(shape[key]!, rng);
        // An optional or defaulted field is mostly left out rather than set to undefined.
        if (value === undefined && rng() < 0.8) continue;
        out[key] = value;
      }
      return out;
    }
    default:
      throw new Error(`no sampler for zod type ${def.type}`);
  }
}

export const genericVariants = (): unknown[] => [undefined, null, true, false, 0, 1, -1, 1.5, NaN, Infinity, '', 'x', [], {}, [1], { a: 1 }, new Date(0), Object.create(null)];
export const numberVariants = [0, -0, 1, -1, 1.5, -1.5, 2, 100, 1000, 1001, NaN, Infinity, -Infinity, 2 ** 53 - 1, 2 ** 53, -(2 ** 53) + 1, -(2 ** 53), 1e308, Number.MAX_VALUE, Number.MIN_VALUE, '1', '0'];

/** Alternative values at one node: valid ones near the bounds and invalid ones of every kind. */
export function variants(schema: Schema, rng: Rng): unknown[] {
  const def = schema._zod.def;
  const out = genericVariants();
  switch (def.type) {
    case 'string': {
      const bounds = stringBounds(schema);
      const lengths = [bounds.low, bounds.high, ...(bounds.exact !== undefined ? [bounds.exact] : [])].flatMap((n) => [n - 1, n, n + 1]).filter((n) => n >= 0);
      for (const n of lengths) out.push('a'.repeat(n), astral.repeat(n), `${astral.repeat(Math.max(n - 1, 0))}a`, 'é'.repeat(n));
      if (bounds.pattern) out.push(...regexViolators, ...Array.from({ length: 4 }, () => regexSample(bounds.pattern!, rng, bounds.low, bounds.high)));
      // Control characters and lone surrogates alone and padded to the bounds (a length check and the pattern both decide).
      if (bounds.pattern) out.push(...textEdges, ...textEdges.map((edge) => `${'a'.repeat(Math.max(bounds.low - 1, 0))}${edge}`));
      if (bounds.pattern?.source === '^[A-Za-z0-9_-]+$') out.push('A'.repeat(bounds.high), 'A'.repeat(bounds.high + 1), `${'A'.repeat(bounds.high)}.`);
      if (bounds.datetime) out.push(...validInstants, ...edgeInstants);
      return out;
    }
    case 'number':
      return [...out, ...numberVariants, ...numberBounds(schema).values];
    case 'enum':
    case 'literal': {
      const values = [...schema._zod.values!];
      return [...out, ...values, ...values.map((v) => (typeof v === 'string' ? v.toUpperCase() : v)), ...values.map((v) => (typeof v === 'string' ? ` ${v}` : typeof v === 'number' ? -v : !v)), 'outsider', 'application/xml', '1.0 ', 1.0];
    }
    case 'array': {
      const bounds = stringBounds(schema);
      const lengths = [bounds.low, Math.min(bounds.high, 70), ...(bounds.exact !== undefined ? [bounds.exact] : [])].flatMap((n) => [n - 1, n, n + 1]).filter((n) => n >= 0);
      for (const n of lengths) out.push(Array.from({ length: n }, () => sample(def.element as Schema, rng)));
      out.push(new Array(2), [undefined]);
      return out;
    }
    case 'record': {
      const valid = sample(schema, rng) as Record<string, unknown>;
      out.push({ ...valid, 'a.b': sample(def.valueType as Schema, rng) }, { ...valid, '': sample(def.valueType as Schema, rng) }, { ...valid, ['k'.repeat(129)]: sample(def.valueType as Schema, rng) });
      out.push({ ...valid, [Symbol('s')]: sample(def.valueType as Schema, rng) }, JSON.parse('{"__proto__": {"x": 1}, "7": 1}'), { 12: sample(def.valueType as Schema, rng), b: sample(def.valueType as Schema, rng) });
      out.push(Object.assign(Object.create({ inherited: 'x' }) as object, valid), [valid]);
      return out;
    }
    default:
      return out;
  }
}

/** Whole-value mutants of `value` (a valid value of `schema`): every node replaced by its variants, object keys removed, added, reordered. */
export function mutants(schema: Schema, value: unknown, rng: Rng, limit = 4000): unknown[] {
  const out: unknown[] = [];
  const walk = (node: Schema, current: unknown, rebuild: (replacement: unknown) => unknown) => {
    if (out.length >= limit) return;
    for (const variant of variants(node, rng)) out.push(rebuild(variant));
    const def = node._zod.def;
    if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default') {
      if (current !== undefined && current !== null) walk(def.innerType as Schema, current, rebuild);
      return;
    }
    if (def.type === 'object' && typeof current === 'object' && current !== null) {
      const object = current as Record<string, unknown>;
      const shape = def.shape as Record<string, Schema>;
      const without = (key: string) => Object.fromEntries(Object.entries(object).filter(([k]) => k !== key));
      out.push(rebuild(Object.fromEntries(Object.entries(object).reverse())));
      out.push(rebuild({ ...object, extra: 'unknown key', nested: { deep: 1 } }));
      out.push(rebuild({ extra: 1, ...object }));
      out.push(rebuild(JSON.parse(`{"__proto__": {"polluted": true}, ${JSON.stringify(object).slice(1)}`)));
      out.push(rebuild(Object.create(object)));
      for (const key of Object.keys(shape)) {
        out.push(rebuild(without(key)), rebuild({ ...object, [key]: undefined }));
        const child = object[key] === undefined ? sample(shape[key]!, rng) : object[key];
        walk(shape[key]!, child, (replacement) => rebuild({ ...object, [key]: replacement }));
      }
      return;
    }
    if (def.type === 'array' && Array.isArray(current) && current.length > 0) {
      walk(def.element as Schema, current[0], (replacement) => rebuild([replacement, ...current.slice(1)]));
      return;
    }
    if (def.type === 'record' && typeof current === 'object' && current !== null) {
      const record = current as Record<string, unknown>;
      const key = Object.keys(record)[0];
      if (key === undefined) return;
      walk(def.valueType as Schema, record[key], (replacement) => rebuild({ ...record, [key]: replacement }));
      for (const badKey of variants(def.keyType as Schema, rng).filter((k): k is string => typeof k === 'string')) out.push(rebuild({ ...record, [badKey]: record[key] }));
    }
  };
  walk(schema, value, (replacement) => replacement);
  return out;
}

/** Keys in order at every depth, including keys whose value is undefined (JSON.stringify drops those). */
