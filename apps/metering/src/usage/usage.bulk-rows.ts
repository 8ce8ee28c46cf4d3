import { sql, type RawBuilder } from 'kysely';
import { COPY_NULL, copyText } from '@fastgpu/db';
import type { Allocation, HourlyUsage } from './usage.model';

/**
 * The usage projection's rows in the two bulk forms its writer uses, one column list each for
 * metering_allocations and metering_usage_hourly:
 * - the plain form, read first: `INSERT … SELECT unnest($1::text[]), …`, one Postgres array
 *   literal per column (`arrayLiteral`, `unnestRows`), which every database here accepts;
 * - the fast path, `COPY … FROM STDIN` text (`copyPayload`, libs/db copy.ts), used when the
 *   runner offers it (`ProjectionContext.bulkCopy`: a rebuild into fresh tables on PostgreSQL).
 *   It exists for `npm run bench -- metering`, line "replay into Postgres (npm run replay --
 *   usage)" and its replay/raw ratio: COPY writes a rebuild's rows without planning a statement
 *   per batch. Both forms format every value through one `formatValue`, so they differ only in
 *   the NULL and text syntax; apps/metering/test/usage-projection.spec.ts ("rebuilds into new
 *   tables equal row for row") and replay-cli.spec.ts compare a rebuild (COPY) with the live
 *   projection (INSERT) row for row.
 */

type PgArrayType = 'text' | 'int4' | 'int8' | 'bool';
export interface Column<T> {
  name: string;
  type: PgArrayType;
  get(row: T): string | number | boolean | null;
}

