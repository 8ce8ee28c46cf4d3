/**
 * fast-check arbitraries for hostile input, driven by the schemas the API publishes: the JSON
 * Schemas of its OpenAPI document (HTTP) and the message descriptors of its `.proto` files
 * (gRPC). Values that fit the schema, values at its boundaries, and values that break it
 * (control characters, every Unicode plane, lone surrogates, huge numbers, wrong types).
 */
import fc from 'fast-check';

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
  format?: string;
  pattern?: string;
  default?: unknown;
  $ref?: string;
}

/** Depth of nested schemas followed before a leaf is generated: bounds the recursion. */
const SCHEMA_DEPTH_MAX = 6;
/** Items generated per array: enough for boundaries without making every request huge. */
const ARRAY_ITEMS_MAX = 4;

/** Strings nobody should be able to store: every control character and plane, broken UTF-16. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('\u0000', 'a\u0000b', '\r\n', 'x\ry', '\u0007', '\u001b[31m', '\u001b[2J', '\u007f', '\u0085', '\u009f', '\ud800', '\udfff', 'a\udfffb', '\ufeff', '\u202e', '\u2028', '𝔘𝔫𝔦', '%00', '../../etc', '${jndi:x}', "'; DROP TABLE jobs; --", '<script>', 'a'.repeat(600), ''),
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 8 }),
  fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 4 }),
  fc.integer({ min: 1, max: 16 }).map((plane) => String.fromCodePoint(plane * 0x10000 + 0x41)),
  fc.constant('x'.repeat(70_000)),
);

const hostileNumber: fc.Arbitrary<unknown> = fc.constantFrom(-1, 0, 1, 2 ** 31, 2 ** 31 - 1, -(2 ** 31), 2 ** 53, Number.MAX_SAFE_INTEGER + 2, 1e308, -1e308, 0.5, 1e-9, '1', 'NaN', 'Infinity', null, true);

/** Anything at all, for the wrong-type mutations. */
const anyJson: fc.Arbitrary<unknown> = fc.oneof(fc.jsonValue({ maxDepth: 2 }), hostileString, hostileNumber);

function resolve(schema: JsonSchema, root: Record<string, JsonSchema>): JsonSchema {
  if (!schema.$ref) return schema;
  const name = schema.$ref.split('/').pop()!;
  return root[name] ?? {};
}

function typeOf(schema: JsonSchema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((t) => t !== 'null') ?? schema.type[0];
  return schema.type;
}

/** A value that fits the schema (as far as its keywords say), with boundary values mixed in. */
export function fitting(schema: JsonSchema, root: Record<string, JsonSchema> = {}, depth = 0): fc.Arbitrary<unknown> {
  const s = resolve(schema, root);
  if (depth > SCHEMA_DEPTH_MAX) return fc.constant(null);
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  const union = s.anyOf ?? s.oneOf;
  if (union?.length) return fc.oneof(...union.map((option) => fitting(option, root, depth + 1)));
  if (s.allOf?.length) return fitting(s.allOf[0]!, root, depth + 1);
  switch (typeOf(s)) {
    case 'object': {
      const properties = s.properties ?? {};
      const required = new Set(s.required ?? []);
      const entries = Object.entries(properties);
      if (!entries.length) return fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 });
      return fc.record(Object.fromEntries(entries.map(([key, value]) => [key, fitting(value, root, depth + 1)])), {
        requiredKeys: entries.map(([key]) => key).filter((key) => required.has(key)),
      });
    }
    case 'array': {
      const min = s.minItems ?? 0;
      const max = Math.max(min, Math.min(s.maxItems ?? ARRAY_ITEMS_MAX, ARRAY_ITEMS_MAX));
      return fc.array(fitting(s.items ?? {}, root, depth + 1), { minLength: min, maxLength: max });
    }
    case 'string': {
      if (s.format === 'date-time') return fc.date({ min: new Date(Date.UTC(2000, 0, 1)), max: new Date(Date.UTC(2100, 0, 1)), noInvalidDate: true }).map((d) => d.toISOString());
      const min = s.minLength ?? 0;
      const max = Math.max(min, Math.min(s.maxLength ?? 32, 64));
      return fc.oneof(
        fc.stringMatching(/^[A-Za-z0-9_-]+$/).filter((v) => v.length >= Math.max(min, 1) && v.length <= max),
        fc.string({ minLength: min, maxLength: max }),
        fc.constantFrom('a100', 'h100', 'USD', 'EUR', 'UTC', 'Europe/Berlin', '2026-10', '1', '0.5'),
      );
    }
    case 'integer': {
      const min = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : -1000);
      const max = s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : 100_000);
      return fc.oneof(fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31) }), fc.constantFrom(min, max));
    }
    case 'number':
      return fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }), fc.constantFrom(0, 1));
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    default:
      return fc.jsonValue({ maxDepth: 1 });
  }
}

/**
 * A request body for a route: one that fits its schema, then (most of the time) has one field
 * replaced by a hostile value or removed, or an unknown field added, or is not an object at all.
 */
