/**
 * Proves that canonicalJson, whose SHA-256 is stored in every external-ingestion receipt, writes
 * exactly the text of its first version (sorted keys, undefined members left out) for nested
 * objects, arrays, unicode and escaped keys: a rewrite for speed must not turn a retried request
 * into a 409 conflict.
 */
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './external.ingest';

/** The first version, kept as the reference. */
function canonicalJsonReference(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJsonReference).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJsonReference(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

describe('canonicalJson', () => {
  const samples: unknown[] = [
    { type: 'ExternalAllocationStarted', source: 'urn:x', time: '2026-01-01T00:00:00.000Z', subject: null, data: { startedAt: '2026-01-01T00:00:00Z', gpus: 8, allocationId: 'a-1', projectId: 'p', gpuModel: 'H100 "SXM"\n', capacityType: 'on-demand', tenantId: 't' } },
    { b: 1, a: [{ d: 2, c: null }, [], {}, 'x', 1.5, -0, true, false], é: 'ü', Z: '\u2028', 'k"ey': { '': 0, ' ': 1, '10': 2, '9': 3, a: undefined } },
    [undefined, null, { x: undefined }],
    { z: 1, a: 'x', m: null, u: undefined, n: -0, f: Number.NaN, t: true, e: '', '"q"': '\\', b: 1e21, c: 0.1 },
    {},
    { only: undefined },
    'plain',
    42,
    null,
  ];
  it('writes the same text as the first version', () => {
    for (const sample of samples) expect(canonicalJson(sample)).toBe(canonicalJsonReference(sample));
  });
  it('sorts keys at every depth and leaves undefined members out', () => {
    expect(canonicalJson({ b: 1, a: { d: undefined, c: [2, { f: 1, e: 0 }] } })).toBe('{"a":{"c":[2,{"e":0,"f":1}]},"b":1}');
  });
});
