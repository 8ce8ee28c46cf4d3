import { sql, type Kysely } from 'kysely';
import type { MeteringDatabase } from '@fastgpu/db';
import { HOUR_MS, windowsBetween, type CalendarWindow } from '@fastgpu/money';
import { encodeCursor, type LateUsagePage, type LateUsageQuery } from './late-usage.query';
import { lateUsageIdFor, USAGE_PROJECTION } from './usage.projection';

/** Dimensions usage can be grouped by, with their column in the usage tables. */
export const usageDimensions = {
  tenant: 'tenant_id',
  project: 'project_id',
  job: 'job_id',
  subtask: 'subtask_id',
  attempt: 'attempt',
  lease: 'lease_id',
  allocation: 'allocation_id',
  model: 'gpu_model',
  capacityType: 'capacity_type',
} as const;
export type UsageDimension = keyof typeof usageDimensions;
export const usageDimensionNames = Object.keys(usageDimensions) as UsageDimension[];

/** Windows one query may span at most (a bit over a year of hours). */
export const USAGE_WINDOWS_MAX = 10_000;
/** Rows one page of usage holds at most, and by default. */
export const USAGE_PAGE_ROWS_MAX = 10_000;
export const USAGE_PAGE_ROWS_DEFAULT = 1_000;

/** Dimensions whose values are integers (compared as numbers); the others are text. */
const integerDimensions: ReadonlySet<UsageDimension> = new Set(['attempt']);

/** Where a page starts: after the row with this window index and these dimension values (in groupBy order). */
export interface UsageRowKey {
  windowIndex: number;
  values: Array<string | number>;
}

export interface UsageQuery {
  fromMs: number;
  toMs: number;
  window: CalendarWindow;
  timeZone: string;
  groupBy: UsageDimension[];
  /** null: every tenant (platform roles). */
  tenantId: string | null;
  /** Only this project's usage; absent: every project. */
  projectId?: string;
  /** Open allocations accrue up to this instant (and never past `toMs`); default: the log time. */
  accrueUntilMs?: number;
  /** Rows per page (default USAGE_PAGE_ROWS_DEFAULT). */
  limit?: number;
  /** The key of the previous page's last row. */
  after?: UsageRowKey;
}

export interface UsageRow {
  windowIndex: number;
  dimensions: Partial<Record<UsageDimension, string | number>>;
  gpuMs: number;
  interruptedGpuMs: number;
  accruedGpuMs: number;
}

export interface UsageResult {
  windows: Array<{ startMs: number; endMs: number }>;
  /** This page's rows, in key order: window, then the groupBy dimensions (text in code point order). */
  rows: UsageRow[];
  /** The key of this page's last row when more rows follow; null on the last page. */
  nextKey: UsageRowKey | null;
  /** The whole range (every page): GPU-ms, interrupted and accrued GPU-ms. */
  total: { gpuMs: number; interruptedGpuMs: number; accruedGpuMs: number };
  accruedUntilMs: number | null;
  asOfSequence: number;
  /** Which store answered: the hourly table (boundaries on UTC hours) or the exact intervals. */
  source: 'hourly' | 'intervals';
}

type UsageSqlRow = { i: number | string; gpu_ms: number | string; interrupted_gpu_ms: number | string } & Record<string, unknown>;

/** Compares two dimension values as the database orders them: integers as numbers, text by code point (UTF-8 bytes, `COLLATE "C"`). */
function compareValues(x: string | number, y: string | number): number {
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  return Buffer.compare(Buffer.from(String(x), 'utf8'), Buffer.from(String(y), 'utf8'));
}

export function compareKeys(a: UsageRowKey, b: UsageRowKey): number {
  if (a.windowIndex !== b.windowIndex) return a.windowIndex - b.windowIndex;
  for (let i = 0; i < a.values.length; i++) {
    const order = compareValues(a.values[i]!, b.values[i]!);
    if (order !== 0) return order;
  }
  return 0;
}

/**
 * Reads usage per calendar window. When every window boundary falls on a UTC hour, the hourly
 * table answers; otherwise (half-hour zones) the closed allocations' exact intervals do. Both
 * give identical integers wherever both apply. Open allocations accrue at query time from their
 * start to the cutoff, never from the wall clock. Late external allocations are not billable
 * usage: they are in neither (see the late-usage report).
 *
 * Pages: without groupBy a page is a run of consecutive windows (zeros included), and only those
 * windows are queried; with groupBy the rows after the previous page's last key, ordered and cut
 * in SQL (each source returns at most one page and one row past it), so an answer and the
 * memory it takes are bounded by the page size whatever the range holds.
 */
