/**
 * Proves that the fast paths of external ingestion answer exactly what the plain ones did:
 * - canonicalJson, whose SHA-256 is stored in every receipt, writes exactly the text of its
 *   first version (sorted keys, undefined members left out) for nested objects, arrays, unicode
 *   and escaped keys, and payloadHash equals the hash of canonicalJson of the whole
 *   { type, source, time, subject, data } object: a rewrite for speed must not turn a retried
 *   request into a 409 conflict;
 * - validate (compiled envelope check, zod only for the reason of a rejection, makeEvent with the
 *   request's trace context) gives, for valid and malformed CloudEvents alike, the same verdict,
 *   reason text, envelope and hash as the zod-only version it replaced;
 * - eventBytes writes the bytes encodeEvent writes.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeEvent, topology, type DomainEvent } from '@fastgpu/contracts';
import type { AnyDatabase } from '@fastgpu/db';
import { EventPublisher } from '@fastgpu/messaging';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient } from '@nats-io/jetstream';
import { z } from 'zod';
import { eventBytes } from './ack-counting-publisher';
import { canonicalJson, externalCloudEventSchema, ExternalIngest, payloadHash, type IngestResult } from './external.ingest';
import { DEFAULT_LATENESS_HORIZON, EXTERNAL_ALLOCATION_GPUS_MAX } from '../usage/usage.fold';

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

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('payloadHash', () => {
  it('is the SHA-256 of canonicalJson({ type, source, time, subject ?? null, data })', () => {
    const cases: Array<[string, string, string, string | undefined, unknown]> = [
      ['ExternalAllocationStarted', 'urn:partner:cluster-7', '2026-10-24T09:00:00.000Z', undefined, { allocationId: 'a', tenantId: 't', projectId: 'p', gpuModel: 'L40S', gpus: 2, capacityType: 'on-demand', startedAt: '2026-10-24T09:00:00.000Z' }],
      ['ExternalAllocationStopped', 'ürn:"quoted"\\\u2028', '2026-10-24T10:00:00+02:00', 'sub"ject', { stoppedAt: 'x', allocationId: 'a', tenantId: 't' }],
      ['ExternalAllocationStopped', '', '', '', { nested: { b: [1, { d: undefined, c: 'é' }], a: null } }],
    ];
    for (const [type, source, time, subject, data] of cases) {
      expect(payloadHash(type, source, time, subject, data)).toBe(sha256(canonicalJsonReference({ type, source, time, subject: subject ?? null, data })));
    }
  });
});

/** The zod-only validate the fast one replaced, kept as the reference (publisher.build, createHash). */
function validateReference(publisher: EventPublisher, raw: unknown, index: number, tenantId: string, nowMs: number): IngestResult | { index: number; event: DomainEvent; hash: string } {
  const idOf = (value: unknown) => (typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string' ? (value as { id: string }).id : null);
  const rejected = (reason: string): IngestResult => ({ id: idOf(raw), index, status: 'rejected', reason });
  const describeError = (error: z.ZodError) =>
    error.issues
      .slice(0, 3)
      .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
      .join('; ');
  const parsed = externalCloudEventSchema.safeParse(raw);
  if (!parsed.success) return rejected(describeError(parsed.error));
  const ce = parsed.data;
  if (ce.tenantid !== undefined && ce.tenantid !== tenantId) return rejected('tenantid: does not match the API key');
  if (ce.data.tenantId !== undefined && ce.data.tenantId !== tenantId) return rejected('data.tenantId: does not match the API key');
  const atField = ce.type === 'ExternalAllocationStarted' ? 'startedAt' : 'stoppedAt';
  const atValue = ce.data[atField];
  const atMs = typeof atValue === 'string' ? Date.parse(atValue) : Number.NaN;
  let event: DomainEvent;
  try {
    event = publisher.build(ce.type, { ...ce.data, tenantId } as never, {
      id: ce.id,
      source: ce.source,
      time: ce.time ? new Date(Date.parse(ce.time)).toISOString() : typeof atValue === 'string' ? atValue : new Date(nowMs).toISOString(),
      tenantId,
      correlationId: ce.id,
      ...(ce.traceparent ? { traceparent: ce.traceparent } : {}),
    });
  } catch (error) {
    return rejected((error as Error).message);
  }
  if (event.type === 'ExternalAllocationStarted' && event.data.gpus > EXTERNAL_ALLOCATION_GPUS_MAX) return rejected(`data.gpus: at most ${EXTERNAL_ALLOCATION_GPUS_MAX}`);
  const field = `data.${atField}`;
  if (atMs < nowMs - DEFAULT_LATENESS_HORIZON.backMs) return rejected(`${field}: older than the lateness horizon (${DEFAULT_LATENESS_HORIZON.backMs / 86_400_000} days before receipt)`);
  if (atMs > nowMs + DEFAULT_LATENESS_HORIZON.aheadMs) return rejected(`${field}: more than ${DEFAULT_LATENESS_HORIZON.aheadMs / 60_000} minutes ahead of receipt`);
  const { data, time } = event;
  return { index, event, hash: sha256(canonicalJsonReference({ type: ce.type, source: ce.source, time, subject: ce.subject ?? null, data })) };
}

describe('validate', () => {
  const NOW = Date.UTC(2026, 9, 24, 12);
  const iso = (ms: number) => new Date(ms).toISOString();
  // build/makeEvent only need the topology: the bus and the database are never touched by validate.
  const publisher = new EventPublisher(undefined as unknown as JetStreamClient, topology('spec'), 'metering');
  const ingest = new ExternalIngest(undefined as unknown as AnyDatabase, publisher, undefined as unknown as NatsConnection);
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
  it('gives the verdict, reason, envelope and hash of the zod-only version for each event', () => {
    samples.forEach((raw, index) => {
      const fast = ingest.validate(raw, index, 'acme', NOW);
      expect(fast, JSON.stringify(raw)?.slice(0, 120)).toEqual(validateReference(publisher, raw, index, 'acme', NOW));
    });
    const accepted = samples.map((raw, index) => ingest.validate(raw, index, 'acme', NOW)).filter((r) => 'event' in r);
    expect(accepted.length).toBe(6);
  });
  it('gives an event without a traceparent the request trace context, and keeps its own otherwise', () => {
    const withContext = ingest.validate(base, 0, 'acme', NOW, '00-11111111111111111111111111111111-2222222222222222-01');
    expect('event' in withContext && withContext.event.traceparent).toBe('00-11111111111111111111111111111111-2222222222222222-01');
    const own = ingest.validate({ ...base, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }, 0, 'acme', NOW, '00-11111111111111111111111111111111-2222222222222222-01');
    expect('event' in own && own.event.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
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
