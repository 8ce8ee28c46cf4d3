import { z } from 'zod';
import { util } from 'zod/v4/core';

/**
 * A compiled fast path for zod 4 schemas: `compileSchema(schema)` walks `schema._zod.def` once
 * and generates (with `new Function`) one validator per schema whose accepted output is exactly
 * `schema.safeParse(value).data` — unknown object keys stripped, `.default()` values filled with
 * a fresh copy (zod's own `defaultValue` getter, read each time), zod's key order — without
 * zod's payload/issue objects. It answers only "accepted, with this output" or "rejected": the
 * reason text for a rejection comes from zod itself (callers fall back to `safeParse`).
 *
 * Only the zod features the event catalogue and the envelope use are supported. Anything else
 * (refine, transform, union, pipe, coerce, catchall, …) makes `compileSchema` throw, naming the
 * feature and the path, so a schema change fails loudly instead of being validated wrongly.
 *
 * Semantics follow zod 4.x's source (node_modules/zod/v4/core/schemas.js and checks.js):
 * string lengths are counted in code points (zod's `util.codePointLength`), `z.number()` rejects
 * NaN and ±Infinity, `.int()` means a safe integer, ISO date-times use the regex zod put on the
 * def, and object fields follow zod's optin/optout rules for absent and undefined keys.
 *
 * Why a fast path: zod's `safeParse` cost about 3 s of CPU per 1M replayed events (payload and
 * issue objects, output clones), most of a rebuild's decoding. The bench case that shows it is
 * `npm run bench -- metering`, line "replay into Postgres (npm run replay -- usage)" and its
 * replay/raw ratio (the decode runs on every replayed event); `reliability`'s "read+decode only"
 * rate is the same path on the SLA replay. The plain reference is the zod schema itself:
 * `decodeValueWithZod` in codec.ts, which the compiled path must equal (compiled-schema.spec.ts:
 * a generated corpus of values and mutants per catalogue type, and a fast-check property over
 * arbitrary JSON). It stays at ~400 lines in one file: the walk of zod's defs and the code it
 * generates change together with zod, and only with it.
 */

export type CompiledValidator = (value: unknown) => { ok: true; data: unknown } | { ok: false };

/** Thrown at compile time for a schema feature the compiler does not reproduce exactly. */
export class UnsupportedSchemaError extends Error {
  constructor(
    readonly feature: string,
    readonly path: string,
  ) {
    super(`compileSchema: unsupported zod feature ${feature} at ${path || '(root)'}`);
    this.name = 'UnsupportedSchemaError';
  }
}

interface ZodInternals {
  def: Record<string, unknown> & { type: string };
  traits: Set<string>;
  optin?: 'optional' | 'defaulted';
  optout?: 'optional';
  values?: Set<unknown>;
}
type AnySchema = { _zod: ZodInternals };
type CheckDef = Record<string, unknown> & { check?: string };

/** Private sentinel a generated function returns for "rejected"; never a value a caller can pass in. */
const FAIL: unique symbol = Symbol('compiled-schema.fail');
const rejected = Object.freeze({ ok: false as const });

/**
 * zod's shared default `when` for length checks (run on any non-nullish value with a length:
 * always, for the strings and arrays checked here), read off a real zod check so an identity
 * test tells it apart from a custom `when`, which is refused.
 */
const zodDefaultLengthWhen: unknown = ((z.string().min(1) as unknown as AnySchema)._zod.def.checks as AnySchema[])[0]!._zod.def.when;

const numberFormatRanges = util.NUMBER_FORMAT_RANGES as Record<string, [number, number]>;
/** String formats whose zod check is exactly `def.pattern.test(value)` (no URL/IP parsing). */
const patternFormats = new Set(['regex', 'datetime', 'date', 'time']);

const allowedDefKeys: Record<string, ReadonlySet<string>> = {
  string: new Set(['type', 'checks', 'error', 'coerce', 'format', 'check', 'pattern', 'offset', 'local', 'precision', 'abort']),
  number: new Set(['type', 'checks', 'error', 'coerce', 'format', 'check', 'abort']),
  boolean: new Set(['type', 'checks', 'error', 'coerce']),
  enum: new Set(['type', 'checks', 'error', 'entries']),
  literal: new Set(['type', 'checks', 'error', 'values']),
  unknown: new Set(['type', 'checks', 'error']),
  any: new Set(['type', 'checks', 'error']),
  array: new Set(['type', 'checks', 'error', 'element']),
  record: new Set(['type', 'checks', 'error', 'keyType', 'valueType', 'mode', 'partial']),
  object: new Set(['type', 'checks', 'error', 'shape', 'catchall']),
  optional: new Set(['type', 'checks', 'error', 'innerType']),
  nullable: new Set(['type', 'checks', 'error', 'innerType']),
  default: new Set(['type', 'checks', 'error', 'innerType', 'defaultValue']),
};

