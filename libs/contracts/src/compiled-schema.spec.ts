/**
 * Proves that the compiled validators give zod's verdicts: for the envelope and every type in the
 * event catalogue, both as events are built and as stored events are read, over deterministic valid values generated from the zod definitions and many
 * mutations of them (fields removed, null, wrong types, strings at length bounds in ASCII and in
 * astral code points, regex violators, text with every kind of control character and lone
 * surrogate for the storable-text rules, bad and edge ISO date-times, numbers at and past their
 * bounds, NaN/Infinity, unknown keys, arrays at their bounds, enum outsiders, odd objects), the
 * compiled validator accepts exactly when zod's safeParse does, and then its output is
 * deep-equal to zod's with the same key order (stripped keys, filled defaults, fresh default
 * copies). It also proves that compileSchema refuses features it does not reproduce (refine,
 * transform, union, …), and that decodeValue / validateEventData, which now use the compiled
 * path, return exactly what the zod-only decoder returns (same events, same dead-letter reasons),
 * also as a fast-check property over arbitrary JSON put in place of an envelope, a payload or one
 * payload field.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { decodeValue, decodeValueWithZod, describeIssues, validateEventData } from './codec';
import { compileSchema, UnsupportedSchemaError, type CompiledValidator } from './compiled-schema';
import { envelopeSchema } from './envelope';
import { eventCatalogue, eventTypes, storedEventSchemas, type EventType } from './events';
import { MULTI_LINE_TEXT_PATTERN, SINGLE_LINE_TEXT_PATTERN } from './text';
import { asSchema, mutants, random, sample, stringBounds, textEdges, type Rng, type Schema } from './compiled-schema.corpus';

function keyOrder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(keyOrder);
  if (typeof value === 'object' && value !== null) return Object.entries(value).map(([k, v]) => [k, keyOrder(v)]);
  return typeof value;
}

interface Tally {
  accepted: number;
  rejected: number;
  disagreements: string[];
}
function describeValue(value: unknown): string {
  try {
    return JSON.stringify(value, (_, v) => (v === undefined ? '<undefined>' : typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)).slice(0, 300);
  } catch {
    return String(value);
  }
}
function compare(label: string, schema: z.ZodType, compiled: CompiledValidator, value: unknown, tally: Tally): void {
  const expected = schema.safeParse(value);
  const actual = compiled(value);
  if (actual.ok !== expected.success) {
    tally.disagreements.push(`${label}: zod ${expected.success ? 'accepts' : 'rejects'}, compiled ${actual.ok ? 'accepts' : 'rejects'} ${describeValue(value)}`);
    return;
  }
  if (!actual.ok || !expected.success) {
    tally.rejected++;
    return;
  }
  tally.accepted++;
  try {
    assert.deepStrictEqual(actual.data, expected.data);
    assert.equal(JSON.stringify(actual.data), JSON.stringify(expected.data));
    assert.deepStrictEqual(keyOrder(actual.data), keyOrder(expected.data));
  } catch (error) {
    tally.disagreements.push(`${label}: outputs differ for ${describeValue(value)}: ${(error as Error).message.slice(0, 400)}`);
  }
}

/** Every supported feature with bounds the catalogue does not use (min above 1 in code points, float bounds, optional defaults, nullable defaults, exact-length arrays). */
const synthetic = z.object({
  short: z.string().min(3).max(5),
  exact: z.string().length(2),
  float: z.number().min(-2.5).max(10.25),
  integer: z.int(),
  positive: z.number().positive().lt(100),
  negative: z.number().negative().int(),
  flags: z.boolean().optional(),
  keyed: z.record(z.string().min(2).max(4), z.number().int().optional()),
  maybe: z.string().max(3).optional().nullable(),
  nested: z.object({ a: z.string().max(2).default('ab'), b: z.array(z.number().int()).length(2).optional() }).default({ a: 'zz' }),
  optionalDefault: z.number().int().default(7).optional(),
  nullableDefault: z.string().min(2).default('dd').nullable(),
  choices: z.literal(['a', 1, true, null]),
  anything: z.unknown().optional(),
  pairs: z.array(z.object({ k: z.enum(['x', 'y']), v: z.string().regex(/^[A-Za-z0-9_-]+$/).min(2) })).min(2).max(3),
  stamp: z.iso.datetime({ offset: false }).nullable(),
});

const schemasUnderTest: [string, z.ZodType][] = [
  ['envelope', envelopeSchema],
  ['synthetic (all supported features)', synthetic],
  ...eventTypes.map((type): [string, z.ZodType] => [type, eventCatalogue[type].schema]),
  // The read rule (no U+0000 only) that decodeValue validates stored events with.
  ...eventTypes.map((type): [string, z.ZodType] => [`${type} (as stored)`, storedEventSchemas[type]]),
];

