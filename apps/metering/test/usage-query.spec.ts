/**
 * Proves `GET /v1/usage` reads its parameters strictly and pages its rows, on real NATS and
 * Postgres (issue 14, point 9):
 * - periods, dates, instants and zones are read exactly: `2026-13`, `0000-01`, `2026-02-30`, an
 *   instant without offset, `utc`, an unknown zone, a bad window, dimension or limit are 400 with
 *   the parameter as field (never rolled over to 2027-01 or read as 1900); valid edge values
 *   (a leap day, December) are read; a repeated or unknown parameter is 400 naming it; a reversed
 *   range stays 422;
 * - rows are paged with a cursor: grouped rows (closed and accrued, ids whose order differs
 *   between byte order and a linguistic collation) read page by page equal the one-page answer
 *   exactly, without repeats; without groupBy a page is a run of windows; the totals cover the
 *   whole range on every page; a cursor of another query or a forged one is 400 `cursor`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS } from '@fastgpu/money';
import type { DomainEvent } from '@fastgpu/contracts';
import { History } from './history';
import { MeteringHarness } from './api-harness';

let h: MeteringHarness;
let history: History;
const keys: Record<string, string> = {};
/** A whole UTC day, two days before the harness's now: the usage below lies in it. */
let dayStartMs: number;
const dayIso = () => new Date(dayStartMs).toISOString().slice(0, 10);

beforeAll(async () => {
  h = await MeteringHarness.start();
  history = new History(h.env.bus);
  keys.acme = await h.issueKey('k-acme', 'acme', 'tenant');
  keys.finance = await h.issueKey('k-finance', null, 'finance');
  dayStartMs = Math.floor(h.now / (24 * HOUR_MS)) * 24 * HOUR_MS - 2 * 24 * HOUR_MS;
  // Jobs whose ids sort differently by bytes ("C") and linguistically; each runs over three hours,
  // and some have a second sub-task still open (accrued at query time).
  const jobs = ['job-B', 'job-a', 'job_Z', 'job-10', 'job-9', 'Job-c', 'job-b'];
  const events: DomainEvent[] = [];
  jobs.forEach((jobId, n) => {
    events.push(...history.subtask({ tenantId: 'acme', jobId, subtaskId: `${jobId}-s1`, gpus: n + 1, startMs: dayStartMs + HOUR_MS + n * 60_000, endMs: dayStartMs + 4 * HOUR_MS - n * 60_000 }));
    if (n % 2 === 0) events.push(...history.subtask({ tenantId: 'acme', jobId, subtaskId: `${jobId}-s2`, gpus: 1, startMs: dayStartMs + 2 * HOUR_MS }));
  });
  await history.publish(...events);
  await h.settle();
});

afterAll(async () => {
  await h?.close();
});

const get = (query: string, key = keys.acme) => h.call('GET', `/v1/usage?${query}`, key);

describe('strict parameters', () => {
  it('answers malformed periods, dates, instants, zones and values with 400 and the field', async () => {
    const cases: Array<[string, string]> = [
      ['from=2026-13&to=2027-02', 'from'],
      ['from=0000-01&to=2026-02', 'from'],
      ['from=2026-00&to=2026-02', 'from'],
      ['from=2026-01&to=2026-02-30', 'to'],
      ['from=2026-02-29&to=2026-03-01', 'from'],
      ['from=2026-10-01T00:00:00&to=2026-10-02', 'from'],
      ['from=2026-10-01T24:00:00Z&to=2026-10-02', 'from'],
      ['from=2026-10-01&to=2026-10-02&accrueUntil=2026-02-30T00:00:00Z', 'accrueUntil'],
      ['from=2026-10-01&to=2026-10-02&tz=utc', 'tz'],
      ['from=2026-10-01&to=2026-10-02&tz=Mars/Base', 'tz'],
      ['from=2026-10-01&to=2026-10-02&tz=%2B01:00', 'tz'],
      ['from=2026-10-01&to=2026-10-02&window=week', 'window'],
      ['from=2026-10-01&to=2026-10-02&groupBy=colour', 'groupBy'],
      ['from=2026-10-01&to=2026-10-02&limit=0', 'limit'],
      ['from=2026-10-01&to=2026-10-02&limit=1e3', 'limit'],
      ['from=2026-10-01&to=2026-10-02&limit=10001', 'limit'],
    ];
    for (const [query, field] of cases) {
      const answer = await get(query);
      expect([query, answer.status, answer.body?.error?.field]).toEqual([query, 400, field]);
    }
  });

  it('reads valid edge values exactly', async () => {
    const leap = await get('from=2024-02-29&to=2024-03-01&tz=Europe/Berlin&window=hour');
    expect([leap.status, leap.body.from, leap.body.windowCount]).toEqual([200, '2024-02-28T23:00:00.000Z', 24]);
    const december = await get('from=2026-12&to=2027-01&window=month');
    expect([december.status, december.body.from, december.body.to]).toEqual([200, '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z']);
    expect((await get('from=2026-10-02&to=2026-10-01')).status).toBe(422);
  });

  it('answers a repeated or unknown parameter with 400 naming it', async () => {
    for (const [query, field] of [
      ['from=2026-10-01&from=2026-10-02&to=2026-10-03', 'from'],
      ['from=2026-10-01&to=2026-10-02&tz=UTC&tz=Europe/Berlin', 'tz'],
      ['form=2026-10-01&to=2026-10-02', 'form'],
    ] as const) {
      const answer = await get(query);
      expect([query, answer.status, answer.body?.error?.field]).toEqual([query, 400, field]);
    }
  });
});

