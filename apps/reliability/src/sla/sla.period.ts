import { windowContaining } from '@fastgpu/money';

const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** SLA months are calendar months of this zone (libs/money calendar.ts), whatever a tenant's billing zone: that zone moves invoices only. */
export const SLA_TIME_ZONE = 'UTC';

/** [start, end) of an SLA month (`YYYY-MM`): the calendar's month window in SLA_TIME_ZONE. */
export function periodBounds(period: string): { startMs: number; endMs: number } {
  const match = PERIOD.exec(period);
  if (!match) throw new Error(`period must be YYYY-MM, got ${period}`);
  const { startMs, endMs } = windowContaining(Date.UTC(Number(match[1]), Number(match[2]) - 1, 1), 'month', SLA_TIME_ZONE);
  return { startMs, endMs };
}

/** The SLA month (`YYYY-MM`) an instant falls in. */
export function periodOf(ms: number): string {
  const start = new Date(windowContaining(ms, 'month', SLA_TIME_ZONE).startMs);
  return `${start.getUTCFullYear()}-${String(start.getUTCMonth() + 1).padStart(2, '0')}`;
}

export function previousPeriod(period: string): string {
  const { startMs } = periodBounds(period);
  return periodOf(startMs - 1);
}