describe('compileSchema agrees with zod', () => {
  it.each(schemasUnderTest)('%s: same verdicts and outputs over generated values and their mutants', (name, schema) => {
    const compiled = compileSchema(schema);
    const rng = random(name.length * 7919 + name.charCodeAt(0));
    const tally: Tally = { accepted: 0, rejected: 0, disagreements: [] };
    const samples = Array.from({ length: 60 }, () => sample(asSchema(schema), rng));
    for (const value of samples) compare(name, schema, compiled, value, tally);
    // every generated sample is valid: the generator itself is checked against zod
    expect(tally.rejected, `${name}: generator made invalid samples: ${describeValue(samples.find((value) => !schema.safeParse(value).success))}`).toBe(0);
    for (const value of samples.slice(0, 3)) {
      for (const mutant of mutants(asSchema(schema), value, rng)) compare(name, schema, compiled, mutant, tally);
    }
    expect(tally.disagreements.slice(0, 10)).toEqual([]);
    // the corpus exercised both verdicts
    expect(tally.accepted).toBeGreaterThan(60);
    expect(tally.rejected).toBeGreaterThan(100);
  });

  it('fills each default with a fresh copy, as zod does', () => {
    const compiled = compileSchema(eventCatalogue.JobSubmitted.schema);
    const data = sample(asSchema(eventCatalogue.JobSubmitted.schema), random(1)) as Record<string, unknown>;
    delete data.dependsOn;
    const first = compiled(data);
    const second = compiled(data);
    assert(first.ok && second.ok);
    expect((first.data as { dependsOn: unknown }).dependsOn).toEqual([]);
    expect((first.data as { dependsOn: unknown }).dependsOn).not.toBe((second.data as { dependsOn: unknown }).dependsOn);
    ((first.data as { dependsOn: unknown[] }).dependsOn).push('mutated');
    expect(compiled(data)).toEqual({ ok: true, data: { ...(second.data as object) } });
  });

  it('returns new objects and arrays, never the input ones, while unknown data passes by reference as in zod', () => {
    const rng = random(2);
    const placed = sample(asSchema(eventCatalogue.SubtaskPlaced.schema), rng) as { gpuIndices: number[] };
    const out = compileSchema(eventCatalogue.SubtaskPlaced.schema)(placed);
    assert(out.ok);
    expect(out.data).not.toBe(placed);
    expect((out.data as typeof placed).gpuIndices).not.toBe(placed.gpuIndices);
    const envelope = { ...(sample(asSchema(envelopeSchema), rng) as object), data: placed };
    const decoded = compileSchema(envelopeSchema)(envelope);
    assert(decoded.ok);
    expect((decoded.data as { data: unknown }).data).toBe(envelopeSchema.parse(envelope).data);
  });
});

describe('compileSchema refuses what it does not reproduce', () => {
  const cases: [string, z.ZodType, RegExp][] = [
    ['refine', z.object({ a: z.string().refine((s) => s.length > 2) }), /refine.*at a/],
    ['refine on an object', z.object({ a: z.string() }).refine(() => true), /refine/],
    ['superRefine', z.number().superRefine(() => undefined), /refine/],
    ['transform', z.object({ a: z.string().transform((s) => s.length) }), /"pipe".*at a/],
    ['union', z.object({ a: z.array(z.union([z.string(), z.number()])) }), /"union".*at a\[\]/],
    ['discriminated union', z.discriminatedUnion('k', [z.object({ k: z.literal('a') }), z.object({ k: z.literal('b') })]), /"union"/],
    ['pipe', z.string().pipe(z.string()), /"pipe"/],
    ['coerce', z.coerce.number(), /coerce/],
    ['strictObject', z.strictObject({ a: z.string() }), /strictObject/],
    ['looseObject', z.looseObject({ a: z.string() }), /looseObject/],
    ['trim (overwrite check)', z.string().trim(), /overwrite/],
    ['email format', z.email(), /email|format/],
    ['multipleOf', z.number().multipleOf(2), /multiple_of/],
    ['enum record key', z.record(z.enum(['a', 'b']), z.string()), /record key type/],
    ['intersection', z.intersection(z.object({ a: z.string() }), z.object({ b: z.string() })), /"intersection"/],
    ['catch', z.string().catch('x'), /"catch"/],
    ['nullish of refine', z.string().refine(() => true).nullish(), /refine/],
  ];
  it.each(cases)('%s', (_name, schema, message) => {
    expect(() => compileSchema(schema)).toThrow(UnsupportedSchemaError);
    expect(() => compileSchema(schema)).toThrow(message);
  });
});

