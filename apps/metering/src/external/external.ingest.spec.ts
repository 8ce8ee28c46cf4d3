import type { Kysely } from 'kysely';
/**
 * Proves the pure parts of external ingestion:
 * - canonicalJson (the one of @fastgpu/contracts, which payloadHash uses) writes exactly the text
 *   of metering's first version (sorted keys, undefined members left out) for nested objects,
 *   arrays, unicode and escaped keys, and refuses what that version wrote but no validated
 *   payload holds (fractions, NaN, undefined array elements); payloadHash is the SHA-256
 *   of canonicalJson({ type, source, subject, data }) — `time` left out, so a retry that rebuilds
 *   the event with a new `time` is the same event, while any change of type, source, subject or
 *   data is not;
 * - the internal id of an external event is derived from (tenant, source, id): the same triple
 *   gives the same id, any other triple (another tenant, another source, parts that only
 *   concatenate alike) another one, and never the client's id itself;
 * - validate (compiled envelope check, zod only for the reason of a rejection, makeEvent with the
 *   request's trace context) gives, for valid, late and malformed CloudEvents alike, the same
 *   verdict, field, reason, envelope and hash as a zod-only version; a report older than the
 *   horizon becomes ExternalAllocationReportedLate under the same id, hashed as sent;
 * - control characters (CR/LF, U+0000, DEL, C1) in `id`, `source`, `subject`, `tenantid` or
 *   `traceparent` reject that event with the field and the reason, and `traceparent` is parsed
 *   strictly (W3C: lowercase hex, no all-zero ids, no spaces, nothing after version 00's flags);
 * - eventBytes writes the bytes encodeEvent writes.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeEvent, eventCatalogue, topology, type DomainEvent, type EventData } from '@fastgpu/contracts';
import type { Database } from '@fastgpu/db';
import { EventPublisher } from '@fastgpu/messaging';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient } from '@nats-io/jetstream';
import { z } from 'zod';
import { eventBytes } from './ack-counting-publisher';
import { canonicalJson, CanonicalJsonError, DEFAULT_LATENESS_HORIZON, EXTERNAL_ALLOCATION_GPUS_MAX } from '@fastgpu/contracts';
import { externalCloudEventSchema, externalEventId, ExternalIngest, payloadHash, traceparentProblem, type Candidate, type IngestResult } from './external.ingest';

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
    { b: 1, a: [{ d: 2, c: null }, [], {}, 'x', -0, true, false], é: 'ü', Z: '\u2028', 'k"ey': { '': 0, ' ': 1, '10': 2, '9': 3, a: undefined } },
    [null, { x: undefined }],
    { z: 1, a: 'x', m: null, u: undefined, n: -0, t: true, e: '', '"q"': '\\', b: Number.MAX_SAFE_INTEGER },
    {},
    { only: undefined },
    'plain',
    42,
    null,
  ];
  /** What the first version wrote although no validated payload holds it: the one canonicalJson refuses it. */
  const outsidePayloads: unknown[] = [{ a: 1.5 }, { f: Number.NaN }, { b: 1e21 }, { c: 0.1 }, [undefined, null]];
  it('writes the same text as the first version', () => {
    for (const sample of samples) expect(canonicalJson(sample)).toBe(canonicalJsonReference(sample));
  });
  it('refuses values outside what a validated payload holds', () => {
    for (const sample of outsidePayloads) expect(() => canonicalJson(sample)).toThrow(CanonicalJsonError);
  });
  it('sorts keys at every depth and leaves undefined members out', () => {
    expect(canonicalJson({ b: 1, a: { d: undefined, c: [2, { f: 1, e: 0 }] } })).toBe('{"a":{"c":[2,{"e":0,"f":1}]},"b":1}');
  });
});

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('payloadHash', () => {
  it('is the SHA-256 of canonicalJson({ type, source, subject ?? null, data })', () => {
    const cases: Array<[string, string, string | undefined, unknown]> = [
      ['ExternalAllocationStarted', 'urn:partner:cluster-7', undefined, { allocationId: 'a', tenantId: 't', projectId: 'p', gpuModel: 'L40S', gpus: 2, capacityType: 'on-demand', startedAt: '2026-10-24T09:00:00.000Z' }],
      ['ExternalAllocationStopped', 'ürn:"quoted"\\\u2028', 'sub"ject', { stoppedAt: 'x', allocationId: 'a', tenantId: 't' }],
      ['ExternalAllocationStopped', '', '', { nested: { b: [1, { d: undefined, c: 'é' }], a: null } }],
    ];
    for (const [type, source, subject, data] of cases) {
      expect(payloadHash(type, source, subject, data)).toBe(sha256(canonicalJsonReference({ type, source, subject: subject ?? null, data })));
    }
  });
  it('changes with the type, source, subject or data', () => {
    const data = { allocationId: 'a', tenantId: 't', stoppedAt: '2026-10-24T09:00:00.000Z' };
    const hashes = [
      payloadHash('ExternalAllocationStopped', 's', undefined, data),
      payloadHash('ExternalAllocationStarted', 's', undefined, data),
      payloadHash('ExternalAllocationStopped', 's2', undefined, data),
      payloadHash('ExternalAllocationStopped', 's', 'rack-1', data),
      payloadHash('ExternalAllocationStopped', 's', undefined, { ...data, stoppedAt: '2026-10-24T09:00:00.001Z' }),
    ];
    expect(new Set(hashes).size).toBe(hashes.length);
  });
});