describe('pages', () => {
  type Page = { rows: Array<Record<string, unknown>>; nextCursor: string | null; totalGpuMs: number; totalAccruedGpuMs: number };
  async function allPages(query: string, limit: number): Promise<{ rows: Page['rows']; pages: Page[] }> {
    const pages: Page[] = [];
    let cursor: string | null = null;
    for (let n = 0; n < 100; n++) {
      const answer: { status: number; body: Page } = await get(`${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(answer.status).toBe(200);
      pages.push(answer.body);
      cursor = answer.body.nextCursor;
      if (!cursor) break;
    }
    return { rows: pages.flatMap((p) => p.rows), pages };
  }

  it('reads grouped rows page by page exactly as in one page, closed and accrued, in byte order', async () => {
    const accrueUntil = new Date(dayStartMs + 5 * HOUR_MS + 30 * 60_000).toISOString();
    const query = `from=${dayIso()}&to=${new Date(dayStartMs + 24 * HOUR_MS).toISOString()}&window=hour&groupBy=job,attempt&accrueUntil=${accrueUntil}`;
    const whole = await get(`${query}&limit=10000`);
    expect(whole.status).toBe(200);
    expect(whole.body.nextCursor).toBeNull();
    const rows = whole.body.rows as Array<{ job: string; gpuMs: number; accruedGpuMs: number; windowStart: string }>;
    expect(rows.length).toBeGreaterThan(20);
    expect(rows.some((r) => r.accruedGpuMs > 0)).toBe(true);
    // Within a window, jobs in byte order: 'Job-c' < 'job-10' < 'job-9' < 'job-B' < 'job-a' < 'job-b' < 'job_Z'.
    const firstWindowJobs = rows.filter((r) => r.windowStart === rows[0]!.windowStart).map((r) => r.job);
    expect(firstWindowJobs).toEqual([...firstWindowJobs].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    for (const limit of [1, 4, 7]) {
      const { rows: paged, pages } = await allPages(query, limit);
      expect(paged).toEqual(rows);
      for (const page of pages) expect([page.rows.length <= limit, page.totalGpuMs, page.totalAccruedGpuMs]).toEqual([true, whole.body.totalGpuMs, whole.body.totalAccruedGpuMs]);
    }
    expect(whole.body.totalGpuMs).toBe(rows.reduce((sum, r) => sum + r.gpuMs, 0));
  });

  it('pages windows without groupBy, zeros included', async () => {
    const query = `from=${dayIso()}&to=${new Date(dayStartMs + 48 * HOUR_MS).toISOString()}&window=hour&accrueUntil=${new Date(dayStartMs + 6 * HOUR_MS).toISOString()}`;
    const whole = await get(query);
    expect(whole.body.rows).toHaveLength(48);
    const { rows, pages } = await allPages(query, 10);
    expect(pages.map((p) => p.rows.length)).toEqual([10, 10, 10, 10, 8]);
    expect(rows).toEqual(whole.body.rows);
  });

  it("refuses a cursor of another query, or one it did not give, with 400 'cursor'", async () => {
    const query = `from=${dayIso()}&to=${new Date(dayStartMs + 24 * HOUR_MS).toISOString()}&window=hour&groupBy=job`;
    const first = await get(`${query}&limit=2`);
    const cursor = first.body.nextCursor as string;
    expect(cursor).toEqual(expect.any(String));
    for (const other of [`${query.replace('groupBy=job', 'groupBy=project')}&cursor=${cursor}`, `${query}&tz=Europe/Berlin&cursor=${cursor}`, `${query}&cursor=bm90LWEtY3Vyc29y`, `${query}&cursor=%00`]) {
      const answer = await get(other);
      expect([other, answer.status, answer.body?.error?.field]).toEqual([other, 400, 'cursor']);
    }
  });
});