/** A compiled node: either a predicate on the input (the output is the input itself) or a generated function returning the output or FAIL. */
type Node = { kind: 'predicate'; test: (input: string) => string } | { kind: 'function'; name: string };

class Compiler {
  readonly functions: string[] = [];
  readonly references: unknown[] = [];
  private functionCount = 0;
  private readonly lengthWhen: unknown;

  constructor(lengthWhen: unknown) {
    this.lengthWhen = lengthWhen;
  }

  reference(value: unknown): string {
    let index = this.references.indexOf(value);
    if (index < 0) index = this.references.push(value) - 1;
    return `refs[${index}]`;
  }

  newFunction(body: string): string {
    const name = `f${this.functionCount++}`;
    this.functions.push(`function ${name}(v) {\n${body}\n}`);
    return name;
  }

  /** Code evaluating `node` on `input` into `result` (output) and `ok` (boolean). */
  evaluate(node: Node, input: string, result: string, ok: string): string {
    return node.kind === 'predicate' ? `${ok} = ${node.test(input)}; ${result} = ${input};` : `${result} = ${node.name}(${input}); ${ok} = ${result} !== FAIL;`;
  }

  /** Wraps any node as a function name (for array elements, record values, defaults). */
  asFunction(node: Node): string {
    if (node.kind === 'function') return node.name;
    return this.newFunction(`return ${node.test('v')} ? v : FAIL;`);
  }

  compile(schema: AnySchema, path: string): Node {
    const internals = schema?._zod;
    if (!internals?.def || !internals.traits?.has('$ZodType')) throw new UnsupportedSchemaError('(not a zod 4 schema)', path);
    const def = internals.def;
    const type = def.type;
    const allowed = allowedDefKeys[type];
    if (!allowed) throw new UnsupportedSchemaError(`"${type}"`, path);
    for (const key of Object.keys(def)) {
      if (!allowed.has(key) && def[key] !== undefined) throw new UnsupportedSchemaError(`"${type}" with def.${key}`, path);
    }
    if (def.coerce) throw new UnsupportedSchemaError(`coerce (z.coerce.${type})`, path);
    // A schema that is itself a check (z.iso.datetime(), z.int()) runs as its own first check, as in zod's $ZodType.
    const checks: AnySchema[] = [...(internals.traits.has('$ZodCheck') ? [schema] : []), ...((def.checks as AnySchema[] | undefined) ?? [])];
    switch (type) {
      case 'string':
        return this.predicate((v) => [`typeof ${v} === "string"`, ...checks.map((check) => this.stringCheck(check, v, path))]);
      case 'number':
        return this.predicate((v) => [`typeof ${v} === "number"`, `Number.isFinite(${v})`, ...checks.map((check) => this.numberCheck(check, v, path))]);
      case 'boolean':
        this.noChecks(checks, type, path);
        return this.predicate((v) => [`typeof ${v} === "boolean"`]);
      case 'unknown':
      case 'any':
        this.noChecks(checks, type, path);
        return { kind: 'predicate', test: () => 'true' };
      case 'enum':
      case 'literal': {
        this.noChecks(checks, type, path);
        const values = [...(internals.values ?? [])];
        const simple = values.every((value) => typeof value === 'string' || typeof value === 'boolean' || value === null || (typeof value === 'number' && !Number.isNaN(value)));
        if (!simple) {
          const set = this.reference(internals.values);
          return this.predicate((v) => [`${set}.has(${v})`]);
        }
        if (values.length === 0) return this.predicate(() => ['false']);
        return this.predicate((v) => [`(${values.map((value) => `${v} === ${JSON.stringify(value)}`).join(' || ')})`]);
      }
      case 'optional':
        this.noChecks(checks, type, path);
        return this.optional(schema, path);
      case 'nullable': {
        this.noChecks(checks, type, path);
        const inner = this.compile(def.innerType as AnySchema, path);
        if (inner.kind === 'predicate') return { kind: 'predicate', test: (v) => `(${v} === null || ${inner.test(v)})` };
        return { kind: 'function', name: this.newFunction(`return v === null ? null : ${inner.name}(v);`) };
      }
      case 'default': {
        this.noChecks(checks, type, path);
        const inner = this.asFunction(this.compile(def.innerType as AnySchema, path));
        // zod reads `def.defaultValue` each time: a getter returning a fresh shallow copy (or the factory's result).
        const defaultOf = this.reference(def);
        return {
          kind: 'function',
          name: this.newFunction(`if (v === undefined) return ${defaultOf}.defaultValue;\nconst r = ${inner}(v);\nif (r === FAIL) return FAIL;\nreturn r === undefined ? ${defaultOf}.defaultValue : r;`),
        };
      }
      case 'array':
        return this.array(def, checks, path);
      case 'record':
        return this.record(def, checks, path);
      case 'object':
        return this.object(schema, checks, path);
      default:
        throw new UnsupportedSchemaError(`"${type}"`, path);
    }
  }

