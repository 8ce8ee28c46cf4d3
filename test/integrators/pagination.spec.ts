/**
 * Proves that the list routes page with a cursor and filter by project and time, on a real
 * nats-server and PostgreSQL: `GET /v1/jobs`, `GET /v1/invoices` and `GET /v1/credit-notes`.
 * - Walking the pages (a small `limit`) while new rows arrive yields every row that existed when
 *   the walk began exactly once, no row twice, in the stable order (time, id) newest first, and
 *   never another tenant's row.
 * - `projectId` and `from`/`to` (half-open, on the list's time column: submission time, billing
 *   period, issue time) select exactly the rows the unfiltered list says they should, across pages.
 * - A cursor is tenant-independent: one tenant's cursor in another tenant's request positions it
 *   within its own rows only. A forged cursor (not base64url, edited, re-padded, a wrong time or
 *   id, another list's cursor) is 400 with field `cursor`; `limit` has a maximum; `to` before
 *   `from` is 422 with field `to`.
 * - The OpenAPI document shows the parameters and the `nextCursor` field of each list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invoiceIdFor } from '../../apps/billing/src/ledger/invoice-ids';
import { createBillingService } from '../../apps/billing/src/billing.service';
import { intakeService } from '../../apps/intake/src/intake.service';
import { ADMIN, monthBack, PRICE_BOOK, startPlatform, usage, type Answer, type Platform } from './harness';

let p: Platform;
let finance: string;
const keys: Record<string, string> = {};
const PAGE = 4;
/** Pages a walk reads at most: far above what these lists hold, so a walk that never ends fails instead of hanging. */
const WALK_PAGES_MAX = 100;

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
const withQuery = (path: string, query: Record<string, string | number | undefined>) => {
  const params = new URLSearchParams(Object.entries(query).filter((e): e is [string, string | number] => e[1] !== undefined).map(([k, v]): [string, string] => [k, String(v)]));
  const text = params.toString();
  return text ? `${path}${path.includes('?') ? '&' : '?'}${text}` : path;
};
function ok(answer: Answer): Answer {
  expect(answer.status, answer.text).toBe(200);
  return answer;
}
function badCursor(answer: Answer): void {
  expect(answer.status, answer.text).toBe(400);
  expect(answer.body).toEqual({ error: { code: 'invalid_request', message: expect.stringContaining('cursor'), field: 'cursor' } });
}

/**
 * Reads every page of a list; `between` runs after each page (rows arriving during the walk).
 * Returns the items in the order the pages gave them, and the cursors seen.
 */
async function walk<T>(path: string, key: string, field: string, between: () => Promise<void> = async () => undefined): Promise<{ items: T[]; cursors: string[] }> {
  const items: T[] = [];
  const cursors: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < WALK_PAGES_MAX; page++) {
    const answer = ok(await p.http('GET', withQuery(path, { limit: PAGE, cursor }), key, undefined, { accept: 'application/json' }));
    const rows = answer.body[field] as T[];
    expect(rows.length).toBeLessThanOrEqual(PAGE);
    items.push(...rows);
    if (answer.body.nextCursor === null) return { items, cursors };
    expect(typeof answer.body.nextCursor).toBe('string');
    cursor = answer.body.nextCursor as string;
    cursors.push(cursor);
    await between();
  }
  throw new Error(`${path}: more than ${WALK_PAGES_MAX} pages`);
}

/** (time, id) strictly descending: the stable order of every list (ids compare by code unit, as COLLATE "C"). */
function strictlyDescending<T>(items: T[], key: (item: T) => [number | string, string]): void {
  for (let i = 1; i < items.length; i++) {
    const [t0, id0] = key(items[i - 1]!);
    const [t1, id1] = key(items[i]!);
    expect(t0 > t1 || (t0 === t1 && id0 > id1), `${String(t0)} ${id0} before ${String(t1)} ${id1}`).toBe(true);
  }
}

function exactlyOnce(ids: string[], expected: string[]): void {
  expect(new Set(ids).size, 'a row came twice').toBe(ids.length);
  for (const id of expected) expect(ids, `row ${id} missing`).toContain(id);
}

