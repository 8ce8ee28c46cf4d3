/**
 * Proves the console's server side on real NATS and Postgres, in the platform every HTTP process
 * runs (libs/platform startServices): /console serves the built console (index with its security
 * headers, hashed assets immutable, deep links answered with index.html, a missing file 404, a
 * missing build 503 saying how to build it); GET /v1/live streams the log filtered by role — a
 * tenant receives its own events and never another tenant's or the fleet's, finance the money
 * events of every tenant, sre everything — resumes after Last-Event-ID (from too far back, it
 * starts now with a `reload` message instead of replaying), skips an event that does
 * not decode, and deletes its consumer when the client goes away or reads too slowly; the
 * dead-letter routes list a page at a time, show, redrive (202 with the republished event),
 * and refuse what the CLI refuses; other roles get 403 in the house error shape.
 */
import 'reflect-metadata';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveFeed, LiveFeeds, LIVE_SOCKET_BUFFER_BYTES_MAX } from '@fastgpu/console';
import { Headers as EventHeaders, newEventId, type DomainEvent } from '@fastgpu/contracts';
import { EventPublisher, sendToDeadLetters } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, insertTestApiKey, logNow, type TestEnvironment } from '@fastgpu/testing';
import { openSse, type SseClient } from './sse';

let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let consoleDirectory: string;
let publisher: EventPublisher;
const keys = { tenantA: '', tenantB: '', finance: '', sre: '' };
const ADMIN = 'test-admin-key-0123456789abcdef';

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN });
  runtime = await createRuntime(env.config);
  consoleDirectory = await mkdtemp(path.join(tmpdir(), 'fastgpu-console-'));
  app = await startServices(runtime, [], { port: 0, logger: false, consoleDirectory });
  publisher = new EventPublisher(env.bus.js, env.bus.topology, 'console-api-test');
  const issuedAt = new Date();
  keys.tenantA = await insertTestApiKey(env.database.db, { keyId: 'key-a', tenantId: 'tenant-a', role: 'tenant', issuedAt });
  keys.tenantB = await insertTestApiKey(env.database.db, { keyId: 'key-b', tenantId: 'tenant-b', role: 'tenant', issuedAt });
  keys.finance = await insertTestApiKey(env.database.db, { keyId: 'key-finance', tenantId: null, role: 'finance', issuedAt });
  keys.sre = await insertTestApiKey(env.database.db, { keyId: 'key-sre', tenantId: null, role: 'sre', issuedAt });
});

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
  if (consoleDirectory) await rm(consoleDirectory, { recursive: true, force: true });
});

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

const meta = (tenantId: string | null, time: string) => ({ id: newEventId(), time, tenantId, correlationId: newEventId() });

async function send<E extends DomainEvent>(event: E): Promise<{ event: E; sequence: number }> {
  const { sequence } = await publisher.publish(event);
  return { event, sequence };
}

const leaseRelease = (tenantId: string, at: string) => send(publisher.build('LeaseReleaseRequested', { leaseId: `lease-${newEventId()}`, tenantId, requestedAt: at }, meta(tenantId, at)));
const nodeUndrained = (at: string) => send(publisher.build('NodeUndrained', { nodeId: `node-${newEventId().slice(-8)}`, undrainedAt: at }, meta(null, at)));
const creditGranted = (tenantId: string, at: string) =>
  send(publisher.build('CreditGranted', { grantId: `grant-${newEventId()}`, tenantId, amount: '10.00', currency: 'USD', priority: 1, expiresAt: null, grantedAt: at, actor: 'key-finance', reason: 'console test' }, meta(tenantId, at)));

async function eventsConsumers(): Promise<number> {
  return (await env.bus.jsm.streams.info(env.bus.topology.streams.events)).state.consumer_count;
}

function live(key: string, headers: Record<string, string> = {}, query = ''): Promise<SseClient> {
  return openSse(`${app.url}/v1/live${query}`, { ...bearer(key), ...headers });
}

