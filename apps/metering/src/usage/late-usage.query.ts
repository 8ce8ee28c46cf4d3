import { sql, type Kysely } from 'kysely';
import type { MeteringDatabase } from '@fastgpu/db';
import { lateUsageIdFor, USAGE_PROJECTION } from './usage.projection';

/** Rows one late-usage page holds at most, and by default. */
export const LATE_USAGE_PAGE_MAX = 10_000;
export const LATE_USAGE_PAGE_DEFAULT = 1_000;

export type LateUsageState = 'open' | 'closed';

/** One late external allocation, as finance reviews it. */
export interface LateUsageItem {
  tenantId: string;
  allocationId: string;
  projectId: string | null;
  gpuModel: string | null;
  capacityType: string | null;
  gpus: number | null;
  startAt: string | null;
  endAt: string | null;
  /** gpus × (end − start) once closed; null while the start or the stop is missing. */
  gpuMs: number | null;
  state: LateUsageState;
  /** When FastGPU received the first late report. */
  reportedLateAt: string;
  /** The `LateUsageRecorded` event id once closed (what billing's review queue refers to). */
  usageId: string | null;
}

export interface LateUsagePage {
  items: LateUsageItem[];
  /** Give it as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
  asOfSequence: number;
}

export interface LateUsageQuery {
  /** null: every tenant. */
  tenantId: string | null;
  state?: LateUsageState;
  limit: number;
  /** Where the previous page ended (`nextCursor`). */
  after?: { tenantId: string; allocationKey: string };
}

/** A cursor names the last row of a page: its tenant and allocation key, opaque to clients. */
export function encodeCursor(tenantId: string, allocationKey: string): string {
  return Buffer.from(JSON.stringify([tenantId, allocationKey]), 'utf8').toString('base64url');
}

/** The position a cursor names, or undefined when it is not one of ours. */
export function decodeCursor(cursor: string): { tenantId: string; allocationKey: string } | undefined {
  if (!/^[A-Za-z0-9_-]{1,1024}$/.test(cursor)) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string') return { tenantId: value[0], allocationKey: value[1] };
  } catch {
    // not JSON: not ours
  }
  return undefined;
}

type Row = {
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

/**
 * The late-usage report: external allocations reported beyond the lateness horizon, which the
 * usage projection keeps out of billable usage. Ordered by tenant and allocation key in byte
 * order (`COLLATE "C"`, like the partial index), paged with a cursor after the last row.
 */
export async function lateUsagePage(db: Kysely<MeteringDatabase>, query: LateUsageQuery): Promise<LateUsagePage> {
  const tenantFilter = query.tenantId === null ? sql`` : sql`AND tenant_id = ${query.tenantId}`;
  const stateFilter = query.state === undefined ? sql`` : query.state === 'closed' ? sql`AND gpu_ms IS NOT NULL` : sql`AND gpu_ms IS NULL`;
  const afterFilter = query.after ? sql`AND (tenant_id COLLATE "C", allocation_key COLLATE "C") > (${query.after.tenantId}, ${query.after.allocationKey})` : sql``;
  const { rows } = await sql<Row>`
    SELECT allocation_key, tenant_id, allocation_id, project_id, gpu_model, capacity_type, gpus, start_ms, end_ms, gpu_ms, late_received_ms, closed_event_id
    FROM metering_allocations
    WHERE late ${tenantFilter} ${stateFilter} ${afterFilter}
    ORDER BY tenant_id COLLATE "C", allocation_key COLLATE "C"
    LIMIT ${query.limit + 1}`.execute(db);
  const page = rows.slice(0, query.limit);
  const last = page[page.length - 1];
  const checkpoint = await db.selectFrom('projection_checkpoints').select('last_sequence').where('projection', '=', USAGE_PROJECTION).executeTakeFirst();
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
    asOfSequence: Number(checkpoint?.last_sequence ?? 0),
  };
}

/** The report's CSV columns, in order. */
export const LATE_USAGE_CSV_COLUMNS = ['tenant_id', 'allocation_id', 'project_id', 'gpu_model', 'capacity_type', 'gpus', 'start_at', 'end_at', 'gpu_ms', 'state', 'reported_late_at', 'usage_id'] as const;

/** RFC 4180: a field with a quote, comma or line break is quoted, quotes doubled; null is empty. */
function csvField(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The page as CSV (header line, CRLF line ends). */
export function lateUsageCsv(items: readonly LateUsageItem[]): string {
  const lines = [LATE_USAGE_CSV_COLUMNS.join(',')];
  for (const i of items) lines.push([i.tenantId, i.allocationId, i.projectId, i.gpuModel, i.capacityType, i.gpus, i.startAt, i.endAt, i.gpuMs, i.state, i.reportedLateAt, i.usageId].map(csvField).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
