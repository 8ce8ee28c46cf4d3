/**
 * Proves, on real NATS and Postgres, what integrators' clients send to `POST /v1/events`:
 * - CloudEvents binary content mode (`ce-*` headers, the body is `data`: what the official SDKs'
 *   HTTP emitter sends by default, reproduced header by header since the SDK is not a dependency
 *   here) is accepted and metered like structured mode, percent-encoded attributes decoded;
 * - a retry that rebuilds the event with a new `time` attribute (as the SDKs do) is a duplicate
 *   in both modes, publishes nothing again and keeps the first event's time; a change of the data,
 *   type or subject under the same (source, id) is a conflict (409, nothing applied);
 * - binary mode meets the same rules as structured mode: a CR/LF id (percent-encoded) is rejected
 *   with its field, a missing attribute names it, a broken percent-encoding is a 400 naming the
 *   header.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS } from '@fastgpu/money';
import { externalEventId } from '../src/external/external.ingest';
import { MeteringHarness, started, stopped } from './api-harness';

let h: MeteringHarness;
let key: string;

/** What the SDK's binary emitter sends for an event built now: `time` is stamped at construction. */
function binaryHeaders(attributes: { id: string; source: string; type: string; time: string; subject?: string }): Record<string, string> {
  return {
    'ce-specversion': '1.0',
    'ce-id': attributes.id,
    'ce-source': attributes.source,
    'ce-type': attributes.type,
    'ce-time': attributes.time,
    ...(attributes.subject ? { 'ce-subject': attributes.subject } : {}),
  };
}

beforeAll(async () => {
  h = await MeteringHarness.start();
  key = await h.issueKey('k-integrator', 'integrator', 'tenant');
});

afterAll(async () => {
  await h?.close();
});

describe('binary content mode', () => {
  const source = 'urn:partner:über-cluster';
  const data = { allocationId: 'bin-1', projectId: 'ext', gpuModel: 'L40S', gpus: 2, capacityType: 'on-demand', startedAt: new Date(0).toISOString() };
  const post = (headers: Record<string, string>, body: unknown) => h.call('POST', '/v1/events', key, { body, headers });

  it('accepts an SDK-style binary event, meters it, and treats a retry with a new time as a duplicate', async () => {
    const startData = { ...data, startedAt: new Date(h.now - 2 * HOUR_MS).toISOString() };
    const before = await h.lastSequence();
    const first = await post(binaryHeaders({ id: 'bin-e-1', source: encodeURIComponent(source), type: 'ExternalAllocationStarted', time: new Date(h.now - 2 * HOUR_MS + 5).toISOString() }), startData);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ accepted: 1, results: [{ id: 'bin-e-1', status: 'accepted', eventId: externalEventId('integrator', source, 'bin-e-1') }] });
    // The SDK rebuilds the event on retry: same id and data, a new time.
    const retried = await post(binaryHeaders({ id: 'bin-e-1', source: encodeURIComponent(source), type: 'ExternalAllocationStarted', time: new Date(h.now).toISOString() }), startData);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ accepted: 0, duplicates: 1, conflicts: 0 });
    const logged = await h.eventsAfter(before);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ source, time: new Date(h.now - 2 * HOUR_MS + 5).toISOString(), correlationid: 'bin-e-1', data: { ...startData, tenantId: 'integrator' } });

    const stop = await post(binaryHeaders({ id: 'bin-e-2', source: encodeURIComponent(source), type: 'ExternalAllocationStopped', time: new Date(h.now).toISOString() }), { allocationId: 'bin-1', stoppedAt: new Date(h.now - HOUR_MS).toISOString() });
    expect(stop.body).toMatchObject({ accepted: 1 });
    await h.settle();
    const usage = await h.call('GET', `/v1/usage?from=${new Date(h.now - 3 * HOUR_MS).toISOString()}&to=${new Date(h.now + HOUR_MS).toISOString()}&groupBy=allocation`, key);
    expect(usage.body.rows).toEqual([expect.objectContaining({ allocation: 'bin-1', gpuMs: 2 * HOUR_MS })]);
  });

  it('answers a changed payload under the same source and id with 409, and a changed time alone with a duplicate', async () => {
    const startData = { ...data, allocationId: 'bin-2', startedAt: new Date(h.now - HOUR_MS).toISOString() };
    const headers = binaryHeaders({ id: 'bin-e-3', source: 'urn:partner:b', type: 'ExternalAllocationStarted', time: new Date(h.now - HOUR_MS).toISOString() });
    expect((await post(headers, startData)).body).toMatchObject({ accepted: 1 });
    const before = await h.lastSequence();
    const changes: Array<[string, Record<string, string>, unknown]> = [
      ['data', headers, { ...startData, gpus: 3 }],
      ['subject', { ...headers, 'ce-subject': 'rack-9' }, startData],
      ['type', { ...headers, 'ce-type': 'ExternalAllocationStopped' }, { allocationId: 'bin-2', stoppedAt: startData.startedAt }],
    ];
    for (const [what, changedHeaders, body] of changes) {
      const response = await post(changedHeaders, body);
      expect(response.status, what).toBe(409);
      expect(response.body.results[0], what).toMatchObject({ status: 'conflict', field: 'id' });
    }
    expect((await post({ ...headers, 'ce-time': new Date(h.now).toISOString() }, startData)).body).toMatchObject({ duplicates: 1 });
    expect(await h.lastSequence()).toBe(before);
  });

  it('applies the structured-mode rules: control characters, missing attributes, broken encodings', async () => {
    const stopData = { allocationId: 'bin-3', stoppedAt: new Date(h.now - HOUR_MS).toISOString() };
    const headers = binaryHeaders({ id: 'bin-e-4', source: 'urn:partner:c', type: 'ExternalAllocationStopped', time: new Date(h.now).toISOString() });
    const crlf = await post({ ...headers, 'ce-id': 'bin%0D%0AInjected:%201' }, stopData);
    expect(crlf.status).toBe(422);
    expect(crlf.body.results[0]).toMatchObject({ status: 'rejected', field: 'id', reason: expect.stringMatching(/control characters/) });
    const { 'ce-source': _source, ...withoutSource } = headers;
    const missing = await post(withoutSource, stopData);
    expect(missing.status).toBe(422);
    expect(missing.body.results[0]).toMatchObject({ status: 'rejected', field: 'source' });
    const broken = await post({ ...headers, 'ce-source': 'urn:%E0%A4%A' }, stopData);
    expect(broken.status).toBe(400);
    expect(broken.body.error.field).toBe('ce-source');
  });
});

describe('structured mode retries', () => {
  it('treats a rebuilt event with a new time as a duplicate', async () => {
    const event = started('st-1', 'st-alloc', h.now - HOUR_MS);
    expect((await h.call('POST', '/v1/events', key, { body: { ...event, time: new Date(h.now - HOUR_MS).toISOString() } })).body).toMatchObject({ accepted: 1 });
    const before = await h.lastSequence();
    const retried = await h.call('POST', '/v1/events', key, { body: [{ ...event, time: new Date(h.now).toISOString() }, stopped('st-2', 'st-alloc', h.now - 30 * 60_000)] });
    expect(retried.status).toBe(200);
    expect(retried.body.results.map((r: { status: string }) => r.status)).toEqual(['duplicate', 'accepted']);
    expect((await h.eventsAfter(before)).map((e) => e.correlationid)).toEqual(['st-2']);
  });
});