describe('/console', () => {
  it('answers 503 saying how to build it while dist/console is missing, then serves the build without a restart', async () => {
    const missing = await fetch(`${app.url}/console`);
    expect(missing.status).toBe(503);
    const body = (await missing.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('console_not_built');
    expect(body.error.message).toContain('npm run build:console');

    await mkdir(path.join(consoleDirectory, 'assets'), { recursive: true });
    await writeFile(path.join(consoleDirectory, 'index.html'), '<!doctype html><html><head><script type="module" src="/console/assets/index-abc123.js"></script></head><body><div id="root"></div></body></html>');
    await writeFile(path.join(consoleDirectory, 'assets', 'index-abc123.js'), 'console.log("console")');
    await writeFile(path.join(consoleDirectory, 'assets', 'index-abc123.css'), 'body{margin:0}');

    for (const url of ['/console', '/console/', '/console/jobs/job-123', '/console/fleet?node=n1']) {
      const page = await fetch(`${app.url}${url}`);
      expect(page.status, url).toBe(200);
      expect(page.headers.get('content-type'), url).toMatch(/^text\/html/);
      expect(page.headers.get('cache-control'), url).toBe('no-cache');
      expect(page.headers.get('content-security-policy'), url).toContain("script-src 'self'");
      expect(page.headers.get('content-security-policy'), url).not.toContain('unsafe-inline');
      expect(page.headers.get('x-content-type-options'), url).toBe('nosniff');
      expect(await page.text(), url).toContain('<div id="root">');
    }
    const script = await fetch(`${app.url}/console/assets/index-abc123.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^(application|text)\/javascript/);
    expect(script.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await script.text()).toBe('console.log("console")');
    const style = await fetch(`${app.url}/console/assets/index-abc123.css`);
    expect(style.headers.get('content-type')).toMatch(/^text\/css/);

    const gone = await fetch(`${app.url}/console/assets/index-old.js`);
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as { error: { code: string } }).error.code).toBe('not_found');
    expect((await fetch(`${app.url}/console/..%2f..%2fpackage.json`)).status).toBe(404);
    expect((await fetch(`${app.url}/console/.env`)).status).toBe(404);
  });
});

describe('GET /v1/live', () => {
  it('gives a tenant only its own events, finance the money of every tenant, sre every event', async () => {
    const [a, b, finance, sre] = await Promise.all([live(keys.tenantA), live(keys.tenantB), live(keys.finance), live(keys.sre)]);
    try {
      for (const client of [a, b, finance, sre]) {
        expect(client.status).toBe(200);
        expect(client.headers.get('content-type')).toMatch(/^text\/event-stream/);
      }
      const at = new Date(await logNow(env.bus)).toISOString();
      const ofB = await leaseRelease('tenant-b', at);
      const node = await nodeUndrained(at);
      const creditOfB = await creditGranted('tenant-b', at);
      const ofA = await leaseRelease('tenant-a', at);
      // The log is read in order: once A's own event arrives, everything before it was judged.
      const received = await a.waitFor((m) => m.id === String(ofA.sequence), "tenant A's event");
      expect(received.event).toBe('LeaseReleaseRequested');
      expect(JSON.parse(received.data)).toEqual({ seq: ofA.sequence, type: 'LeaseReleaseRequested', time: ofA.event.time, tenantId: 'tenant-a', subject: ofA.event.subject, data: ofA.event.data });
      expect(a.messages.map((m) => m.id)).toEqual([String(ofA.sequence)]);

      await b.waitFor((m) => m.id === String(creditOfB.sequence), "tenant B's credit");
      expect(b.messages.map((m) => m.id)).toEqual([String(ofB.sequence), String(creditOfB.sequence)]);

      await sre.waitFor((m) => m.id === String(ofA.sequence), 'the last event on the sre feed');
      expect(sre.messages.map((m) => [m.id, m.event])).toEqual([
        [String(ofB.sequence), 'LeaseReleaseRequested'],
        [String(node.sequence), 'NodeUndrained'],
        [String(creditOfB.sequence), 'CreditGranted'],
        [String(ofA.sequence), 'LeaseReleaseRequested'],
      ]);
      expect(JSON.parse(sre.messages[1]!.data)).toMatchObject({ tenantId: null, data: { nodeId: node.event.data.nodeId } });

      // Finance: the credit (money), not the leases nor the node; a credit of A after proves it read past them.
      const creditOfA = await creditGranted('tenant-a', at);
      await finance.waitFor((m) => m.id === String(creditOfA.sequence), "finance's second credit");
      expect(finance.messages.map((m) => m.id)).toEqual([String(creditOfB.sequence), String(creditOfA.sequence)]);
    } finally {
      for (const client of [a, b, finance, sre]) client.close();
    }
  });

  it('resumes after Last-Event-ID (or ?after=), and skips an event that does not decode', async () => {
    const at = new Date(await logNow(env.bus)).toISOString();
    const first = await nodeUndrained(at);
    // Not an event: its consumers dead-letter it; the live feed leaves it out.
    const garbage = await env.bus.js.publish(env.bus.topology.subjects.reliabilityNode('garbage'), new TextEncoder().encode('{"not":"an event"'), { msgID: `garbage-${newEventId()}` });
    const second = await nodeUndrained(at);
    const third = await nodeUndrained(at);
    for (const client of [await live(keys.sre, { 'last-event-id': String(first.sequence) }), await live(keys.sre, {}, `?after=${first.sequence}`)]) {
      try {
        await client.waitFor((m) => m.id === String(third.sequence), 'the third event after resuming');
        expect(client.messages.map((m) => m.id)).toEqual([String(second.sequence), String(third.sequence)]);
        expect(client.messages.some((m) => m.id === String(garbage.seq))).toBe(false);
      } finally {
        client.close();
      }
    }
    const bad = await live(keys.sre, { 'last-event-id': 'abc' });
    expect(bad.status).toBe(400);
    expect(bad.error).toMatchObject({ error: { code: 'invalid_request', field: 'Last-Event-ID' } });
  });

  it('starts now with a reload message when Last-Event-ID is too far back, and resumes within the bound', async () => {
    const feeds = app.app.get(LiveFeeds, { strict: false });
    const bounds = feeds.resumeBounds;
    feeds.resumeBounds = { eventsMax: 3, ageMsMax: bounds.ageMsMax };
    try {
      const at = new Date(await logNow(env.bus)).toISOString();
      const sent = [];
      for (let i = 0; i < 5; i++) sent.push(await nodeUndrained(at));
      const last = sent[4]!.sequence;
      const far = await live(keys.sre, { 'last-event-id': String(sent[0]!.sequence - 1) });
      const near = await live(keys.sre, { 'last-event-id': String(sent[1]!.sequence) });
      try {
        const reload = await far.waitFor((m) => m.event === 'reload', 'the reload message');
        expect(far.messages[0]).toBe(reload);
        expect(reload.id).toBe(String(last));
        expect(JSON.parse(reload.data)).toMatchObject({ reason: 'too-many', missed: 5, resumeAfter: last });
        // The feed goes on live after the reload; the missed events are not replayed.
        const next = await nodeUndrained(at);
        await far.waitFor((m) => m.id === String(next.sequence), 'the next event after the reload');
        expect(far.messages.map((m) => m.id)).toEqual([String(last), String(next.sequence)]);
        await near.waitFor((m) => m.id === String(next.sequence), 'the next event, resumed');
        expect(near.messages.map((m) => m.id)).toEqual([...sent.slice(2).map((e) => String(e.sequence)), String(next.sequence)]);
        expect(near.messages.some((m) => m.event === 'reload')).toBe(false);
      } finally {
        far.close();
        near.close();
      }
    } finally {
      feeds.resumeBounds = bounds;
    }
  });

  it('deletes its consumer when the client goes away', async () => {
    const feeds = app.app.get(LiveFeeds, { strict: false });
    // The earlier tests' feeds are gone (each deletes its consumer before it leaves the set).
    await eventually(() => feeds.open.size === 0, { message: 'earlier feeds still open' });
    const before = await eventsConsumers();
    const client = await live(keys.tenantA);
    expect(client.status).toBe(200);
    expect(feeds.open.size).toBe(1);
    expect(await eventsConsumers()).toBe(before + 1);
    client.close();
    await eventually(async () => feeds.open.size === 0 && (await eventsConsumers()) === before, { message: 'the feed and its consumer outlived the client' });
  });

  it('drops a client that does not read, deleting its consumer', async () => {
    const before = await eventsConsumers();
    // A socket that never drains, already holding nearly the bound (a client that stopped reading a while ago).
    let written = LIVE_SOCKET_BUFFER_BYTES_MAX - 2000;
    let ended = false;
    const feed = new LiveFeed(env.bus, { role: 'sre', tenantId: null }, {
      write: (text) => void (written += text.length),
      get bufferedBytes() {
        return written;
      },
      end: () => void (ended = true),
    });
    await feed.open(await LiveFeed.nowSequence(env.bus));
    await feed.run();
    const at = new Date(await logNow(env.bus)).toISOString();
    const reason = feed.done;
    // Each event is written until the queued bytes pass the bound; the next one ends the feed.
    for (let i = 0; written <= LIVE_SOCKET_BUFFER_BYTES_MAX && i < 1000; i++) {
      const { sequence } = await nodeUndrained(at);
      await eventually(() => written > LIVE_SOCKET_BUFFER_BYTES_MAX || feed.sent >= i + 1, { message: `event ${sequence} not written` });
    }
    await nodeUndrained(at);
    expect(await reason).toBe('slow-client');
    expect(ended).toBe(true);
    expect(written).toBeLessThan(LIVE_SOCKET_BUFFER_BYTES_MAX + 1024);
    await eventually(async () => (await eventsConsumers()) === before, { message: 'the dropped feed kept its consumer' });
  });

  it('refuses a request without a key (401) in the house error shape', async () => {
    const response = await fetch(`${app.url}/v1/live`);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: { code: 'unauthenticated', field: 'Authorization' } });
  });
});

describe('/v1/dead-letters', () => {
  async function deadLetter(consumer: string, body: string, originalSequence: number, subject = env.bus.topology.subjects.tenant('poison')): Promise<number> {
    const headers = (await import('@nats-io/transport-node')).headers();
    headers.set(EventHeaders.eventType, 'TenantCreated');
    return sendToDeadLetters(env.bus.js, env.bus.topology, { consumer, originalSubject: subject, originalStream: env.bus.topology.streams.events, originalSequence, deliveries: 1, reason: 'invalid TenantCreated data: name: required', headers, data: new TextEncoder().encode(body) });
  }

  it('lists a page at a time, shows one, redrives it (202) and refuses what would fail again', async () => {
    const valid = publisher.build('TenantCreated', { tenantId: 'poison', name: 'Poison', billingTimeZone: 'UTC', currency: 'USD', createdAt: new Date().toISOString() }, { id: newEventId(), time: new Date().toISOString(), tenantId: 'poison', correlationId: newEventId() });
    const big = JSON.stringify({ ...valid, padding: 'x'.repeat(10_000) });
    const first = await deadLetter('intake-directory', JSON.stringify(valid), 900_001);
    const second = await deadLetter('metering-usage', '{not json', 900_002);
    const third = await deadLetter('billing-ledger', big, 900_003);

    const page1 = await fetch(`${app.url}/v1/dead-letters?limit=2`, { headers: bearer(keys.sre) });
    expect(page1.status).toBe(200);
    const body1 = (await page1.json()) as { items: Array<Record<string, unknown>>; next: string | null };
    expect(body1.items.map((i) => i.seq)).toEqual([first, second]);
    expect(body1.items[0]).toMatchObject({ consumer: 'intake-directory', subject: env.bus.topology.subjects.tenant('poison'), reason: 'invalid TenantCreated data: name: required', eventType: 'TenantCreated', eventId: valid.id, originalSequence: 900_001, count: 1, payloadTruncated: false });
    expect(body1.next).toBe(String(second));
    const page2 = (await (await fetch(`${app.url}/v1/dead-letters?limit=2&after=${body1.next}`, { headers: bearer(keys.sre) })).json()) as typeof body1;
    expect(page2.items.map((i) => i.seq)).toEqual([third]);
    expect(page2.next).toBeNull();
    expect(page2.items[0]).toMatchObject({ payloadTruncated: true, payloadBytes: Buffer.byteLength(big) });
    expect(Buffer.byteLength(page2.items[0]!.payload as string)).toBe(4096);

    const shown = (await (await fetch(`${app.url}/v1/dead-letters/${third}`, { headers: bearer(keys.sre) })).json()) as Record<string, unknown>;
    expect(shown).toMatchObject({ seq: third, payload: big, payloadTruncated: false });
    expect(shown.headers).toMatchObject({ [EventHeaders.eventType]: ['TenantCreated'] });

    const refused = await fetch(`${app.url}/v1/dead-letters/${second}/redrive`, { method: 'POST', headers: bearer(keys.sre) });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ error: { code: 'conflict', field: 'seq' } });

    const redriven = await fetch(`${app.url}/v1/dead-letters/${first}/redrive`, { method: 'POST', headers: { ...bearer(keys.sre), 'content-type': 'application/json' }, body: '{}' });
    expect(redriven.status).toBe(202);
    const result = (await redriven.json()) as { seq: number; sequence: number; eventId: string; republishedTo: string };
    expect(result).toMatchObject({ seq: first, eventId: valid.id, republishedTo: env.bus.topology.subjects.tenant('poison') });
    const republished = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.events, { seq: result.sequence });
    expect(JSON.parse(new TextDecoder().decode(republished!.data)).id).toBe(valid.id);
    expect((await fetch(`${app.url}/v1/dead-letters/${first}`, { headers: bearer(keys.sre) })).status).toBe(404);
    expect((await fetch(`${app.url}/v1/dead-letters/${first}/redrive`, { method: 'POST', headers: bearer(keys.sre) })).status).toBe(404);
    expect((await fetch(`${app.url}/v1/dead-letters/abc`, { headers: bearer(keys.sre) })).status).toBe(400);
  });

  it('is for sre and admin only: 403 in the house error shape for tenant and finance keys', async () => {
    for (const key of [keys.tenantA, keys.finance]) {
      const response = await fetch(`${app.url}/v1/dead-letters`, { headers: bearer(key) });
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual({ error: { code: 'forbidden', message: expect.stringContaining('may not call this endpoint') } });
      expect((await fetch(`${app.url}/v1/dead-letters/1/redrive`, { method: 'POST', headers: bearer(key) })).status).toBe(403);
    }
    expect((await fetch(`${app.url}/v1/dead-letters`, { headers: bearer(ADMIN) })).status).toBe(200);
  });
});