  private predicate(parts: (v: string) => string[]): Node {
    return { kind: 'predicate', test: (v) => `(${parts(v).join(' && ')})` };
  }

  private noChecks(checks: AnySchema[], type: string, path: string): void {
    if (checks.length) throw new UnsupportedSchemaError(`"${type}" with ${this.checkName(checks[0]!)}`, path);
  }

  private checkName(check: AnySchema): string {
    const def = check._zod.def as CheckDef;
    return def.check === 'custom' ? 'refine (custom check)' : `check "${String(def.check)}"${def.format ? ` (${String(def.format)})` : ''}`;
  }

  private checkDef(check: AnySchema, allowed: string[], path: string): CheckDef {
    const def = check._zod.def as CheckDef;
    for (const key of Object.keys(def)) {
      if (!allowed.includes(key) && !['check', 'error', 'abort', 'type'].includes(key) && def[key] !== undefined) {
        throw new UnsupportedSchemaError(`${this.checkName(check)} with def.${key}`, path);
      }
    }
    return def;
  }

  /** A length check on a string counts code points, as zod does; on an array, elements. */
  private lengthCheck(check: AnySchema, v: string, path: string, onString: boolean): string | undefined {
    const def = check._zod.def as CheckDef;
    if (def.check !== 'min_length' && def.check !== 'max_length' && def.check !== 'length_equals') return undefined;
    this.checkDef(check, ['minimum', 'maximum', 'length', 'when'], path);
    if (def.when !== undefined && def.when !== this.lengthWhen) throw new UnsupportedSchemaError(`${this.checkName(check)} with a custom "when"`, path);
    const count = onString ? `${this.reference(util.codePointLength)}(${v})` : undefined;
    const bound = Number(def.minimum ?? def.maximum ?? def.length);
    if (!Number.isFinite(bound)) throw new UnsupportedSchemaError(`${this.checkName(check)} with a non-numeric bound`, path);
    // A code point is one or two UTF-16 units: only between the bound and twice it is the exact count needed.
    switch (def.check) {
      case 'min_length':
        return count ? `(${v}.length >= ${2 * bound} || (${v}.length >= ${bound} && ${count} >= ${bound}))` : `${v}.length >= ${bound}`;
      case 'max_length':
        return count ? `(${v}.length <= ${bound} || ${count} <= ${bound})` : `${v}.length <= ${bound}`;
      default:
        return count ? `(${v}.length >= ${bound} && ${v}.length <= ${2 * bound} && ${count} === ${bound})` : `${v}.length === ${bound}`;
    }
  }

  private stringCheck(check: AnySchema, v: string, path: string): string {
    const length = this.lengthCheck(check, v, path, true);
    if (length) return length;
    const def = check._zod.def as CheckDef;
    if (def.check === 'string_format' && typeof def.format === 'string' && patternFormats.has(def.format) && def.pattern instanceof RegExp) {
      this.checkDef(check, ['format', 'pattern', 'offset', 'local', 'precision'], path);
      const pattern = this.reference(def.pattern);
      // The same RegExp object zod tests (taken from the def, not a copy); zod resets lastIndex first.
      return def.pattern.global || def.pattern.sticky ? `(${pattern}.lastIndex = 0, ${pattern}.test(${v}))` : `${pattern}.test(${v})`;
    }
    throw new UnsupportedSchemaError(`string ${this.checkName(check)}`, path);
  }

