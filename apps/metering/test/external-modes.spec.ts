/**
 * Proves, on real NATS and Postgres, that `POST /v1/events` takes what integrators' clients send,
 * sent by the official CloudEvents SDK (`cloudevents`: `CloudEvent`, its `emitterFor`, whose
 * default is binary content mode, and its `httpTransport`), not by a copy of its headers:
 * - binary mode (`ce-*` headers, the body is `data`) as the SDK's default emitter sends it is
 *   accepted and metered like structured mode, percent-encoded attributes decoded;
 * - a retry that rebuilds the event — the SDK stamps a new `time` on every `new CloudEvent` — is
 *   a duplicate in both modes, publishes nothing again and keeps the first event's time; a change
 *   of the data, type or subject under the same (source, id) is a conflict (409, nothing applied);
 * - binary mode meets the same rules as structured mode: a CR/LF id (percent-encoded) is rejected
 *   with its field, a missing attribute names it, a broken percent-encoding is a 400 naming the
 *   header.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudEvent, emitterFor, httpTransport, type Message } from 'cloudevents';
import { HOUR_MS } from '@fastgpu/money';
import { externalEventId } from '../src/external/external.ingest';
import { MeteringHarness, started, stopped } from './api-harness';

let h: MeteringHarness;
let key: string;
type Answer = Awaited<ReturnType<MeteringHarness['call']>>;
/**
 * The SDK's emitter in its default mode (binary), over a transport that posts the SDK's message
 * (its headers, its body) with the tenant's key and gives back the status with the body.
 */
let emit: (event: CloudEvent<unknown>) => Promise<Answer>;

beforeAll(async () => {
  h = await MeteringHarness.start();
  key = await h.issueKey('k-integrator', 'integrator', 'tenant');
  const send = emitterFor((message: Message) => h.call('POST', '/v1/events', key, { raw: String(message.body), headers: message.headers as Record<string, string> }));
  emit = (event) => send(event) as Promise<Answer>;
});

afterAll(async () => {
  await h?.close();
});

describe('binary content mode, as the CloudEvents SDK sends it', () => {
  // Header values are ASCII: the SDK puts attributes in headers as given, so a client percent-encodes (CloudEvents HTTP binding 3.1.3.2).
  const source = 'urn:partner:über-cluster';
  const encodedSource = encodeURIComponent(source);
  const data = { allocationId: 'bin-1', projectId: 'ext', gpuModel: 'L40S', gpus: 2, capacityType: 'on-demand', startedAt: new Date(0).toISOString() };

  it("accepts the SDK's default emitter over its own HTTP transport, meters it, and treats a rebuilt event (new time) as a duplicate", async () => {
    const startData = { ...data, startedAt: new Date(h.now - 2 * HOUR_MS).toISOString() };
    const before = await h.lastSequence();
    const first = new CloudEvent({ id: 'bin-e-1', source: encodedSource, type: 'ExternalAllocationStarted', datacontenttype: 'application/json', data: startData });
    // The SDK's own transport (node:http), the authorization header passed as its options allow.
    const sdk = emitterFor(httpTransport(`${h.app.url}/v1/events`));
    const answer = (await sdk(first, { headers: { authorization: `Bearer ${key}` } })) as { body: string };
    expect(JSON.parse(answer.body)).toMatchObject({ accepted: 1, results: [{ id: 'bin-e-1', status: 'accepted', eventId: externalEventId('integrator', source, 'bin-e-1') }] });
    // The SDK rebuilds the event on retry: same id and data, a new time stamped by the constructor.
    const rebuilt = new CloudEvent({ id: 'bin-e-1', source: encodedSource, type: 'ExternalAllocationStarted', datacontenttype: 'application/json', data: startData, time: new Date(Date.parse(first.time!) + 1000).toISOString() });
    expect(rebuilt.time).not.toBe(first.time);
    const retried = await emit(rebuilt);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ accepted: 0, duplicates: 1, conflicts: 0 });
    const logged = await h.eventsAfter(before);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ source, time: new Date(first.time!).toISOString(), correlationid: 'bin-e-1', data: { ...startData, tenantId: 'integrator' } });

    const stop = await emit(new CloudEvent({ id: 'bin-e-2', source: encodedSource, type: 'ExternalAllocationStopped', datacontenttype: 'application/json', data: { allocationId: 'bin-1', stoppedAt: new Date(h.now - HOUR_MS).toISOString() } }));
    expect(stop.body).toMatchObject({ accepted: 1 });
    await h.settle();
    const usage = await h.call('GET', `/v1/usage?from=${new Date(h.now - 3 * HOUR_MS).toISOString()}&to=${new Date(h.now + HOUR_MS).toISOString()}&groupBy=allocation`, key);
    expect(usage.body.rows).toEqual([expect.objectContaining({ allocation: 'bin-1', gpuMs: 2 * HOUR_MS })]);
  });

  it('answers a changed payload under the same source and id with 409, and a changed time alone with a duplicate', async () => {
    const startData = { ...data, allocationId: 'bin-2', startedAt: new Date(h.now - HOUR_MS).toISOString() };
    const original = new CloudEvent({ id: 'bin-e-3', source: 'urn:partner:b', type: 'ExternalAllocationStarted', datacontenttype: 'application/json', data: startData });
    expect((await emit(original)).body).toMatchObject({ accepted: 1 });
    const before = await h.lastSequence();
    const changes: Array<[string, CloudEvent<unknown>]> = [
      ['data', original.cloneWith({ data: { ...startData, gpus: 3 } })],
      ['subject', original.cloneWith({ subject: 'rack-9' })],
      ['type', original.cloneWith({ type: 'ExternalAllocationStopped', data: { allocationId: 'bin-2', stoppedAt: startData.startedAt } })],
    ];
    for (const [what, changed] of changes) {
      const response = await emit(changed);
      expect(response.status, what).toBe(409);
      expect(response.body.results[0], what).toMatchObject({ status: 'conflict', field: 'id' });
    }
    expect((await emit(original.cloneWith({ time: new Date(h.now).toISOString() }))).body).toMatchObject({ duplicates: 1 });
    expect(await h.lastSequence()).toBe(before);
  });

  it('applies the structured-mode rules: control characters, missing attributes, broken encodings', async () => {
    const stopData = { allocationId: 'bin-3', stoppedAt: new Date(h.now - HOUR_MS).toISOString() };
    const attributes = { id: 'bin-e-4', source: 'urn:partner:c', type: 'ExternalAllocationStopped', datacontenttype: 'application/json', data: stopData };
    const crlf = await emit(new CloudEvent({ ...attributes, id: 'bin%0D%0AInjected:%201' }));
    expect(crlf.status).toBe(422);
    expect(crlf.body.results[0]).toMatchObject({ status: 'rejected', field: 'id', reason: expect.stringMatching(/control characters/) });
    // The SDK validates unless told not to (`strict` false): what a careless client could still send.
    const { source: _source, ...withoutSource } = attributes;
    const missing = await emit(new CloudEvent(withoutSource, false));
    expect(missing.status).toBe(422);
    expect(missing.body.results[0]).toMatchObject({ status: 'rejected', field: 'source' });
    const broken = await emit(new CloudEvent({ ...attributes, source: 'urn:%E0%A4%A' }, false));
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