export class UsageRepository {
  constructor(private readonly db: Kysely<MeteringDatabase>) {}

  windowsFor(query: Pick<UsageQuery, 'fromMs' | 'toMs' | 'window' | 'timeZone'>) {
    return windowsBetween(query.fromMs, query.toMs, query.window, query.timeZone);
  }

  async usage(query: UsageQuery): Promise<UsageResult> {
    const windows = this.windowsFor(query);
    if (windows.length > USAGE_WINDOWS_MAX) throw new RangeError(`the range has ${windows.length} ${query.window} windows, more than ${USAGE_WINDOWS_MAX}`);
    const limit = query.limit ?? USAGE_PAGE_ROWS_DEFAULT;
    const aligned = windows.every((w) => w.startMs % HOUR_MS === 0 && w.endMs % HOUR_MS === 0);
    const state = await sql<{ event_time_max_ms: number }>`SELECT event_time_max_ms FROM metering_state WHERE id = 1`.execute(this.db);
    const logTimeMs = state.rows[0] ? Number(state.rows[0].event_time_max_ms) : null;
    const cutoffMs = query.accrueUntilMs ?? logTimeMs;
    const untilMs = cutoffMs === null ? null : Math.min(cutoffMs, query.toMs);

    // Without groupBy every window is a row: the page is the windows after the cursor.
    const firstWindow = query.groupBy.length === 0 ? (query.after ? query.after.windowIndex + 1 : 0) : 0;
    const pageWindows = query.groupBy.length === 0 ? windows.slice(firstWindow, firstWindow + limit) : windows;
    const read = (over: Array<{ startMs: number; endMs: number }>, groupBy: readonly UsageDimension[], page: { after?: UsageRowKey; limit?: number }) =>
      this.read(over, aligned, groupBy, { tenantId: query.tenantId, projectId: query.projectId }, untilMs, query.fromMs, query.toMs, page);

    const rows: UsageRow[] = [];
    let nextKey: UsageRowKey | null = null;
    if (pageWindows.length) {
      const page = query.groupBy.length === 0 ? {} : { ...(query.after ? { after: query.after } : {}), limit };
      const found = await read(pageWindows, query.groupBy, page);
      for (const row of found) row.windowIndex += firstWindow;
      if (query.groupBy.length === 0) {
        const byWindow = new Map(found.map((r) => [r.windowIndex, r]));
        for (let i = firstWindow; i < firstWindow + pageWindows.length; i++) rows.push(byWindow.get(i) ?? { windowIndex: i, dimensions: {}, gpuMs: 0, interruptedGpuMs: 0, accruedGpuMs: 0 });
        if (firstWindow + pageWindows.length < windows.length) nextKey = { windowIndex: firstWindow + pageWindows.length - 1, values: [] };
      } else {
        // Each source read its first limit + 1 keys after the cursor, so the merged first `limit`
        // keys are the true ones, with every source's part; more than limit merged means more follow.
        const pageRows = found.slice(0, limit);
        rows.push(...pageRows.filter((r) => r.gpuMs > 0));
        if (found.length > limit) nextKey = keyOf(pageRows[pageRows.length - 1]!, query.groupBy);
      }
    }
    // The whole range as one window: the totals of every page.
    const [whole] = await read([{ startMs: query.fromMs, endMs: query.toMs }], [], {});
    const asOfSequence = await this.asOfSequence();
    return {
      windows,
      rows,
      nextKey,
      total: { gpuMs: whole?.gpuMs ?? 0, interruptedGpuMs: whole?.interruptedGpuMs ?? 0, accruedGpuMs: whole?.accruedGpuMs ?? 0 },
      accruedUntilMs: untilMs,
      asOfSequence,
      source: aligned ? 'hourly' : 'intervals',
    };
  }

