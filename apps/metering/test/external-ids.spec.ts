/**
 * Proves, on real NATS and Postgres through `POST /v1/events`, that tenants cannot reach each
 * other's events through CloudEvent ids (issue 14, points 2, 5 and 6):
 * - the id a client chooses never becomes the internal event id or `Nats-Msg-Id`: tenant A
 *   posting B's next `JobSubmitted` id (computed as intake computes it, README's `demo-1` key
 *   included) does not make the bus drop B's job event;
 * - ids are per (tenant, source): another tenant reusing an id (even with other content) is
 *   accepted like any new id, with nothing revealed, and no tenant can claim an id first to block
 *   another's event; within one tenant the same id from another source is another event;
 * - control characters in `id`, `source`, `subject` or `traceparent` reject that event with its
 *   field and reason (never a 500), and the events after it in the batch are processed normally:
 *   every receipt stands for an event the log holds, and the other events are published.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveId, nameId, type DomainEvent } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { HOUR_MS } from '@fastgpu/money';
import { externalEventId } from '../src/external/external.ingest';
import { MeteringHarness, started, stopped } from './api-harness';

let h: MeteringHarness;
const keys: Record<string, string> = {};

/** The `JobSubmitted` event id intake gives a job submitted with an Idempotency-Key (apps/intake jobs.service.ts). */
const jobSubmittedIdFor = (tenantId: string, idempotencyKey: string) => deriveId(nameId(tenantId, 'job', idempotencyKey), 'JobSubmitted');

function jobSubmitted(publisher: EventPublisher, tenantId: string, idempotencyKey: string): DomainEvent<'JobSubmitted'> {
  const jobId = nameId(tenantId, 'job', idempotencyKey);
  const submittedAt = new Date(h.now).toISOString();
  return publisher.build(
    'JobSubmitted',
    { jobId, tenantId, projectId: 'demo', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 2, runtimeMs: 20_000, priorityClass: 'standard', priority: 0, preemptible: false, gang: false, capacityType: 'on-demand', dependsOn: [], idempotencyKey, submittedAt },
    { id: jobSubmittedIdFor(tenantId, idempotencyKey), time: submittedAt, tenantId, correlationId: jobId },
  );
}

beforeAll(async () => {
  h = await MeteringHarness.start();
  keys.mallory = await h.issueKey('k-mallory', 'mallory', 'tenant');
  keys.victim = await h.issueKey('k-victim', 'victim', 'tenant');
  keys.demo = await h.issueKey('k-demo', 'demo', 'tenant');
});

afterAll(async () => {
  await h?.close();
});

describe('external event ids cannot hit platform ids', () => {
  it("does not drop another tenant's JobSubmitted whose id was posted first as a CloudEvent id", async () => {
    const intake = new EventPublisher(h.env.bus.js, h.env.bus.topology, 'intake');
    const targets = [
      { tenantId: 'victim', key: 'nightly-42' },
      // The README's own example: the demo tenant's job with Idempotency-Key demo-1.
      { tenantId: 'demo', key: 'demo-1' },
    ];
    const before = await h.lastSequence();
    const posted = await h.call('POST', '/v1/events', keys.mallory, {
      body: [
        ...targets.map((t, i) => started(jobSubmittedIdFor(t.tenantId, t.key), `hit-${i}`, h.now - HOUR_MS)),
        started('demo', 'hit-demo', h.now - HOUR_MS),
        started('demo-1', 'hit-demo-1', h.now - HOUR_MS),
      ],
    });
    expect(posted.status).toBe(200);
    expect(posted.body).toMatchObject({ accepted: 4, rejected: 0, conflicts: 0 });
    // In the log, the external events carry ids derived from (tenant, source, id), never the client's.
    const logged = await h.eventsAfter(before);
    expect(logged.map((e) => e.id)).toEqual(posted.body.results.map((r: { id: string }) => externalEventId('mallory', 'urn:partner:cluster-7', r.id)));
    expect(posted.body.results.map((r: { eventId: string }) => r.eventId)).toEqual(logged.map((e) => e.id));
    for (const event of logged) expect(posted.body.results.map((r: { id: string }) => r.id)).not.toContain(event.id);

    for (const target of targets) {
      const published = await intake.publish(jobSubmitted(intake, target.tenantId, target.key));
      expect(published.duplicate, `${target.tenantId}/${target.key}`).toBe(false);
      const stored = (await h.eventsAfter(published.sequence - 1))[0]!;
      expect(stored).toMatchObject({ id: jobSubmittedIdFor(target.tenantId, target.key), type: 'JobSubmitted', tenantid: target.tenantId });
    }
  });
});