/** Top-level payload fields of `type` checked by a text rule (optional ones included). */
function textFields(type: EventType): string[] {
  const shape = asSchema(eventCatalogue[type].schema)._zod.def.shape as Record<string, Schema>;
  return Object.keys(shape).filter((key) => {
    let field = shape[key]!;
    while (['optional', 'nullable', 'default'].includes(field._zod.def.type)) field = field._zod.def.innerType as Schema;
    const pattern = field._zod.def.type === 'string' ? stringBounds(field).pattern : undefined;
    return pattern === SINGLE_LINE_TEXT_PATTERN || pattern === MULTI_LINE_TEXT_PATTERN;
  });
}

/** A valid envelope of `type` around valid generated data. */
function envelopeOf(type: EventType, data: unknown, rng: Rng): Record<string, unknown> {
  const base = sample(asSchema(envelopeSchema), rng) as Record<string, unknown>;
  return { ...base, type, schemaversion: eventCatalogue[type].version, data };
}

describe('decodeValue (compiled path) returns exactly what the zod-only decoder returns', () => {
  it('over valid envelopes, envelope mutants and data mutants of every type', () => {
    const rng = random(42);
    const corpus: unknown[] = [];
    for (const type of eventTypes) {
      const schema = asSchema(eventCatalogue[type].schema);
      for (let i = 0; i < 10; i++) corpus.push(envelopeOf(type, sample(schema, rng), rng));
      const valid = envelopeOf(type, sample(schema, rng), rng);
      corpus.push(...mutants(asSchema(envelopeSchema), valid, rng, 300));
      corpus.push(...mutants(schema, valid.data, rng, 300).map((data) => ({ ...valid, data })));
      corpus.push({ ...valid, schemaversion: eventCatalogue[type].version + 1 }, { ...valid, schemaversion: 0 }, { ...valid, type: `${type}X` });
      // Every text field of the payload set to each control-character and surrogate edge.
      for (const field of textFields(type)) {
        for (const edge of textEdges) corpus.push({ ...valid, data: { ...(valid.data as object), [field]: edge } });
      }
    }
    corpus.push(null, 'text', 42, [], {});
    let accepted = 0;
    const disagreements: string[] = [];
    for (const raw of corpus) {
      const expected = decodeValueWithZod(raw);
      const actual = decodeValue(raw);
      if (actual.ok) accepted++;
      try {
        assert.deepStrictEqual(actual, expected);
        assert.equal(JSON.stringify(actual), JSON.stringify(expected));
        assert.deepStrictEqual(keyOrder(actual), keyOrder(expected));
      } catch (error) {
        disagreements.push(`${describeValue(raw)}: ${(error as Error).message.slice(0, 400)}`);
      }
    }
    expect(disagreements.slice(0, 10)).toEqual([]);
    expect(accepted).toBeGreaterThan(eventTypes.length * 10);
    expect(corpus.length - accepted).toBeGreaterThan(eventTypes.length * 100);
  });

  it('as a property: any JSON as the body, the payload or one payload field decodes as with zod alone', () => {
    const rng = random(99);
    const valid = eventTypes.map((type) => envelopeOf(type, sample(asSchema(eventCatalogue[type].schema), rng), rng));
    const body = fc.oneof(
      fc.jsonValue(),
      fc.tuple(fc.constantFrom(...valid), fc.jsonValue()).map(([envelope, data]) => ({ ...envelope, data })),
      fc
        .tuple(fc.constantFrom(...valid), fc.jsonValue(), fc.nat())
        .map(([envelope, value, pick]) => {
          const data = { ...(envelope.data as Record<string, unknown>) };
          const fields = Object.keys(data);
          if (fields.length) data[fields[pick % fields.length]!] = value;
          return { ...envelope, data };
        }),
      fc.constantFrom(...valid),
    );
    fc.assert(
      fc.property(body, (raw) => {
        const expected = decodeValueWithZod(raw);
        const actual = decodeValue(raw);
        assert.deepStrictEqual(actual, expected);
        assert.deepStrictEqual(keyOrder(actual), keyOrder(expected));
      }),
      { numRuns: 2_000, seed: 17 },
    );
  });

  it('validateEventData returns zod data or throws zod’s message', () => {
    const rng = random(7);
    let thrown = 0;
    for (const type of eventTypes) {
      const schema = eventCatalogue[type].schema;
      const valid = sample(asSchema(schema), rng);
      for (const data of [valid, ...mutants(asSchema(schema), valid, rng, 150)]) {
        const expected = schema.safeParse(data);
        if (expected.success) {
          expect(validateEventData(type, data)).toStrictEqual(expected.data);
        } else {
          // Built events follow the written rule (eventCatalogue): its zod issues are the reason.
          expect(() => validateEventData(type, data)).toThrow(new Error(`invalid ${type} data: ${describeIssues(expected.error)}`));
          thrown++;
        }
      }
    }
    expect(thrown).toBeGreaterThan(eventTypes.length * 50);
  });
});
