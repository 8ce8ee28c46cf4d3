
/**
 * The late-usage report's shapes, cursor and CSV (its SQL is `UsageRepository.lateUsage`).
 */

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
