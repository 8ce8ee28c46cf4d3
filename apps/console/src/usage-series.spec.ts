/**
 * Proves how the usage view turns GET /v1/usage rows into chart series: one series per value of
 * the chosen dimension (sorted, each its own colour), every series over the same windows with
 * zeros where a group had no usage, GPU-milliseconds shown as GPU-hours; and the default ranges
 * (a day of hours, a month of days, a year of months) starting at the local date given.
 */
import { describe, expect, it } from 'vitest';
import { defaultRange, usageSeries } from './usage-series';
import type { UsageRow } from './types';

const row = (windowStart: string, project: string, gpuMs: number): UsageRow => ({ windowStart, windowEnd: windowStart, localStart: windowStart, project, gpuMs, interruptedGpuMs: 0, accruedGpuMs: 0 });

describe('usageSeries', () => {
  it('aligns every group on the same windows, zero where a group has none', () => {
    const rows = [row('2026-03-02T00:00:00.000Z', 'vision', 7_200_000), row('2026-03-01T00:00:00.000Z', 'nlp', 3_600_000), row('2026-03-02T00:00:00.000Z', 'nlp', 1_800_000)];
    const { xs, series } = usageSeries(rows, 'project');
    expect(xs).toEqual([Date.parse('2026-03-01T00:00:00.000Z') / 1000, Date.parse('2026-03-02T00:00:00.000Z') / 1000]);
    expect(series.map((s) => [s.label, s.values])).toEqual([
      ['nlp', [1, 0.5]],
      ['vision', [0, 2]],
    ]);
    expect(new Set(series.map((s) => s.colour)).size).toBe(2);
  });

  it('sums everything into one series without a dimension', () => {
    const rows = [row('2026-03-01T00:00:00.000Z', 'a', 3_600_000), row('2026-03-01T00:00:00.000Z', 'b', 3_600_000)];
    expect(usageSeries(rows, '').series.map((s) => [s.label, s.values])).toEqual([['all', [2]]]);
  });

  it('answers no series for no rows', () => {
    expect(usageSeries([], 'model')).toEqual({ xs: [], series: [] });
  });
});

describe('defaultRange', () => {
  const today = new Date(2026, 11, 31, 15, 0);
  it('is a day of hours, a month of days and a year of months, crossing year ends', () => {
    expect(defaultRange('hour', today)).toEqual({ from: '2026-12-31', to: '2027-01-01' });
    expect(defaultRange('day', today)).toEqual({ from: '2026-12-01', to: '2027-01-01' });
    expect(defaultRange('month', today)).toEqual({ from: '2026-01-01', to: '2027-01-01' });
  });
});