beforeAll(async () => {
  p = await startPlatform([intakeService, createBillingService({ autoFinalizeIntervalMs: 0 })]);
  finance = await p.key('finance', null);
  for (const tenantId of ['acme', 'globex']) {
    const created = await p.http('POST', '/v1/tenants', ADMIN, { tenantId, name: tenantId, billingTimeZone: 'UTC', currency: 'USD' });
    expect(created.status, created.text).toBe(201);
    keys[tenantId] = await p.key('tenant', tenantId);
  }
  expect((await p.http('POST', '/v1/price-books', finance, PRICE_BOOK)).status).toBe(201);
});

afterAll(async () => {
  await p?.close();
});

describe('GET /v1/jobs', () => {
  type Job = { jobId: string; tenantId: string; projectId: string; submittedAt: string };
  let submitted = 0;
  async function submit(tenantId: string, projectId: string): Promise<Job> {
    const answer = await p.http('POST', '/v1/jobs', keys[tenantId], { projectId, gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeSeconds: 60 }, { 'idempotency-key': `page-${submitted++}` });
    expect(answer.status, answer.text).toBe(202);
    return answer.body as Job;
  }
  const jobKey = (j: Job): [number, string] => [Date.parse(j.submittedAt), j.jobId];
  let before: Job[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 14; i++) before.push(await submit('acme', i % 3 === 0 ? 'vision' : 'nlp'));
    for (let i = 0; i < 3; i++) await submit('globex', 'vision');
    before = ok(await p.http('GET', '/v1/jobs?limit=500', keys.acme)).body.jobs as Job[];
    expect(before).toHaveLength(14);
  });

  it('walks every job exactly once while new jobs arrive, newest first, only the caller\'s', async () => {
    const { items } = await walk<Job>('/v1/jobs', keys.acme!, 'jobs', async () => {
      await submit('acme', 'vision');
      await submit('globex', 'nlp');
    });
    exactlyOnce(items.map((j) => j.jobId), before.map((j) => j.jobId));
    expect(items.every((j) => j.tenantId === 'acme')).toBe(true);
    strictlyDescending(items, jobKey);
  });

  it('filters by project and by submission time [from, to), across pages', async () => {
    const all = ok(await p.http('GET', '/v1/jobs?limit=500', keys.acme)).body.jobs as Job[];
    const vision = (await walk<Job>('/v1/jobs?projectId=vision', keys.acme!, 'jobs')).items;
    expect(vision.map((j) => j.jobId)).toEqual(all.filter((j) => j.projectId === 'vision').map((j) => j.jobId));
    expect(vision.length).toBeGreaterThan(PAGE);
    // A window between two submission instants of the list itself.
    const times = [...new Set(all.map((j) => Date.parse(j.submittedAt)))].sort((a, b) => a - b);
    const from = new Date(times[2]!).toISOString();
    const to = new Date(times[times.length - 3]!).toISOString();
    const window = (await walk<Job>(withQuery('/v1/jobs', { from, to }), keys.acme!, 'jobs')).items;
    const expected = all.filter((j) => Date.parse(j.submittedAt) >= Date.parse(from) && Date.parse(j.submittedAt) < Date.parse(to));
    expect(window.map((j) => j.jobId)).toEqual(expected.map((j) => j.jobId));
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(all.length);
    const both = (await walk<Job>(withQuery('/v1/jobs', { from, projectId: 'nlp' }), keys.acme!, 'jobs')).items;
    expect(both.map((j) => j.jobId)).toEqual(all.filter((j) => j.projectId === 'nlp' && Date.parse(j.submittedAt) >= Date.parse(from)).map((j) => j.jobId));
    // An offset other than Z reads the same instant.
    const shifted = new Date(Date.parse(from) + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
    expect((ok(await p.http('GET', withQuery('/v1/jobs', { from: shifted, limit: 500 }), keys.acme)).body.jobs as Job[]).map((j) => j.jobId)).toEqual(all.filter((j) => Date.parse(j.submittedAt) >= Date.parse(from)).map((j) => j.jobId));
  });

  it('keeps tenants apart whatever the cursor: another tenant\'s cursor positions the caller in its own jobs', async () => {
    const acmeFirst = ok(await p.http('GET', '/v1/jobs?limit=2', keys.acme)).body;
    const globexAll = ok(await p.http('GET', '/v1/jobs?limit=500', keys.globex)).body.jobs as Job[];
    expect(globexAll.every((j) => j.tenantId === 'globex')).toBe(true);
    const withAcmeCursor = ok(await p.http('GET', withQuery('/v1/jobs', { limit: 500, cursor: acmeFirst.nextCursor }), keys.globex)).body.jobs as Job[];
    const last = acmeFirst.jobs[1] as Job;
    expect(withAcmeCursor.map((j) => j.jobId)).toEqual(globexAll.filter((j) => jobKey(j)[0] < jobKey(last)[0] || (jobKey(j)[0] === jobKey(last)[0] && j.jobId < last.jobId)).map((j) => j.jobId));
    // A tenant key cannot widen its scope with ?tenantId.
    expect((ok(await p.http('GET', '/v1/jobs?tenantId=acme&limit=500', keys.globex)).body.jobs as Job[]).every((j) => j.tenantId === 'globex')).toBe(true);
  });

  it('refuses forged cursors, another list\'s cursor and bad bounds with the field', async () => {
    const valid = ok(await p.http('GET', '/v1/jobs?limit=1', keys.acme)).body.nextCursor as string;
    const [list, time, id] = JSON.parse(Buffer.from(valid, 'base64url').toString('utf8')) as [string, number, string];
    expect(list).toBe('jobs');
    for (const cursor of ['not a cursor', '!!!!', `${valid}=`, `${valid}A`, cursorOf(['invoices', '2026-01', id]), cursorOf(['jobs', time + 0.5, id]), cursorOf(['jobs', -1, id]), cursorOf(['jobs', String(time), id]), cursorOf(['jobs', time, 'bad id!']), cursorOf(['jobs', time, id, 'acme']), cursorOf({ time, id })]) {
      badCursor(await p.http('GET', withQuery('/v1/jobs', { cursor }), keys.acme));
    }
    // A well-formed position made by hand is only a position: the caller's own rows after it.
    expect(ok(await p.http('GET', withQuery('/v1/jobs', { cursor: cursorOf(['jobs', 0, 'a']) }), keys.acme)).body).toEqual({ jobs: [], nextCursor: null });
    for (const limit of ['0', '501', '1e2', '-1', 'ten']) {
      const answer = await p.http('GET', `/v1/jobs?limit=${limit}`, keys.acme);
      expect([answer.status, answer.body?.error?.field]).toEqual([400, 'limit']);
    }
    const reversed = await p.http('GET', withQuery('/v1/jobs', { from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }), keys.acme);
    expect([reversed.status, reversed.body?.error?.field]).toEqual([422, 'to']);
    const badInstant = await p.http('GET', '/v1/jobs?from=yesterday', keys.acme);
    expect([badInstant.status, badInstant.body?.error?.field]).toEqual([400, 'from']);
  });
});