  private numberCheck(check: AnySchema, v: string, path: string): string {
    const def = check._zod.def as CheckDef;
    switch (def.check) {
      case 'number_format': {
        this.checkDef(check, ['format'], path);
        const format = String(def.format ?? 'float64');
        const range = numberFormatRanges[format];
        if (!range) throw new UnsupportedSchemaError(`number format "${format}"`, path);
        const integer = format.includes('int') ? `Number.isSafeInteger(${v}) && ` : '';
        return `(${integer}${v} >= ${range[0]} && ${v} <= ${range[1]})`;
      }
      case 'greater_than':
      case 'less_than': {
        this.checkDef(check, ['value', 'inclusive'], path);
        if (typeof def.value !== 'number' || Number.isNaN(def.value)) throw new UnsupportedSchemaError(`${this.checkName(check)} with a non-number bound`, path);
        const operator = (def.check === 'greater_than' ? '>' : '<') + (def.inclusive ? '=' : '');
        return `${v} ${operator} ${def.value}`;
      }
      default:
        throw new UnsupportedSchemaError(`number ${this.checkName(check)}`, path);
    }
  }

  private optional(schema: AnySchema, path: string): Node {
    const innerSchema = schema._zod.def.innerType as AnySchema;
    const inner = this.compile(innerSchema, path);
    if (schema._zod.traits.has('$ZodExactOptional')) return inner; // delegates as is; absence is handled by the object (optin/optout)
    if (innerSchema._zod.optin !== 'defaulted') {
      if (inner.kind === 'predicate') return { kind: 'predicate', test: (v) => `(${v} === undefined || ${inner.test(v)})` };
      return { kind: 'function', name: this.newFunction(`return v === undefined ? undefined : ${inner.name}(v);`) };
    }
    // optional(default): undefined runs the inner schema; its failure yields undefined (zod's handleOptionalResult).
    const name = this.asFunction(inner);
    return { kind: 'function', name: this.newFunction(`if (v === undefined) { const r = ${name}(undefined); return r === FAIL ? undefined : r; }\nreturn ${name}(v);`) };
  }

  private array(def: ZodInternals['def'], checks: AnySchema[], path: string): Node {
    const element = this.compile(def.element as AnySchema, `${path}[]`);
    const lengths = checks.map((check) => {
      const code = this.lengthCheck(check, 'v', path, false);
      if (!code) throw new UnsupportedSchemaError(`array ${this.checkName(check)}`, path);
      return code;
    });
    const body = [
      'if (!Array.isArray(v)) return FAIL;',
      ...lengths.map((code) => `if (!(${code})) return FAIL;`),
      'const n = v.length;',
      'const out = new Array(n);',
      'let r, ok;',
      'for (let i = 0; i < n; i++) {',
      `  ${this.evaluate(element, 'v[i]', 'r', 'ok')}`,
      '  if (!ok) return FAIL;',
      '  out[i] = r;',
      '}',
      'return out;',
    ];
    return { kind: 'function', name: this.newFunction(body.join('\n')) };
  }

  private record(def: ZodInternals['def'], checks: AnySchema[], path: string): Node {
    this.noChecks(checks, 'record', path);
    if (def.mode !== undefined && def.mode !== 'strict') throw new UnsupportedSchemaError(`record mode "${String(def.mode)}"`, path);
    if (def.partial) throw new UnsupportedSchemaError('partialRecord', path);
    const keySchema = def.keyType as AnySchema;
    // Only string keys: an enumerable key type (enum, literal) switches zod to its exhaustive-keys path.
    if (keySchema?._zod?.def.type !== 'string' || keySchema._zod.values) throw new UnsupportedSchemaError(`record key type "${String(keySchema?._zod?.def.type)}"`, `${path}{key}`);
    const key = this.compile(keySchema, `${path}{key}`);
    if (key.kind !== 'predicate') throw new UnsupportedSchemaError('record key type with an output', `${path}{key}`);
    const value = this.compile(def.valueType as AnySchema, `${path}{}`);
    const isPlainObject = this.reference(util.isPlainObject);
    const hasEnumerableSymbol = this.reference(hasEnumerableSymbolKey);
    const body = [
      `if (!${isPlainObject}(v)) return FAIL;`,
      // zod walks Reflect.ownKeys: an enumerable symbol key fails a string key schema.
      `if (${hasEnumerableSymbol}(v)) return FAIL;`,
      'const out = {};',
      'const keys = Object.keys(v);',
      'let r, ok;',
      'for (let i = 0; i < keys.length; i++) {',
      '  const k = keys[i];',
      '  if (k === "__proto__") continue;',
      `  if (!${key.test('k')}) return FAIL;`,
      `  ${this.evaluate(value, 'v[k]', 'r', 'ok')}`,
      '  if (!ok) return FAIL;',
      '  out[k] = r;',
      '}',
      'return out;',
    ];
    return { kind: 'function', name: this.newFunction(body.join('\n')) };
  }