describe('CloudEvent ids are per tenant and source', () => {
  it('accepts an id another tenant already sent, with other content, exactly like a new id', async () => {
    const first = await h.call('POST', '/v1/events', keys.victim, { body: started('shared-1', 'v-alloc', h.now - 2 * HOUR_MS, 4) });
    // The same (source, id) from another tenant, with other content: accepted, nothing about the other tenant in the answer.
    const second = await h.call('POST', '/v1/events', keys.mallory, { body: started('shared-1', 'm-alloc', h.now - 2 * HOUR_MS, 1) });
    const fresh = await h.call('POST', '/v1/events', keys.mallory, { body: started('never-used-1', 'm-alloc-2', h.now - 2 * HOUR_MS, 1) });
    expect([first.status, second.status, fresh.status]).toEqual([200, 200, 200]);
    const shape = (body: { results: Array<Record<string, unknown>> }) => ({ ...body, results: body.results.map(({ id: _id, eventId: _eventId, ...rest }) => rest) });
    expect(shape(second.body)).toEqual(shape(fresh.body));
    expect(second.body.results[0].eventId).not.toBe(first.body.results[0].eventId);
  });

  it('lets no tenant claim an id first to block another tenant', async () => {
    // Mallory claims ids victim will use, with every payload victim could send.
    const victimBatch = [started('claimed-1', 'v-alloc-2', h.now - 3 * HOUR_MS), stopped('claimed-2', 'v-alloc-2', h.now - HOUR_MS)];
    expect((await h.call('POST', '/v1/events', keys.mallory, { body: victimBatch })).body).toMatchObject({ accepted: 2 });
    const victim = await h.call('POST', '/v1/events', keys.victim, { body: victimBatch });
    expect(victim.status).toBe(200);
    expect(victim.body).toMatchObject({ accepted: 2, duplicates: 0, conflicts: 0 });
    await h.settle();
    const usage = await h.call('GET', `/v1/usage?from=${new Date(h.now - 6 * HOUR_MS).toISOString()}&to=${new Date(h.now + HOUR_MS).toISOString()}&window=day&groupBy=allocation`, keys.victim);
    expect(usage.body.rows).toEqual(expect.arrayContaining([expect.objectContaining({ allocation: 'v-alloc-2', gpuMs: 2 * 2 * HOUR_MS })]));
  });

  it('keeps one tenant apart by source too: the same id from another source is another event', async () => {
    const a = await h.call('POST', '/v1/events', keys.victim, { body: started('per-source-1', 'src-a', h.now - HOUR_MS, 1, 'urn:partner:a') });
    const b = await h.call('POST', '/v1/events', keys.victim, { body: started('per-source-1', 'src-b', h.now - HOUR_MS, 2, 'urn:partner:b') });
    expect([a.body.accepted, b.body.accepted]).toEqual([1, 1]);
    // The same source again with other content is a conflict of that tenant's own id.
    const changed = await h.call('POST', '/v1/events', keys.victim, { body: started('per-source-1', 'src-a', h.now - HOUR_MS, 3, 'urn:partner:a') });
    expect(changed.status).toBe(409);
    expect(changed.body.results[0]).toMatchObject({ status: 'conflict', field: 'id' });
  });
});

describe('control characters in CloudEvent attributes', () => {
  it('rejects the event with field and reason and processes the rest of the batch', async () => {
    const before = await h.lastSequence();
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const batch = [
      started('cc-ok-1', 'cc-1', h.now - HOUR_MS),
      started('cc-bad\r\nInjected: 1', 'cc-2', h.now - HOUR_MS),
      { ...started('cc-ok-2', 'cc-3', h.now - HOUR_MS), traceparent: `${traceparent}\r\nx-evil: 1` },
      started('cc-ok-3', 'cc-4', h.now - HOUR_MS, 1, 'urn:partner\u0000'),
      { ...started('cc-ok-4', 'cc-5', h.now - HOUR_MS), subject: 'rack\n7' },
      { ...started('cc-ok-5', 'cc-6', h.now - HOUR_MS), traceparent: ` ${traceparent}` },
      started('cc-ok-6', 'cc-7', h.now - HOUR_MS, 0),
      { ...started('cc-ok-7', 'cc-8', h.now - HOUR_MS), traceparent },
      stopped('cc-ok-8', 'cc-1', h.now - 30 * 60_000),
    ];
    const response = await h.call('POST', '/v1/events', keys.victim, { body: batch, contentType: 'application/cloudevents-batch+json' });
    expect(response.status).toBe(200);
    expect(response.body.results.map((r: { status: string; field?: string }) => `${r.status}${r.field ? ` ${r.field}` : ''}`)).toEqual([
      'accepted',
      'rejected id',
      'rejected traceparent',
      'rejected source',
      'rejected subject',
      'rejected traceparent',
      'rejected data.gpus',
      'accepted',
      'accepted',
    ]);
    for (const r of response.body.results.filter((x: { status: string }) => x.status === 'rejected')) expect(r.reason).toMatch(new RegExp(`^${r.field.replace('.', '\\.')}: `));
    // Exactly the accepted events are in the log, and each has a receipt: nothing received but unpublished.
    const logged = await h.eventsAfter(before);
    const acceptedIds = response.body.results.filter((r: { status: string }) => r.status === 'accepted').map((r: { eventId: string }) => r.eventId);
    expect(logged.map((e) => e.id)).toEqual(acceptedIds);
    const receipts = await h.env.database.db
      .selectFrom('metering_external_event_receipts')
      .select('ce_id')
      .where('tenant_id', '=', 'victim')
      .where('ce_id', 'like', 'cc-%')
      .orderBy('ce_id')
      .execute();
    expect(receipts.map((r) => r.ce_id)).toEqual(['cc-ok-1', 'cc-ok-7', 'cc-ok-8']);
    expect(logged.find((e) => e.correlationid === 'cc-ok-7')?.traceparent).toBe(traceparent);
  });

  it('answers a single event with a CR/LF id with 422, field and reason, never a 500', async () => {
    const response = await h.call('POST', '/v1/events', keys.victim, { body: started('x\r\ny', 'cc-9', h.now - HOUR_MS) });
    expect(response.status).toBe(422);
    expect(response.body.results[0]).toMatchObject({ status: 'rejected', field: 'id', reason: expect.stringMatching(/control characters/) });
  });
});