describe('GET /v1/invoices and GET /v1/credit-notes', () => {
  type Invoice = { invoiceId: string; tenantId: string; period: string; status: string };
  type Note = { creditNoteId: string; tenant: { tenantId: string }; invoiceId: string; issuedAt: string };
  /** Twelve months of acme usage, project `p2` in odd months back, `p1` in even ones; three of globex. */
  const months = Array.from({ length: 12 }, (_, i) => monthBack(i + 1));
  const projectOf = (back: number) => (back % 2 === 1 ? 'p2' : 'p1');
  let invoicesBefore: Invoice[] = [];
  let notesBefore: Note[] = [];
  let noted = 0;

  async function note(invoiceId: string): Promise<Note> {
    const answer = await p.http('POST', `/v1/invoices/${invoiceId}/credit-notes`, finance, { reason: 'goodwill', amount: '0.50' }, { 'idempotency-key': `page-note-${noted++}` });
    expect(answer.status, answer.text).toBe(201);
    return answer.body as Note;
  }
  async function finalize(invoiceId: string): Promise<void> {
    const answer = await p.http('POST', `/v1/invoices/${invoiceId}/finalize`, finance, { reason: 'month closed' });
    expect(answer.status, answer.text).toBe(200);
  }

  beforeAll(async () => {
    for (const [i, month] of months.entries()) {
      await p.publish('UsageRecorded', usage('acme', `acme-${i}`, month.at(5), month.at(5, 20), { gpus: 2, projectId: projectOf(i + 1) }), { tenantId: 'acme' });
    }
    for (const back of [1, 2, 3]) await p.publish('UsageRecorded', usage('globex', `globex-${back}`, monthBack(back).at(7), monthBack(back).at(7, 18)), { tenantId: 'globex' });
    await p.http('GET', '/v1/price-books', finance); // the ledger catches up
    invoicesBefore = ok(await p.http('GET', '/v1/invoices?limit=500', keys.acme)).body.invoices as Invoice[];
    expect(invoicesBefore).toHaveLength(12);
    // Credit notes against four finalized acme invoices (two per project) and one of globex.
    for (const back of [1, 2, 3, 4]) await finalize(invoiceIdFor('acme', monthBack(back).period));
    await finalize(invoiceIdFor('globex', monthBack(1).period));
    for (let round = 0; round < 2; round++) for (const back of [1, 2, 3, 4]) await note(invoiceIdFor('acme', monthBack(back).period));
    await note(invoiceIdFor('globex', monthBack(1).period));
    notesBefore = ok(await p.http('GET', '/v1/credit-notes?limit=500', keys.acme)).body.creditNotes as Note[];
    expect(notesBefore).toHaveLength(8);
  });

  it('walks every invoice exactly once while new invoices arrive, newest period first, only the caller\'s', async () => {
    let extra = 13;
    const { items } = await walk<Invoice>('/v1/invoices', keys.acme!, 'invoices', async () => {
      // Usage of an older month opens a new invoice behind the walk's position; of globex, another tenant's.
      const month = monthBack(extra++);
      await p.publish('UsageRecorded', usage('acme', `acme-extra-${extra}`, month.at(9), month.at(9, 18)), { tenantId: 'acme' });
      await p.publish('UsageRecorded', usage('globex', `globex-extra-${extra}`, month.at(9), month.at(9, 18)), { tenantId: 'globex' });
      await p.http('GET', '/v1/price-books', finance);
    });
    exactlyOnce(items.map((i) => i.invoiceId), invoicesBefore.map((i) => i.invoiceId));
    expect(items.every((i) => i.tenantId === 'acme')).toBe(true);
    strictlyDescending(items, (i) => [i.period, i.invoiceId]);
    // Finance walks every tenant's, each once.
    const all = (await walk<Invoice>('/v1/invoices', finance, 'invoices')).items;
    expect(new Set(all.map((i) => i.invoiceId)).size).toBe(all.length);
    expect(new Set(all.map((i) => i.tenantId))).toEqual(new Set(['acme', 'globex']));
  });

  it('filters invoices by project, by periods [from, to) and by status, across pages', async () => {
    const p2 = (await walk<Invoice>('/v1/invoices?projectId=p2', keys.acme!, 'invoices')).items;
    expect(p2.map((i) => i.period).sort()).toEqual(months.filter((_, i) => projectOf(i + 1) === 'p2').map((m) => m.period).sort());
    const from = monthBack(9).period;
    const to = monthBack(3).period;
    const window = (await walk<Invoice>(withQuery('/v1/invoices', { from, to }), keys.acme!, 'invoices')).items;
    expect(window.map((i) => i.period)).toEqual([4, 5, 6, 7, 8, 9].map((back) => monthBack(back).period));
    const finalized = (await walk<Invoice>('/v1/invoices?status=finalized', keys.acme!, 'invoices')).items;
    expect(finalized.map((i) => i.period)).toEqual([1, 2, 3, 4].map((back) => monthBack(back).period));
    const reversed = await p.http('GET', withQuery('/v1/invoices', { from: to, to: from }), keys.acme);
    expect([reversed.status, reversed.body?.error?.field]).toEqual([422, 'to']);
    const badPeriod = await p.http('GET', '/v1/invoices?from=2026-13', keys.acme);
    expect([badPeriod.status, badPeriod.body?.error?.field]).toEqual([400, 'from']);
  });

  it('walks every credit note exactly once while new notes arrive, newest first, only the caller\'s', async () => {
    const { items } = await walk<Note>('/v1/credit-notes', keys.acme!, 'creditNotes', async () => {
      await note(invoiceIdFor('acme', monthBack(1).period));
      await note(invoiceIdFor('globex', monthBack(1).period));
    });
    exactlyOnce(items.map((n) => n.creditNoteId), notesBefore.map((n) => n.creditNoteId));
    expect(items.every((n) => n.tenant.tenantId === 'acme')).toBe(true);
    strictlyDescending(items, (n) => [Date.parse(n.issuedAt), n.creditNoteId]);
    // In CSV the next page's cursor travels in a header.
    const csv = await p.http('GET', '/v1/credit-notes?limit=2', keys.acme, undefined, { accept: 'text/csv' });
    expect([csv.status, String(csv.headers['content-type']).split(';')[0]]).toEqual([200, 'text/csv']);
    expect(csv.headers['x-next-cursor']).toEqual(expect.any(String));
  });

  it('filters credit notes by project and by issue time [from, to), and refuses another list\'s cursor', async () => {
    const all = ok(await p.http('GET', '/v1/credit-notes?limit=500', keys.acme)).body.creditNotes as Note[];
    const p2Invoices = new Set([1, 3].map((back) => invoiceIdFor('acme', monthBack(back).period)));
    const p2 = (await walk<Note>('/v1/credit-notes?projectId=p2', keys.acme!, 'creditNotes')).items;
    expect(p2.map((n) => n.creditNoteId)).toEqual(all.filter((n) => p2Invoices.has(n.invoiceId)).map((n) => n.creditNoteId));
    const times = [...new Set(all.map((n) => Date.parse(n.issuedAt)))].sort((a, b) => a - b);
    const from = new Date(times[1]!).toISOString();
    const to = new Date(times[times.length - 2]!).toISOString();
    const window = (await walk<Note>(withQuery('/v1/credit-notes', { from, to }), keys.acme!, 'creditNotes')).items;
    const expected = all.filter((n) => Date.parse(n.issuedAt) >= Date.parse(from) && Date.parse(n.issuedAt) < Date.parse(to));
    expect(window.map((n) => n.creditNoteId)).toEqual(expected.map((n) => n.creditNoteId));
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(all.length);
    // Another tenant's view: globex never sees acme's notes, with or without acme's cursor.
    const acmeFirst = ok(await p.http('GET', '/v1/credit-notes?limit=1', keys.acme)).body;
    const acmeCursor = acmeFirst.nextCursor as string;
    const position = acmeFirst.creditNotes[0] as Note;
    const globexAll = ok(await p.http('GET', '/v1/credit-notes?limit=500', keys.globex)).body.creditNotes as Note[];
    expect(globexAll.length).toBeGreaterThan(0);
    expect(globexAll.every((n) => n.tenant.tenantId === 'globex')).toBe(true);
    const globex = ok(await p.http('GET', withQuery('/v1/credit-notes', { limit: 500, cursor: acmeCursor }), keys.globex)).body.creditNotes as Note[];
    const before = (n: Note) => Date.parse(n.issuedAt) < Date.parse(position.issuedAt) || (n.issuedAt === position.issuedAt && n.creditNoteId < position.creditNoteId);
    expect(globex.map((n) => n.creditNoteId)).toEqual(globexAll.filter(before).map((n) => n.creditNoteId));
    // Cursors of one list are refused by the others.
    const invoiceCursor = ok(await p.http('GET', '/v1/invoices?limit=1', keys.acme)).body.nextCursor as string;
    const jobCursor = cursorOf(['jobs', Date.parse(all[0]!.issuedAt), 'x']);
    badCursor(await p.http('GET', withQuery('/v1/credit-notes', { cursor: invoiceCursor }), keys.acme));
    badCursor(await p.http('GET', withQuery('/v1/credit-notes', { cursor: jobCursor }), keys.acme));
    badCursor(await p.http('GET', withQuery('/v1/invoices', { cursor: acmeCursor }), keys.acme));
    badCursor(await p.http('GET', withQuery('/v1/jobs', { cursor: invoiceCursor }), keys.acme));
    badCursor(await p.http('GET', withQuery('/v1/invoices', { cursor: cursorOf(['invoices', '2026-13', 'x']) }), keys.acme));
  });
});

describe('the OpenAPI document', () => {
  it('shows the paging and filter parameters and the nextCursor field of each list', async () => {
    const doc = ok(await p.http('GET', '/docs/openapi.json')).body as { paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }>; responses: Record<string, { content?: Record<string, { schema: { properties?: Record<string, unknown> } }> }> }>> };
    for (const [path, field] of [
      ['/v1/jobs', 'jobs'],
      ['/v1/invoices', 'invoices'],
      ['/v1/credit-notes', 'creditNotes'],
    ] as const) {
      const get = doc.paths[path]!.get!;
      const names = (get.parameters ?? []).filter((q) => q.in === 'query').map((q) => q.name);
      expect(names, path).toEqual(expect.arrayContaining(['limit', 'cursor', 'projectId', 'from', 'to']));
      const body = get.responses['200']!.content!['application/json']!.schema;
      expect(Object.keys(body.properties ?? {}), path).toEqual(expect.arrayContaining([field, 'nextCursor']));
    }
  });
});
