/**
 * Proves that the one canonicalJson writes the same bytes as each of the five copies it replaces
 * (kept here verbatim as references: billing's invoice documents → InvoiceFinalized.sha256,
 * intake's Idempotency-Key request hashes, metering's external event payload hashes,
 * reliability's SlaCreditIssued.reportHash; and billing's audit comparison of a repeated event's
 * payload, which was never hashed) on every input those call sites pass: recorded ones
 * (invoice documents with taxes, credits and carried credits, an SLA report body, parsed job,
 * lease and tenant requests, external event data; canonical-json.recorded.json, written by the
 * apps' own builders) and generated ones (nested objects and arrays, optional members set to
 * undefined, any UTF-16 text in keys and values including lone surrogates, safe integers).
 * Also that sha256Hex is the SHA-256 the call sites computed, and that what canonical JSON
 * cannot hold is refused with its path instead of being written as something else.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, CanonicalJsonError, sha256Hex } from './canonical-json';

// ------------------------------------------------------------ the five copies, as they were
/** apps/billing/src/invoices/invoice-document.ts (InvoiceFinalized.sha256, stored documents, credit-note request hashes). */
function billingReference(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`canonical JSON holds integers only, got ${value}`);
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(billingReference).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${billingReference(v)}`).join(',')}}`;
  }
  throw new Error(`canonical JSON cannot hold ${typeof value}`);
}