  private object(schema: AnySchema, checks: AnySchema[], path: string): Node {
    const def = schema._zod.def;
    this.noChecks(checks, 'object', path);
    if (def.catchall !== undefined) {
      const catchallType = (def.catchall as AnySchema)._zod.def.type;
      throw new UnsupportedSchemaError(catchallType === 'never' ? 'strictObject (catchall never)' : `looseObject/catchall ("${catchallType}")`, path);
    }
    const shape = def.shape as Record<string, AnySchema>;
    if (Object.getOwnPropertySymbols(shape).length) throw new UnsupportedSchemaError('symbol keys in an object shape', path);
    const lines = ['if (typeof v !== "object" || v === null || Array.isArray(v)) return FAIL;', 'const out = {};', 'let x, r, ok;'];
    for (const key of Object.keys(shape)) {
      if (key === '__proto__') continue; // zod never reads nor writes it
      const field = shape[key]!;
      const fieldPath = path ? `${path}.${key}` : key;
      const node = this.compile(field, fieldPath);
      const k = JSON.stringify(key);
      const optin = field._zod.optin;
      const optionalOut = field._zod.optout === 'optional';
      const present = `(x !== undefined || ${k} in v)`;
      lines.push(`x = v[${k}];`, this.evaluate(node, 'x', 'r', 'ok'));
      if (optin === undefined) {
        // Required: a failure rejects, and so does an absent key even if undefined was acceptable.
        lines.push(`if (!ok || !${present}) return FAIL;`, `out[${k}] = r;`);
      } else if (optionalOut) {
        // Optional in and out: a failure on an absent key is ignored; the value is written if the key is present (or, defaulted, if a value came out).
        const write = optin === 'optional' ? present : `(r !== undefined || ${present})`;
        lines.push(`if (ok) { if (${write}) out[${k}] = r; } else if (${present}) return FAIL;`);
      } else {
        const write = optin === 'defaulted' ? 'true' : `(r !== undefined || ${present})`;
        lines.push('if (!ok) return FAIL;', write === 'true' ? `out[${k}] = r;` : `if (${write}) out[${k}] = r;`);
      }
    }
    lines.push('return out;');
    return { kind: 'function', name: this.newFunction(lines.join('\n')) };
  }
}

function hasEnumerableSymbolKey(value: object): boolean {
  for (const symbol of Object.getOwnPropertySymbols(value)) {
    if (Object.prototype.propertyIsEnumerable.call(value, symbol)) return true;
  }
  return false;
}

export interface CompileOptions {
  /** Returns the generated source instead of only the validator (for inspection in tests). */
  onSource?: (source: string) => void;
}

/**
 * Compiles a zod 4 schema to a validator whose accepted output is exactly `safeParse(value).data`.
 * Throws `UnsupportedSchemaError` for any feature it does not reproduce.
 */
export function compileSchema(schema: z.ZodType, options: CompileOptions = {}): CompiledValidator {
  const root = compileRaw(schema, options);
  return (value) => {
    const data = root(value);
    return data === FAIL ? rejected : { ok: true, data };
  };
}

/**
 * The raw compiled function: returns the output, or `compiledReject` when zod would reject.
 * For hot paths that do not want the `{ ok, data }` wrapper.
 */
export function compileRaw(schema: z.ZodType, options: CompileOptions = {}): (value: unknown) => unknown {
  const compiler = new Compiler(zodDefaultLengthWhen);
  const root = compiler.asFunction(compiler.compile(schema as unknown as AnySchema, ''));
  const source = `"use strict";\n${compiler.functions.join('\n')}\nreturn ${root};`;
  options.onSource?.(source);
  // Code generation from the schema definition only (never from input values): keys are JSON-quoted, constants are passed by reference.
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function('FAIL', 'refs', source) as (fail: symbol, refs: unknown[]) => (value: unknown) => unknown;
  return factory(FAIL, compiler.references);
}

/** The value `compileRaw` validators return for a rejected input. */
export const compiledReject: unknown = FAIL;
