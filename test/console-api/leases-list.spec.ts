/**
 * Proves GET /v1/leases, the list the console's leases view reads (real NATS and Postgres): a
 * tenant key lists its own tenant's leases only, newest first, in pages that together hold each
 * of them once — never another tenant's, not with `?tenantId=` naming the other tenant, not with
 * a cursor taken from the other tenant's pages; `state` filters; a platform key lists one
 * tenant's (`tenantId`) or every tenant's; a malformed cursor is 400 naming `cursor`; the route
 * and its page shape are in the OpenAPI document.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, insertTestApiKey, type TestEnvironment } from '@fastgpu/testing';
import { LeasesModule } from '../../apps/intake/src/leases/leases.module';

let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
const keys = { acme: '', rival: '', sre: '' };
const created: Record<'acme' | 'rival', string[]> = { acme: [], rival: [] };

interface Page {
  leases: Array<{ leaseId: string; tenantId: string; state: string; requestedAt: string }>;
  nextCursor: string | null;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
async function http(method: string, path: string, key: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${app.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** Every page of `path` (which has a query already) read with `key`: the leases in the order given. */
async function allPages(path: string, key: string): Promise<Page['leases']> {
  const leases: Page['leases'] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 20; pages++) {
    const answer = await http('GET', `${path}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, key);
    expect(answer.status).toBe(200);
    const page = answer.body as Page;
    leases.push(...page.leases);
    cursor = page.nextCursor;
    if (!cursor) return leases;
  }
  throw new Error(`${path}: more than 20 pages`);
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: 'test-admin-key-0123456789abcdef' });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [{ name: 'intake', module: LeasesModule }], { port: 0, logger: false });
  const issuedAt = new Date();
  keys.acme = await insertTestApiKey(runtime.db, { keyId: 'acme-tenant', tenantId: 'acme', role: 'tenant', issuedAt });
  keys.rival = await insertTestApiKey(runtime.db, { keyId: 'rival-tenant', tenantId: 'rival', role: 'tenant', issuedAt });
  keys.sre = await insertTestApiKey(runtime.db, { keyId: 'platform-sre', tenantId: null, role: 'sre', issuedAt });
  // Interleaved, so the two tenants' leases share the same stretch of request times.
  for (let i = 0; i < 5; i++) {
    for (const tenant of ['acme', 'rival'] as const) {
      if (tenant === 'rival' && i >= 3) continue;
      const answer = await http('POST', '/v1/leases', keys[tenant], { projectId: `p${i}`, gpuModels: ['a100'], gpus: 1 });
      expect(answer.status).toBe(202);
      created[tenant].push(answer.body.leaseId as string);
    }
  }
  expect((await http('DELETE', `/v1/leases/${created.acme[0]}`, keys.acme)).status).toBe(202);
});

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('GET /v1/leases', () => {
  it("lists a tenant's own leases, newest first, each once across pages of 2", async () => {
    const listed = await allPages('/v1/leases?limit=2', keys.acme);
    expect(listed.map((l) => l.leaseId).sort()).toEqual([...created.acme].sort());
    expect(listed.every((l) => l.tenantId === 'acme')).toBe(true);
    const times = listed.map((l) => Date.parse(l.requestedAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
  });

  it("never shows another tenant's lease: not by tenantId, not with the other tenant's cursor", async () => {
    const named = await allPages('/v1/leases?limit=2&tenantId=rival', keys.acme);
    expect(named.map((l) => l.tenantId)).toEqual(Array(created.acme.length).fill('acme'));
    const rivalFirst = (await http('GET', '/v1/leases?limit=1', keys.rival)).body as Page;
    expect(rivalFirst.leases.map((l) => l.tenantId)).toEqual(['rival']);
    const fromRivalCursor = await http('GET', `/v1/leases?limit=500&cursor=${encodeURIComponent(rivalFirst.nextCursor!)}`, keys.acme);
    expect(fromRivalCursor.status).toBe(200);
    expect((fromRivalCursor.body as Page).leases.length).toBeGreaterThan(0);
    expect((fromRivalCursor.body as Page).leases.every((l) => l.tenantId === 'acme')).toBe(true);
    const rivalAll = await allPages('/v1/leases?limit=500', keys.rival);
    expect(rivalAll.map((l) => l.leaseId).sort()).toEqual([...created.rival].sort());
  });

  it('filters by state', async () => {
    const released = await allPages('/v1/leases?state=releasing&limit=500', keys.acme);
    const ended = await allPages('/v1/leases?state=released&limit=500', keys.acme);
    // Released before any grant: releasing until the scheduler closes it (none runs here), or released.
    expect([...released, ...ended].map((l) => l.leaseId)).toEqual([created.acme[0]]);
    const requested = await allPages('/v1/leases?state=requested&limit=500', keys.acme);
    expect(requested.map((l) => l.leaseId).sort()).toEqual(created.acme.slice(1).sort());
  });

  it("lists one tenant's or every tenant's leases for a platform key", async () => {
    const rival = await allPages('/v1/leases?tenantId=rival&limit=500', keys.sre);
    expect(rival.map((l) => l.leaseId).sort()).toEqual([...created.rival].sort());
    const all = await allPages('/v1/leases?limit=3', keys.sre);
    expect(all.map((l) => l.leaseId).sort()).toEqual([...created.acme, ...created.rival].sort());
  });

  it('is in the OpenAPI document with its page shape', async () => {
    const doc = (await http('GET', '/docs/openapi.json', keys.acme)).body;
    const operation = doc.paths['/v1/leases'].get;
    expect(operation.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['cursor', 'limit', 'state', 'tenantId']);
    expect(JSON.stringify(operation.responses['200'])).toMatch(/nextCursor/);
  });

  it('refuses a malformed cursor, naming it', async () => {
    const answer = await http('GET', '/v1/leases?cursor=not-a-cursor', keys.acme);
    expect(answer.status).toBe(400);
    expect(answer.body.error.field).toBe('cursor');
  });
});