describe('externalEventId', () => {
  it('is deterministic per (tenant, source, id) and differs for every other triple', () => {
    expect(externalEventId('acme', 'urn:a', 'e-1')).toBe(externalEventId('acme', 'urn:a', 'e-1'));
    const ids = [
      externalEventId('acme', 'urn:a', 'e-1'),
      externalEventId('globex', 'urn:a', 'e-1'),
      externalEventId('acme', 'urn:b', 'e-1'),
      externalEventId('acme', 'urn:a', 'e-2'),
      // Parts that would read alike if simply joined.
      externalEventId('acme', 'urn:a","e', '1'),
      externalEventId('acme', 'urn:a', '","e-1'),
    ];
    expect(new Set(ids).size).toBe(ids.length);
  });
  it('is never the id the client chose, and is shaped like every platform id (a UUID)', () => {
    for (const id of ['demo', 'demo-1', '0190f5a2-7c3e-7d4f-8a1b-2c3d4e5f6a7b']) {
      const derived = externalEventId('acme', 'urn:a', id);
      expect(derived).not.toBe(id);
      expect(derived).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
  });
});

/** The zod-only validate the fast one stands for, kept as the reference (publisher.build, createHash). */
function validateReference(publisher: EventPublisher, raw: unknown, index: number, tenantId: string, nowMs: number): IngestResult | Candidate {
  const idOf = (value: unknown) => (typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string' ? (value as { id: string }).id : null);
  const rejected = (field: string, reason: string): IngestResult => ({ id: idOf(raw), index, status: 'rejected', field, reason });
  const fromZod = (error: z.ZodError, prefix = '') => {
    const fieldOf = (i: z.core.$ZodIssue) => `${prefix}${i.path.map(String).join('.')}`.replace(/\.$/, '') || '(root)';
    return rejected(fieldOf(error.issues[0]!), error.issues.slice(0, 3).map((i) => `${fieldOf(i)}: ${i.message}`).join('; '));
  };
  const parsed = externalCloudEventSchema.safeParse(raw);
  if (!parsed.success) return fromZod(parsed.error);
  const ce = parsed.data;
  if (ce.traceparent !== undefined && !/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(ce.traceparent)) return rejected('traceparent', 'traceparent: not a W3C traceparent (version-traceid-parentid-flags in lowercase hex, ids not all zero)');
  if (ce.tenantid !== undefined && ce.tenantid !== tenantId) return rejected('tenantid', 'tenantid: does not match the API key');
  if (ce.data.tenantId !== undefined && ce.data.tenantId !== tenantId) return rejected('data.tenantId', 'data.tenantId: does not match the API key');
  const atField = ce.type === 'ExternalAllocationStarted' ? 'startedAt' : 'stoppedAt';
  const atValue = ce.data[atField];
  const atMs = typeof atValue === 'string' ? Date.parse(atValue) : Number.NaN;
  let event: DomainEvent;
  try {
    event = publisher.build(ce.type, { ...ce.data, tenantId } as never, {
      id: externalEventId(tenantId, ce.source, ce.id),
      source: ce.source,
      time: ce.time ? new Date(Date.parse(ce.time)).toISOString() : typeof atValue === 'string' ? atValue : new Date(nowMs).toISOString(),
      tenantId,
      correlationId: ce.id,
      ...(ce.traceparent ? { traceparent: ce.traceparent } : {}),
    });
  } catch {
    const check = eventCatalogue[ce.type].schema.safeParse({ ...ce.data, tenantId });
    return fromZod((check as { error: z.ZodError }).error, 'data.');
  }
  if (event.type === 'ExternalAllocationStarted' && event.data.gpus > EXTERNAL_ALLOCATION_GPUS_MAX) return rejected('data.gpus', `data.gpus: at most ${EXTERNAL_ALLOCATION_GPUS_MAX}`);
  const field = `data.${atField}`;
  if (atMs > nowMs + DEFAULT_LATENESS_HORIZON.aheadMs) return rejected(field, `${field}: more than ${DEFAULT_LATENESS_HORIZON.aheadMs / 60_000} minutes ahead of receipt`);
  const hash = sha256(canonicalJsonReference({ type: ce.type, source: ce.source, subject: ce.subject ?? null, data: event.data }));
  if (atMs < nowMs - DEFAULT_LATENESS_HORIZON.backMs) {
    // Late: the same report as ExternalAllocationReportedLate, under the same id and envelope.
    const d = event.data as Record<string, unknown>;
    const { startedAt, stoppedAt, ...rest } = d;
    const late = publisher.build(
      'ExternalAllocationReportedLate',
      { ...rest, report: startedAt !== undefined ? 'started' : 'stopped', at: (startedAt ?? stoppedAt) as string, receivedAt: new Date(nowMs).toISOString() } as EventData<'ExternalAllocationReportedLate'>,
      { id: event.id, source: event.source, time: event.time, tenantId: event.tenantid, correlationId: event.correlationid, ...(event.traceparent ? { traceparent: event.traceparent } : {}) },
    );
    return { index, ceId: ce.id, source: ce.source, event: late, late: true, hash };
  }
  return { index, ceId: ce.id, source: ce.source, event: event as Candidate['event'], late: false, hash };
}

describe('validate', () => {
  const NOW = Date.UTC(2026, 9, 24, 12);
  const iso = (ms: number) => new Date(ms).toISOString();
  // build/makeEvent only need the topology: the bus and the database are never touched by validate.
  const publisher = new EventPublisher(undefined as unknown as JetStreamClient, topology('spec'), 'metering');
  const ingest = new ExternalIngest(undefined as unknown as Kysely<Database>, publisher, undefined as unknown as NatsConnection);
  const startedData = { allocationId: 'a-1', projectId: 'p', gpuModel: 'L40S', gpus: 2, capacityType: 'on-demand', startedAt: iso(NOW - 3_600_000) };
  const base = { specversion: '1.0', id: 'e-1', source: 'urn:partner', type: 'ExternalAllocationStarted', data: startedData };
  const samples: unknown[] = [
    base,
    { ...base, time: '2026-10-24T13:00:00+02:00', subject: 'rack-7', datacontenttype: 'application/json', tenantid: 'acme', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', extra: 'dropped' },
    { ...base, traceparent: '' },
    { specversion: '1.0', id: 'e-2', source: 'urn:partner', type: 'ExternalAllocationStopped', data: { allocationId: 'a-1', stoppedAt: iso(NOW - 60_000), unknownKey: 1 } },
    { ...base, data: { ...startedData, tenantId: 'acme' } },
    { ...base, specversion: '0.3' },
    { ...base, id: '' },
    { ...base, id: 'x'.repeat(129) },
    { ...base, id: 'e\r\n1' },
    { ...base, type: 'JobSubmitted' },
    { ...base, time: '2026-10-24 12:00' },
    { ...base, data: 'not an object' },
    { ...base, data: undefined },
    { id: 42, type: 7 },
    null,
    'a string',
    [base],
    { ...base, tenantid: 'globex' },
    { ...base, data: { ...startedData, tenantId: 'globex' } },
    { ...base, data: { allocationId: 'a-1' } },
    { ...base, data: { ...startedData, gpus: 0 } },
    { ...base, data: { ...startedData, gpus: EXTERNAL_ALLOCATION_GPUS_MAX + 1 } },
    { ...base, data: { ...startedData, startedAt: iso(NOW - 36 * 86_400_000) } },
    { ...base, data: { ...startedData, startedAt: iso(NOW + 6 * 60_000) } },
    { ...base, data: { ...startedData, startedAt: 'yesterday' } },
    { ...base, source: 'ü"\\\u2028', subject: 'ß' },
  ];
  it('gives the verdict, field, reason, envelope and hash of the zod-only version for each event', () => {
    samples.forEach((raw, index) => {
      const fast = ingest.validate(raw, index, 'acme', NOW);
      expect(fast, JSON.stringify(raw)?.slice(0, 120)).toEqual(validateReference(publisher, raw, index, 'acme', NOW));
    });
    const accepted = samples.map((raw, index) => ingest.validate(raw, index, 'acme', NOW)).filter((r) => 'event' in r);
    // base, the full one, the stop, the one with its own tenantId, the late one, the unicode one (an empty traceparent is not one).
    expect(accepted.length).toBe(6);
    expect(accepted.filter((c) => 'late' in c && c.late).map((c) => 'event' in c && c.event.type)).toEqual(['ExternalAllocationReportedLate']);
  });
  it('gives an event without a traceparent the request trace context, and keeps its own otherwise', () => {
    const withContext = ingest.validate(base, 0, 'acme', NOW, '00-11111111111111111111111111111111-2222222222222222-01');
    expect('event' in withContext && withContext.event.traceparent).toBe('00-11111111111111111111111111111111-2222222222222222-01');
    const own = ingest.validate({ ...base, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }, 0, 'acme', NOW, '00-11111111111111111111111111111111-2222222222222222-01');
    expect('event' in own && own.event.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  });
  it('rejects control characters in id, source, subject, tenantid and traceparent with the field', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    for (const bad of ['\r\n', '\n', '\u0000', '\u007f', '\u0085', '\t']) {
      for (const field of ['id', 'source', 'subject', 'tenantid', 'traceparent'] as const) {
        const value = field === 'traceparent' ? `${traceparent}${bad}` : field === 'tenantid' ? `acme${bad}` : `x${bad}y`;
        const result = ingest.validate({ ...base, [field]: value }, 3, 'acme', NOW);
        expect(result, `${field} with ${JSON.stringify(bad)}`).toMatchObject({ index: 3, status: 'rejected', field, reason: expect.stringMatching(new RegExp(`^${field}: .*control characters`)) });
      }
    }
  });
  it('parses traceparent strictly', () => {
    const valid = ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00', '01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future'];
    const invalid = [
      '',
      ' 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 ',
      '00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01',
      '00-00000000000000000000000000000000-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
      'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra',
      '00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01',
      'not a traceparent',
    ];
    for (const value of valid) expect(traceparentProblem(value), value).toBeUndefined();
    for (const value of invalid) {
      expect(traceparentProblem(value), value).toBeDefined();
      expect(ingest.validate({ ...base, traceparent: value }, 0, 'acme', NOW), value).toMatchObject({ status: 'rejected', field: 'traceparent' });
    }
  });
});

describe('eventBytes', () => {
  it('writes the bytes encodeEvent writes, unicode and lone surrogates included', () => {
    const publisher = new EventPublisher(undefined as unknown as JetStreamClient, topology('spec'), 'metering');
    for (const source of ['plain', 'ünïcødé 🚀', 'lone \ud800 surrogate', '"quoted"\\']) {
      const event = publisher.build('ExternalAllocationStopped', { allocationId: 'a-1', tenantId: 'acme', stoppedAt: '2026-10-24T12:00:00.000Z' }, { id: 'e', source, time: '2026-10-24T12:00:00.000Z', tenantId: 'acme', correlationId: 'e' });
      expect(Buffer.from(eventBytes(event)).equals(Buffer.from(encodeEvent(event)))).toBe(true);
    }
  });
});