/** apps/intake/src/shared/idempotency.ts (Idempotency-Key request hashes, feasibility cache keys). */
function intakeReference(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(intakeReference).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${intakeReference(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** apps/metering/src/external/external.ingest.ts (external event payload hashes). */
function meteringReference(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += `${i > 0 ? ',' : ''}${meteringReference(value[i]) ?? ''}`;
    return `${out}]`;
  }
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const item = object[key];
    if (item === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(key)}:${item === null || typeof item !== 'object' ? JSON.stringify(item) : meteringReference(item)}`;
    first = false;
  }
  return `${out}}`;
}

/** apps/reliability/src/sla/sla.report.ts (SlaCreditIssued.reportHash). */
function reliabilityReference(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(reliabilityReference).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reliabilityReference(v)}`).join(',')}}`;
}

/** apps/billing/src/ledger/billing-audit.ts (`sameJson`: is a repeated finance action or price book the same payload). */
function billingAuditReference(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(billingAuditReference).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${billingAuditReference(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

const references = { billing: billingReference, intake: intakeReference, metering: meteringReference, reliability: reliabilityReference, billingAudit: billingAuditReference };
/** How each call site hashed: createHash over the canonical text (metering used crypto.hash, the same digest). */
const referenceSha256 = (text: string) => createHash('sha256').update(text).digest('hex');

// ------------------------------------------------------------ inputs
interface Recorded {
  invoiceDocuments: unknown[];
  slaReportBodies: unknown[];
  jobRequests: unknown[];
  leaseRequests: unknown[];
  tenantRequests: unknown[];
  externalData: unknown[];
}
const recorded = JSON.parse(readFileSync(new URL('./canonical-json.recorded.json', import.meta.url), 'utf8')) as Recorded;
const recordedByCallSite: Array<[keyof typeof references, string, unknown[]]> = [
  ['billing', 'invoice documents', recorded.invoiceDocuments],
  ['reliability', 'SLA report bodies', recorded.slaReportBodies],
  ['intake', 'job, lease and tenant requests', [...recorded.jobRequests, ...recorded.leaseRequests, ...recorded.tenantRequests]],
  ['metering', 'external event data', recorded.externalData],
];

/** Any UTF-16 text: code units drawn one by one, so lone surrogates, controls and quotes occur. */
const anyText = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 });
const text = fc.oneof(anyText, fc.constantFrom('', 'a', 'B', 'é', '😀', '\uffff', '"', '\\', '\u2028', 'a.b', '__proto__x'));
const safeInteger = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.maxSafeInteger(), fc.constantFrom(0, -0, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER));
/** Values of the domain every call site passes: strings, safe integers, booleans, null, arrays, plain objects whose members may be undefined. */
const { value: domainValue } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, text, safeInteger, fc.boolean(), fc.constant(null), tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 5 }),
  object: fc.dictionary(text, fc.oneof(tie('value'), fc.constant(undefined)), { maxKeys: 6 }),
}));

// ------------------------------------------------------------ proofs
describe('canonicalJson writes the bytes of the copy each call site used', () => {
  for (const [site, what, inputs] of recordedByCallSite) {
    it(`${site}: recorded ${what}`, () => {
      expect(inputs.length).toBeGreaterThan(0);
      for (const input of inputs) {
        const text = canonicalJson(input);
        expect(text).toBe(references[site](input));
        expect(sha256Hex(text)).toBe(referenceSha256(references[site](input)));
      }
    });
  }

  it('every copy: generated values of the domain, with undefined members', () => {
    fc.assert(
      fc.property(domainValue, (input) => {
        const text = canonicalJson(input);
        for (const reference of Object.values(references)) expect(text).toBe(reference(input));
        expect(sha256Hex(text)).toBe(referenceSha256(text));
        // Canonical: what it writes parses back to a value that writes the same bytes.
        expect(canonicalJson(JSON.parse(text))).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });

  it('metering: the payload hash text (the envelope written by hand around data) is the canonical JSON of the whole', () => {
    for (const data of recorded.externalData) {
      for (const subject of [undefined, 'rack-1']) {
        const byHand = `{"data":${canonicalJson(data)},"source":${JSON.stringify('https://scheduler.example/x')},"subject":${subject === undefined ? 'null' : JSON.stringify(subject)},"type":${JSON.stringify('ExternalAllocationStarted')}}`;
        expect(byHand).toBe(meteringReference({ type: 'ExternalAllocationStarted', source: 'https://scheduler.example/x', subject: subject ?? null, data }));
      }
    }
  });
});

describe('canonicalJson semantics', () => {
  it('sorts keys by UTF-16 code units at every depth, drops undefined members, writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: undefined, c: [2, { f: 1, e: 0 }] }, B: true, é: null, '😀': '', '\uffff': -0 })).toBe('{"B":true,"a":{"c":[2,{"e":0,"f":1}]},"b":1,"é":null,"😀":"","\uffff":0}');
  });

  it('refuses what it cannot hold, naming where', () => {
    const refusal = (value: unknown) => {
      try {
        canonicalJson(value);
      } catch (error) {
        expect(error).toBeInstanceOf(CanonicalJsonError);
        return (error as CanonicalJsonError).path;
      }
      throw new Error('accepted');
    };
    expect(refusal({ lines: [{ amount: 1.5 }] })).toBe('$.lines[0].amount');
    expect(refusal({ a: Number.NaN })).toBe('$.a');
    expect(refusal({ a: Number.POSITIVE_INFINITY })).toBe('$.a');
    expect(refusal({ a: 2 ** 53 })).toBe('$.a');
    expect(refusal({ a: 1n })).toBe('$.a');
    expect(refusal({ a: [1, undefined] })).toBe('$.a[1]');
    expect(refusal(undefined)).toBe('$');
    expect(refusal({ at: new Date(0) })).toBe('$.at');
    expect(refusal({ m: new Map() })).toBe('$.m');
    expect(refusal({ f: () => 1 })).toBe('$.f');
    expect(refusal({ s: Symbol('s') })).toBe('$.s');
    // A null-prototype object is plain.
    expect(canonicalJson(Object.assign(Object.create(null) as object, { b: 1, a: 2 }))).toBe('{"a":2,"b":1}');
  });

  it('sha256Hex is the SHA-256 of the UTF-8 bytes, in lowercase hex', () => {
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex('é😀')).toBe(createHash('sha256').update(Buffer.from('é😀', 'utf8')).digest('hex'));
  });
});