  /**
   * The late-usage report: external allocations reported beyond the lateness horizon, which the
   * usage projection keeps out of billable usage. Ordered by tenant and allocation key in byte
   * order (`COLLATE "C"`, like the partial index), paged with a cursor after the last row.
   */
  async lateUsage(query: LateUsageQuery): Promise<LateUsagePage> {
    const tenantFilter = query.tenantId === null ? sql`` : sql`AND tenant_id = ${query.tenantId}`;
    const stateFilter = query.state === undefined ? sql`` : query.state === 'closed' ? sql`AND gpu_ms IS NOT NULL` : sql`AND gpu_ms IS NULL`;
    const afterFilter = query.after ? sql`AND (tenant_id COLLATE "C", allocation_key COLLATE "C") > (${query.after.tenantId}, ${query.after.allocationKey})` : sql``;
    const { rows } = await sql<LateUsageSqlRow>`
      SELECT allocation_key, tenant_id, allocation_id, project_id, gpu_model, capacity_type, gpus, start_ms, end_ms, gpu_ms, late_received_ms, closed_event_id
      FROM metering_allocations
      WHERE late ${tenantFilter} ${stateFilter} ${afterFilter}
      ORDER BY tenant_id COLLATE "C", allocation_key COLLATE "C"
      LIMIT ${query.limit + 1}`.execute(this.db);
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => ({
        tenantId: r.tenant_id,
        allocationId: r.allocation_id,
        projectId: r.project_id,
        gpuModel: r.gpu_model,
        capacityType: r.capacity_type,
        gpus: r.gpus === null ? null : Number(r.gpus),
        startAt: isoOrNull(r.start_ms),
        endAt: r.gpu_ms === null ? isoOrNull(r.end_ms) : isoOrNull(Math.max(Number(r.end_ms), Number(r.start_ms))),
        gpuMs: r.gpu_ms === null ? null : Number(r.gpu_ms),
        state: r.gpu_ms === null ? 'open' : 'closed',
        reportedLateAt: new Date(Number(r.late_received_ms)).toISOString(),
        usageId: r.closed_event_id === null || r.gpu_ms === null ? null : lateUsageIdFor(r.closed_event_id, r.allocation_key),
      })),
      nextCursor: rows.length > query.limit && last ? encodeCursor(last.tenant_id, last.allocation_key) : null,
      asOfSequence: await this.asOfSequence(),
    };
  }

  /** The usage projection's checkpoint: the last event sequence the answers include. */
  private async asOfSequence(): Promise<number> {
    const checkpoint = await this.db.selectFrom('projection_checkpoints').select('last_sequence').where('projection', '=', USAGE_PROJECTION).executeTakeFirst();
    return Number(checkpoint?.last_sequence ?? 0);
  }

  /**
   * Usage of closed allocations (hourly table when aligned, else exact intervals) plus open ones
   * accrued to `untilMs`, per window of `windows` (indexes from 0) and `groupBy`, merged by key
   * in key order. With `page.limit`, each source reads only keys after `page.after`, at most
   * limit + 1 of them.
   */
  private async read(
    windows: ReadonlyArray<{ startMs: number; endMs: number }>,
    aligned: boolean,
    groupBy: readonly UsageDimension[],
    scope: Pick<UsageQuery, 'tenantId' | 'projectId'>,
    untilMs: number | null,
    fromMs: number,
    toMs: number,
    page: { after?: UsageRowKey; limit?: number },
  ): Promise<UsageRow[]> {
    const starts = windows.map((w) => w.startMs);
    const ends = windows.map((w) => w.endMs);
    const dims = groupBy.map((d) => usageDimensions[d]);
    const dimensionList = dims.length ? sql`, ${sql.join(dims.map((c) => sql.ref(`u.${c}`)))}` : sql``;
    // Text sorts by code point (bytes of UTF-8) whatever the database's collation: the cursor compares the same way.
    const orderTerms = [sql`w.i`, ...groupBy.map((d) => (integerDimensions.has(d) ? sql.ref(`u.${usageDimensions[d]}`) : sql`${sql.ref(`u.${usageDimensions[d]}`)} COLLATE "C"`))];
    const tenantFilter = sql`${scope.tenantId === null ? sql`` : sql`AND u.tenant_id = ${scope.tenantId}`} ${scope.projectId === undefined ? sql`` : sql`AND u.project_id = ${scope.projectId}`}`;
    const afterValues = page.after ? [sql`${page.after.windowIndex + 1}::int8`, ...page.after.values.map((v, k) => (integerDimensions.has(groupBy[k]!) ? sql`${v}::int8` : sql`${String(v)}::text COLLATE "C"`))] : [];
    const having = page.after ? sql`HAVING (${sql.join(orderTerms)}) > (${sql.join(afterValues)})` : sql``;
    const pageClause = page.limit === undefined ? sql`` : sql`ORDER BY ${sql.join(orderTerms)} LIMIT ${page.limit + 1}`;

    const closed = aligned
      ? await sql<UsageSqlRow>`
          SELECT w.i${dimensionList}, sum(u.gpu_ms)::int8 AS gpu_ms, sum(u.interrupted_gpu_ms)::int8 AS interrupted_gpu_ms
          FROM metering_usage_hourly u
          JOIN unnest(${starts.map(iso)}::timestamptz[], ${ends.map(iso)}::timestamptz[]) WITH ORDINALITY AS w(ws, we, i)
            ON u.hour_start >= w.ws AND u.hour_start < w.we
          WHERE u.hour_start >= ${iso(fromMs)}::timestamptz AND u.hour_start < ${iso(toMs)}::timestamptz ${tenantFilter}
          GROUP BY w.i${dimensionList} ${having} ${pageClause}`.execute(this.db)
      : await sql<UsageSqlRow>`
          SELECT w.i${dimensionList},
            sum(u.gpus::int8 * (least(greatest(u.end_ms, u.start_ms), w.we) - greatest(u.start_ms, w.ws)))::int8 AS gpu_ms,
            sum(CASE WHEN u.interrupted THEN u.gpus::int8 * (least(greatest(u.end_ms, u.start_ms), w.we) - greatest(u.start_ms, w.ws)) ELSE 0 END)::int8 AS interrupted_gpu_ms
          FROM metering_allocations u
          JOIN unnest(${starts}::int8[], ${ends}::int8[]) WITH ORDINALITY AS w(ws, we, i)
            ON u.start_ms < w.we AND greatest(u.end_ms, u.start_ms) > w.ws
          WHERE u.gpu_ms IS NOT NULL AND NOT u.late AND u.start_ms < ${toMs} AND greatest(u.end_ms, u.start_ms) > ${fromMs} ${tenantFilter}
          GROUP BY w.i${dimensionList} ${having} ${pageClause}`.execute(this.db);

    let open: UsageSqlRow[] = [];
    if (untilMs !== null) {
      open = (
        await sql<UsageSqlRow>`
          SELECT w.i${dimensionList}, sum(u.gpus::int8 * (least(${untilMs}::int8, w.we) - greatest(u.start_ms, w.ws)))::int8 AS gpu_ms, 0 AS interrupted_gpu_ms
          FROM metering_allocations u
          JOIN unnest(${starts}::int8[], ${ends}::int8[]) WITH ORDINALITY AS w(ws, we, i)
            ON u.start_ms < w.we AND ${untilMs}::int8 > w.ws
          WHERE u.gpu_ms IS NULL AND u.end_ms IS NULL AND u.gpus IS NOT NULL AND u.start_ms IS NOT NULL AND NOT u.late
            AND u.start_ms < ${untilMs}::int8 ${tenantFilter}
          GROUP BY w.i${dimensionList} ${having} ${pageClause}`.execute(this.db)
      ).rows;
    }

    const byKey = new Map<string, UsageRow>();
    const add = (row: UsageSqlRow, accrued: boolean) => {
      const dimensions: UsageRow['dimensions'] = {};
      groupBy.forEach((d) => (dimensions[d] = integerDimensions.has(d) ? Number(row[usageDimensions[d]]) : (row[usageDimensions[d]] as string)));
      const windowIndex = Number(row.i) - 1;
      const key = JSON.stringify([windowIndex, ...groupBy.map((d) => dimensions[d])]);
      let target = byKey.get(key);
      if (!target) {
        target = { windowIndex, dimensions, gpuMs: 0, interruptedGpuMs: 0, accruedGpuMs: 0 };
        byKey.set(key, target);
      }
      const gpuMs = Number(row.gpu_ms);
      target.gpuMs += gpuMs;
      target.interruptedGpuMs += Number(row.interrupted_gpu_ms);
      if (accrued) target.accruedGpuMs += gpuMs;
    };
    for (const row of closed.rows) add(row, false);
    for (const row of open) add(row, true);
    return [...byKey.values()].sort((a, b) => compareKeys(keyOf(a, groupBy), keyOf(b, groupBy)));
  }
}

type LateUsageSqlRow = {
  allocation_key: string;
  tenant_id: string;
  allocation_id: string;
  project_id: string | null;
  gpu_model: string | null;
  capacity_type: string | null;
  gpus: number | null;
  start_ms: number | string | null;
  end_ms: number | string | null;
  gpu_ms: number | string | null;
  late_received_ms: number | string;
  closed_event_id: string | null;
};

const isoOrNull = (ms: number | string | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

function keyOf(row: UsageRow, groupBy: readonly UsageDimension[]): UsageRowKey {
  return { windowIndex: row.windowIndex, values: groupBy.map((d) => row.dimensions[d]!) };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
