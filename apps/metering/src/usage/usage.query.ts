import { sql } from 'kysely';
import type { AnyDatabase } from '@fastgpu/db';
import { HOUR_MS, windowsBetween, type CalendarWindow } from '@fastgpu/money';
import { USAGE_PROJECTION } from './usage.projection';

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

/** Windows one query may return at most (a bit over a year of hours). */
export const USAGE_WINDOWS_MAX = 10_000;

export interface UsageQuery {
  fromMs: number;
  toMs: number;
  window: CalendarWindow;
  timeZone: string;
  groupBy: UsageDimension[];
  /** null: every tenant (platform roles). */
  tenantId: string | null;
  /** Open allocations accrue up to this instant (and never past `toMs`); default: the log time. */
  accrueUntilMs?: number;
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
  rows: UsageRow[];
  accruedUntilMs: number | null;
  asOfSequence: number;
  /** Which store answered: the hourly table (boundaries on UTC hours) or the exact intervals. */
  source: 'hourly' | 'intervals';
}

type Row = { i: number | string; gpu_ms: number | string; interrupted_gpu_ms: number | string } & Record<string, unknown>;

/**
 * Reads usage per calendar window. When every window boundary falls on a UTC hour, the hourly
 * table answers; otherwise (half-hour zones) the closed allocations' exact intervals do. Both
 * give identical integers wherever both apply. Open allocations accrue at query time from their
 * start to the cutoff, never from the wall clock. Late external allocations are not billable
 * usage: they are in neither (see the late-usage report).
 */
export class UsageQueries {
  constructor(private readonly db: AnyDatabase) {}

  windowsFor(query: Pick<UsageQuery, 'fromMs' | 'toMs' | 'window' | 'timeZone'>) {
    return windowsBetween(query.fromMs, query.toMs, query.window, query.timeZone);
  }

  async usage(query: UsageQuery): Promise<UsageResult> {
    const windows = this.windowsFor(query);
    if (windows.length > USAGE_WINDOWS_MAX) throw new RangeError(`the range has ${windows.length} ${query.window} windows, more than ${USAGE_WINDOWS_MAX}`);
    const starts = windows.map((w) => w.startMs);
    const ends = windows.map((w) => w.endMs);
    const dims = query.groupBy.map((d) => usageDimensions[d]);
    const dimensionList = dims.length ? sql`, ${sql.join(dims.map((c) => sql.ref(`u.${c}`)))}` : sql``;
    const tenantFilter = query.tenantId === null ? sql`` : sql`AND u.tenant_id = ${query.tenantId}`;
    const aligned = windows.every((w) => w.startMs % HOUR_MS === 0 && w.endMs % HOUR_MS === 0);

    const closed = aligned
      ? await sql<Row>`
          SELECT w.i${dimensionList}, sum(u.gpu_ms)::int8 AS gpu_ms, sum(u.interrupted_gpu_ms)::int8 AS interrupted_gpu_ms
          FROM metering_usage_hourly u
          JOIN unnest(${starts.map(iso)}::timestamptz[], ${ends.map(iso)}::timestamptz[]) WITH ORDINALITY AS w(ws, we, i)
            ON u.hour_start >= w.ws AND u.hour_start < w.we
          WHERE u.hour_start >= ${iso(query.fromMs)}::timestamptz AND u.hour_start < ${iso(query.toMs)}::timestamptz ${tenantFilter}
          GROUP BY w.i${dimensionList}`.execute(this.db)
      : await sql<Row>`
          SELECT w.i${dimensionList},
            sum(u.gpus::int8 * (least(greatest(u.end_ms, u.start_ms), w.we) - greatest(u.start_ms, w.ws)))::int8 AS gpu_ms,
            sum(CASE WHEN u.interrupted THEN u.gpus::int8 * (least(greatest(u.end_ms, u.start_ms), w.we) - greatest(u.start_ms, w.ws)) ELSE 0 END)::int8 AS interrupted_gpu_ms
          FROM metering_allocations u
          JOIN unnest(${starts}::int8[], ${ends}::int8[]) WITH ORDINALITY AS w(ws, we, i)
            ON u.start_ms < w.we AND greatest(u.end_ms, u.start_ms) > w.ws
          WHERE u.gpu_ms IS NOT NULL AND NOT u.late AND u.start_ms < ${query.toMs} AND greatest(u.end_ms, u.start_ms) > ${query.fromMs} ${tenantFilter}
          GROUP BY w.i${dimensionList}`.execute(this.db);

    const state = await sql<{ event_time_max_ms: number }>`SELECT event_time_max_ms FROM metering_state WHERE id = 1`.execute(this.db);
    const logTimeMs = state.rows[0] ? Number(state.rows[0].event_time_max_ms) : null;
    const cutoffMs = query.accrueUntilMs ?? logTimeMs;
    let open: Row[] = [];
    if (cutoffMs !== null) {
      const untilMs = Math.min(cutoffMs, query.toMs);
      open = (
        await sql<Row>`
          SELECT w.i${dimensionList}, sum(u.gpus::int8 * (least(${untilMs}::int8, w.we) - greatest(u.start_ms, w.ws)))::int8 AS gpu_ms, 0 AS interrupted_gpu_ms
          FROM metering_allocations u
          JOIN unnest(${starts}::int8[], ${ends}::int8[]) WITH ORDINALITY AS w(ws, we, i)
            ON u.start_ms < w.we AND ${untilMs}::int8 > w.ws
          WHERE u.gpu_ms IS NULL AND u.end_ms IS NULL AND u.gpus IS NOT NULL AND u.start_ms IS NOT NULL AND NOT u.late
            AND u.start_ms < ${untilMs}::int8 ${tenantFilter}
          GROUP BY w.i${dimensionList}`.execute(this.db)
      ).rows;
    }

    const byKey = new Map<string, UsageRow>();
    const add = (row: Row, accrued: boolean) => {
      const dimensions: UsageRow['dimensions'] = {};
      query.groupBy.forEach((d) => (dimensions[d] = row[usageDimensions[d]] as string | number));
      const windowIndex = Number(row.i) - 1;
      const key = JSON.stringify([windowIndex, ...query.groupBy.map((d) => dimensions[d])]);
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
    if (query.groupBy.length === 0) {
      windows.forEach((_, windowIndex) => {
        const key = JSON.stringify([windowIndex]);
        if (!byKey.has(key)) byKey.set(key, { windowIndex, dimensions: {}, gpuMs: 0, interruptedGpuMs: 0, accruedGpuMs: 0 });
      });
    }
    const rows = [...byKey.values()].filter((r) => query.groupBy.length === 0 || r.gpuMs > 0);
    rows.sort((a, b) => a.windowIndex - b.windowIndex || compareDimensions(a, b, query.groupBy));

    const checkpoint = await this.db.selectFrom('projection_checkpoints').select('last_sequence').where('projection', '=', USAGE_PROJECTION).executeTakeFirst();
    return {
      windows,
      rows,
      accruedUntilMs: cutoffMs === null ? null : Math.min(cutoffMs, query.toMs),
      asOfSequence: Number(checkpoint?.last_sequence ?? 0),
      source: aligned ? 'hourly' : 'intervals',
    };
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function compareDimensions(a: UsageRow, b: UsageRow, groupBy: readonly UsageDimension[]): number {
  for (const d of groupBy) {
    const x = String(a.dimensions[d]);
    const y = String(b.dimensions[d]);
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
