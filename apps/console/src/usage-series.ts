import type { UsageRow } from './types';

/**
 * The usage view's arithmetic, pure: default ranges and rows → chart series. Kept apart from the
 * view (and from uPlot, which needs a DOM) so it is tested without a browser.
 */
export type Window = 'hour' | 'day' | 'month';
export type Dimension = '' | 'project' | 'model' | 'tenant';

/** Series colours: distinct, each AA against white. */
export const PALETTE = ['#0b5cad', '#b3261e', '#1e7b3c', '#8a4baf', '#b05d00', '#00727a', '#5f6b00', '#c2185b', '#3949ab', '#6d4c41'];

export interface ChartSeries {
  label: string;
  colour: string;
  values: number[];
}

const pad = (n: number) => String(n).padStart(2, '0');
const dateText = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;

/** The default range of a window: today (hour), this month (day), this year (month). */
export function defaultRange(window: Window, today: Date): { from: string; to: string } {
  const y = today.getFullYear();
  const m = today.getMonth();
  if (window === 'hour') return { from: dateText(today), to: dateText(new Date(y, m, today.getDate() + 1)) };
  if (window === 'day') return { from: dateText(new Date(y, m, 1)), to: dateText(new Date(y, m + 1, 1)) };
  return { from: dateText(new Date(y, 0, 1)), to: dateText(new Date(y + 1, 0, 1)) };
}

/** Rows as chart series: one per group value (or one total), zeros where a window has none. */
export function usageSeries(rows: readonly UsageRow[], dimension: Dimension): { xs: number[]; series: ChartSeries[] } {
  const starts = [...new Set(rows.map((r) => r.windowStart))].sort();
  const at = new Map(starts.map((s, i) => [s, i]));
  const groups = new Map<string, number[]>();
  for (const row of rows) {
    const name = dimension ? (row[dimension] ?? '—') : 'all';
    let values = groups.get(name);
    if (!values) groups.set(name, (values = new Array<number>(starts.length).fill(0)));
    const i = at.get(row.windowStart) as number;
    values[i] = (values[i] ?? 0) + row.gpuMs / 3_600_000;
  }
  const series = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([label, values], i) => ({ label, values, colour: PALETTE[i % PALETTE.length] as string }));
  return { xs: starts.map((s) => Date.parse(s) / 1000), series };
}