export function hostileBody(schema: JsonSchema | undefined, root: Record<string, JsonSchema>): fc.Arbitrary<unknown> {
  if (!schema) return fc.oneof(fc.constant(undefined), anyJson);
  const base = fitting(schema, root);
  const s = resolve(schema, root);
  const keys = Object.keys(s.properties ?? {});
  if (!keys.length) return fc.oneof(base, anyJson);
  const mutated = fc.tuple(base, fc.constantFrom(...keys), fc.oneof(hostileString, hostileNumber, anyJson), fc.integer({ min: 0, max: 3 })).map(([value, key, hostile, how]) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    if (how === 0) delete copy[key];
    else if (how === 1) copy[`${key}Extra`] = hostile;
    else copy[key] = hostile;
    return copy;
  });
  const deepString = fc.tuple(base, hostileString).map(([value, hostile]) => replaceStrings(value, hostile));
  return fc.oneof({ arbitrary: base, weight: 2 }, { arbitrary: mutated, weight: 5 }, { arbitrary: deepString, weight: 3 }, { arbitrary: anyJson, weight: 1 });
}

/** Every string inside `value` replaced by `hostile` (reaches strings nested in arrays and objects). */
function replaceStrings(value: unknown, hostile: string): unknown {
  if (typeof value === 'string') return hostile;
  if (Array.isArray(value)) return value.map((item) => replaceStrings(item, hostile));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceStrings(v, hostile)]));
  return value;
}

/** A path parameter: a plausible id, a hostile one, or one of the given known ids (another tenant's included). */
export function pathParameter(known: string[]): fc.Arbitrary<string> {
  return fc.oneof(fc.constantFrom(...known), fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/), hostileString.filter((v) => v.length > 0 && v.length < 2000));
}

/** A field of a protobuf message descriptor, as @grpc/proto-loader gives it (names already camelCase). */
interface ProtoField {
  name: string;
  label: string;
  type: string;
  typeName: string;
}
/** Message descriptors by full name (`fastgpu.intake.v1.SubmitJobRequest`), from a proto-loader package definition. */
export type ProtoMessages = Record<string, { type?: { field?: ProtoField[] } }>;

const int32Values = fc.oneof(fc.integer({ min: -5, max: 100 }), fc.constantFrom(0, -1, 2 ** 31 - 1, -(2 ** 31)));

/**
 * A message for a `.proto` message type: every field optional, each with a value of its wire type
 * — strings hostile or plausible (ids among `known`), integers at their boundaries, 64-bit
 * integers as decimal strings beyond 2^53, nested messages to a bounded depth, repeated fields as
 * short arrays.
 */
export function protoMessage(messages: ProtoMessages, fullName: string, known: string[], depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const fields = messages[fullName]?.type?.field ?? [];
  const pkg = fullName.slice(0, fullName.lastIndexOf('.'));
  const text = fc.oneof(hostileString, fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/), fc.constantFrom('a100', 'standard', 'preemptible', 'on-demand', 'afterSuccess', '2026-10', '2026-13', '1.5', '1e9', ...known));
  const valueOf = (field: ProtoField): fc.Arbitrary<unknown> => {
    switch (field.type) {
      case 'TYPE_STRING':
        return text;
      case 'TYPE_BOOL':
        return fc.boolean();
      case 'TYPE_INT32':
      case 'TYPE_SINT32':
      case 'TYPE_SFIXED32':
      case 'TYPE_ENUM':
        return int32Values;
      case 'TYPE_UINT32':
      case 'TYPE_FIXED32':
        return fc.oneof(fc.integer({ min: 0, max: 100 }), fc.constantFrom(0, 2 ** 32 - 1));
      case 'TYPE_INT64':
      case 'TYPE_SINT64':
      case 'TYPE_SFIXED64':
      case 'TYPE_UINT64':
      case 'TYPE_FIXED64':
        return fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String), fc.constantFrom('0', '1', '9007199254740993', '18446744073709551615'));
      case 'TYPE_DOUBLE':
      case 'TYPE_FLOAT':
        return fc.oneof(fc.double({ noNaN: true }), fc.constantFrom(0, -1, 1e308));
      case 'TYPE_BYTES':
        return fc.uint8Array({ maxLength: 16 }).map((bytes) => Buffer.from(bytes));
      case 'TYPE_MESSAGE':
        return depth >= SCHEMA_DEPTH_MAX ? fc.constant({}) : protoMessage(messages, field.typeName.startsWith('.') ? field.typeName.slice(1) : `${pkg}.${field.typeName}`, known, depth + 1);
      default:
        return fc.constant(undefined);
    }
  };
  // A `map<string, string>` is a repeated nested `…Entry` message in the descriptor (not a top-level type): an object on the wire.
  const isMap = (field: ProtoField) => field.type === 'TYPE_MESSAGE' && field.label === 'LABEL_REPEATED' && field.typeName.endsWith('Entry') && !messages[`${pkg}.${field.typeName}`];
  return fc.record(
    Object.fromEntries(fields.map((field) => [field.name, isMap(field) ? fc.dictionary(text, text, { maxKeys: 3, noNullPrototype: true }) : field.label === 'LABEL_REPEATED' ? fc.array(valueOf(field), { maxLength: 3 }) : valueOf(field)])),
    // Plain objects: the protobuf encoder cannot read objects without a prototype.
    { requiredKeys: [], noNullPrototype: true },
  );
}