/** A text element of an array literal: always quoted, so NULL, empty strings and braces are data. */
function quoteElement(value: string): string {
  return /["\\]/.test(value) ? `"${value.replace(/["\\]/g, '\\$&')}"` : `"${value}"`;
}

/** How a bulk format writes NULL and text; booleans and integers are written alike by both. */
interface ValueSyntax {
  null: string;
  text(value: string): string;
}

const arrayElement: ValueSyntax = { null: 'NULL', text: quoteElement };
const copyField: ValueSyntax = { null: COPY_NULL, text: copyText };

/** One value of a column in a bulk format (array literal element or COPY field). */
function formatValue<T>(column: Column<T>, value: string | number | boolean | null | undefined, syntax: ValueSyntax): string {
  if (value === null || value === undefined) return syntax.null;
  if (column.type === 'text') return syntax.text(value as string);
  if (column.type === 'bool') return value ? 't' : 'f';
  // Integers only: a fraction or a number past 2^53 would not round-trip exactly.
  if (!Number.isSafeInteger(value)) throw new Error(`${column.name}: ${String(value)} is not a safe integer`);
  return String(value);
}

/** Postgres array literal of one column: `{"a",NULL,"b"}`, `{1,NULL,3}`, `{t,f}`. */
export function arrayLiteral<T>(column: Column<T>, rows: readonly T[]): string {
  let literal = '{';
  for (let i = 0; i < rows.length; i++) {
    if (i > 0) literal += ',';
    literal += formatValue(column, column.get(rows[i]!), arrayElement);
  }
  return `${literal}}`;
}

/**
 * `(SELECT unnest($1::text[]) AS col, unnest($2::int8[]) AS col2, …) AS r` over the rows, one array
 * per column. Set-returning functions in the select list run in step (arrays of one length) and
 * stream their rows; `FROM unnest(…)` would first copy every row into a tuple store.
 */
export function unnestRows<T>(columns: ReadonlyArray<Column<T>>, rows: readonly T[]): RawBuilder<unknown> {
  const arrays = columns.map((c) => sql`unnest(${arrayLiteral(c, rows)}::${sql.raw(c.type)}[]) AS ${sql.ref(c.name)}`);
  return sql`(SELECT ${sql.join(arrays)}) AS r`;
}

export const columnNames = <T>(columns: ReadonlyArray<Column<T>>) => sql.join(columns.map((c) => sql.ref(c.name)));

/** The rows in COPY text format (libs/db copyRows): one line per row, tab-separated, \N for NULL. */
export function copyPayload<T>(columns: ReadonlyArray<Column<T>>, rows: readonly T[]): string {
  let payload = '';
  for (const row of rows) {
    for (let c = 0; c < columns.length; c++) {
      if (c > 0) payload += '\t';
      payload += formatValue(columns[c]!, columns[c]!.get(row), copyField);
    }
    payload += '\n';
  }
  return payload;
}

/** Columns of metering_allocations, in one place for the bulk writes. */
export const allocationColumns: ReadonlyArray<Column<Allocation>> = [
  { name: 'allocation_key', type: 'text', get: (a) => a.key },
  { name: 'kind', type: 'text', get: (a) => a.kind },
  { name: 'tenant_id', type: 'text', get: (a) => a.tenantId },
  { name: 'project_id', type: 'text', get: (a) => a.projectId },
  { name: 'job_id', type: 'text', get: (a) => a.jobId },
  { name: 'subtask_id', type: 'text', get: (a) => a.subtaskId },
  { name: 'attempt', type: 'int4', get: (a) => a.attempt },
  { name: 'lease_id', type: 'text', get: (a) => a.leaseId },
  { name: 'allocation_id', type: 'text', get: (a) => a.allocationId },
  { name: 'node_id', type: 'text', get: (a) => a.nodeId },
  { name: 'gpu_model', type: 'text', get: (a) => a.gpuModel },
  { name: 'gpus', type: 'int4', get: (a) => a.gpus },
  { name: 'capacity_type', type: 'text', get: (a) => a.capacityType },
  { name: 'lease_epoch', type: 'int4', get: (a) => a.leaseEpoch },
  { name: 'placed_event_id', type: 'text', get: (a) => a.placedEventId },
  { name: 'placed_sequence', type: 'int8', get: (a) => a.placedSequence },
  { name: 'placed_ms', type: 'int8', get: (a) => a.placedMs },
  { name: 'start_ms', type: 'int8', get: (a) => a.startMs },
  { name: 'start_epoch', type: 'int4', get: (a) => a.startEpoch },
  { name: 'start_event_id', type: 'text', get: (a) => a.startEventId },
  { name: 'start_sequence', type: 'int8', get: (a) => a.startSequence },
  { name: 'end_ms', type: 'int8', get: (a) => a.endMs },
  { name: 'end_epoch', type: 'int4', get: (a) => a.endEpoch },
  { name: 'end_event_id', type: 'text', get: (a) => a.endEventId },
  { name: 'end_sequence', type: 'int8', get: (a) => a.endSequence },
  { name: 'end_reason', type: 'text', get: (a) => a.endReason },
  { name: 'interrupted', type: 'bool', get: (a) => a.interrupted },
  { name: 'stale_reports', type: 'int4', get: (a) => a.staleReports },
  { name: 'closed_event_id', type: 'text', get: (a) => a.closedEventId },
  { name: 'closed_sequence', type: 'int8', get: (a) => a.closedSequence },
  { name: 'gpu_ms', type: 'int8', get: (a) => a.gpuMs },
  { name: 'late', type: 'bool', get: (a) => a.late },
  { name: 'late_received_ms', type: 'int8', get: (a) => a.lateReceivedMs },
];

export const hourlyColumns: ReadonlyArray<Column<HourlyUsage>> = [
  { name: 'tenant_id', type: 'text', get: (h) => h.tenantId },
  { name: 'project_id', type: 'text', get: (h) => h.projectId },
  { name: 'job_id', type: 'text', get: (h) => h.jobId },
  { name: 'subtask_id', type: 'text', get: (h) => h.subtaskId },
  { name: 'attempt', type: 'int4', get: (h) => h.attempt },
  { name: 'lease_id', type: 'text', get: (h) => h.leaseId },
  { name: 'allocation_id', type: 'text', get: (h) => h.allocationId },
  { name: 'gpu_model', type: 'text', get: (h) => h.gpuModel },
  { name: 'capacity_type', type: 'text', get: (h) => h.capacityType },
  // Epoch ms, turned into timestamptz exactly by the statement (hour starts are whole seconds).
  { name: 'hour_start', type: 'int8', get: (h) => h.hourStartMs },
  { name: 'gpu_ms', type: 'int8', get: (h) => h.gpuMs },
  { name: 'interrupted_gpu_ms', type: 'int8', get: (h) => h.interruptedGpuMs },
];

/** Hour starts already written as text: a batch's rows fall in a few hundred hours. */
const hourTexts = new Map<number, string>();
const HOUR_TEXTS_MAX = 10_000;

/** An hour start as COPY reads a timestamptz: the ISO instant, made once per hour. */
function hourText(hourStartMs: number): string {
  let text = hourTexts.get(hourStartMs);
  if (text === undefined) {
    if (hourTexts.size >= HOUR_TEXTS_MAX) hourTexts.clear();
    text = new Date(hourStartMs).toISOString();
    hourTexts.set(hourStartMs, text);
  }
  return text;
}

/** The hourly columns for COPY: the hour as an ISO instant (the INSERT path converts epoch ms in SQL). */
export const hourlyCopyColumns: ReadonlyArray<Column<HourlyUsage>> = hourlyColumns.map((c) =>
  c.name === 'hour_start' ? { name: c.name, type: 'text', get: (h: HourlyUsage) => hourText(h.hourStartMs) } : c,
);
