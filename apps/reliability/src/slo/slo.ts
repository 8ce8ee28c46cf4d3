import { DAY_MS, HOUR_MS, Money } from '@fastgpu/money';

/**
 * SLO arithmetic, pure and exact (decimal.js through libs/money's context): error budgets and
 * the multi-window, multi-burn-rate alerts of the SRE workbook, as Sloth generates them.
 * An alert fires when both its long and its short window burn the budget faster than its
 * factor; the factor is the share of the period's budget the long window may burn:
 * `factor = errorBudgetPercent / 100 × period / longWindow` (2 % of 30 days in 1 h = 14.4×).
 */
export const MINUTE_MS = 60_000;
export { DAY_MS, HOUR_MS };

export type Severity = 'page' | 'ticket';

export interface AlertWindowSpec {
  name: 'page-quick' | 'page-slow' | 'ticket-quick' | 'ticket-slow';
  severity: Severity;
  /** Share of the period's error budget this alert allows the long window to burn, in percent. */
  errorBudgetPercent: string;
  shortWindowMs: number;
  longWindowMs: number;
}

export interface AlertWindowSet {
  periodMs: number;
  windows: AlertWindowSpec[];
}

/** The workbook's recommended windows for a 30-day SLO (Sloth's `google-30d`). */
export const googleWindows30d: AlertWindowSet = {
  periodMs: 30 * DAY_MS,
  windows: [
    { name: 'page-quick', severity: 'page', errorBudgetPercent: '2', shortWindowMs: 5 * MINUTE_MS, longWindowMs: HOUR_MS },
    { name: 'page-slow', severity: 'page', errorBudgetPercent: '5', shortWindowMs: 30 * MINUTE_MS, longWindowMs: 6 * HOUR_MS },
    { name: 'ticket-quick', severity: 'ticket', errorBudgetPercent: '10', shortWindowMs: 2 * HOUR_MS, longWindowMs: DAY_MS },
    { name: 'ticket-slow', severity: 'ticket', errorBudgetPercent: '10', shortWindowMs: 6 * HOUR_MS, longWindowMs: 3 * DAY_MS },
  ],
};

/** The same windows for another SLO period (Sloth's `google-28d` keeps them and scales the factors). */
export function googleWindows(periodMs: number): AlertWindowSet {
  return { periodMs, windows: googleWindows30d.windows };
}

/** Burn-rate factor of an alert window: budget share × period / long window. */
export function burnRateFactor(window: AlertWindowSpec, periodMs: number): Money {
  return new Money(window.errorBudgetPercent).dividedBy(100).times(periodMs).dividedBy(window.longWindowMs);
}

/** The error budget as a ratio: 1 − objective (99.9 % → 0.001), exactly. */
export function errorBudgetRatio(objectivePercent: string): Money {
  const objective = new Money(objectivePercent);
  if (objective.lessThanOrEqualTo(0) || objective.greaterThanOrEqualTo(100)) throw new Error(`SLO objective must be inside (0, 100), got ${objectivePercent}`);
  return new Money(100).minus(objective).dividedBy(100);
}

export interface EventCounts {
  total: number;
  bad: number;
}

/** Bad / total, or null when nothing happened (no traffic burns no budget). */
export function errorRatio(counts: EventCounts): Money | null {
  if (counts.bad < 0 || counts.total < counts.bad) throw new Error(`invalid SLI counts ${counts.bad}/${counts.total}`);
  return counts.total === 0 ? null : new Money(counts.bad).dividedBy(counts.total);
}

/** How many times faster than sustainable the budget burns: error ratio / budget ratio. */
export function burnRate(counts: EventCounts, objectivePercent: string): Money {
  const ratio = errorRatio(counts);
  return ratio === null ? new Money(0) : ratio.dividedBy(errorBudgetRatio(objectivePercent));
}

export interface AlertState {
  name: AlertWindowSpec['name'];
  severity: Severity;
  factor: string;
  shortWindowMs: number;
  longWindowMs: number;
  shortBurnRate: string;
  longBurnRate: string;
  firing: boolean;
}

export interface SloState {
  slo: string;
  objectivePercent: string;
  periodMs: number;
  period: EventCounts;
  /** Budget consumed over the period: period error ratio / budget ratio (1 = all of it). */
  budgetConsumed: string;
  /** 1 − consumed, as Sloth's `slo:period_error_budget_remaining:ratio` (negative when overspent). */
  budgetRemaining: string;
  /** Burn rate over the shortest window, as Sloth's `slo:current_burn_rate:ratio`. */
  currentBurnRate: string;
  alerts: AlertState[];
  /** page when a page alert fires, else ticket when a ticket alert fires, else ok. */
  status: 'ok' | 'ticket' | 'page';
}

/** Decimal strings in reports: at most 6 decimals, truncated toward zero, no exponent. */
export function ratioString(value: Money): string {
  return value.toDecimalPlaces(6, Money.ROUND_DOWN).toFixed();
}

/**
 * The SLO's state at one instant, given a way to count events in the window ending then.
 * Pure: the caller counts (from SLI minutes, request counters, a test's table).
 */
export function evaluateSlo(slo: string, objectivePercent: string, countsOver: (windowMs: number) => EventCounts, windows: AlertWindowSet = googleWindows30d): SloState {
  const period = countsOver(windows.periodMs);
  const consumed = burnRate(period, objectivePercent);
  const shortest = Math.min(...windows.windows.map((w) => w.shortWindowMs));
  const alerts = windows.windows.map((window): AlertState => {
    const factor = burnRateFactor(window, windows.periodMs);
    const shortBurn = burnRate(countsOver(window.shortWindowMs), objectivePercent);
    const longBurn = burnRate(countsOver(window.longWindowMs), objectivePercent);
    return {
      name: window.name,
      severity: window.severity,
      factor: ratioString(factor),
      shortWindowMs: window.shortWindowMs,
      longWindowMs: window.longWindowMs,
      shortBurnRate: ratioString(shortBurn),
      longBurnRate: ratioString(longBurn),
      firing: shortBurn.greaterThan(factor) && longBurn.greaterThan(factor),
    };
  });
  const status = alerts.some((a) => a.firing && a.severity === 'page') ? 'page' : alerts.some((a) => a.firing) ? 'ticket' : 'ok';
  return {
    slo,
    objectivePercent,
    periodMs: windows.periodMs,
    period,
    budgetConsumed: ratioString(consumed),
    budgetRemaining: ratioString(new Money(1).minus(consumed)),
    currentBurnRate: ratioString(burnRate(countsOver(shortest), objectivePercent)),
    alerts,
    status,
  };
}

export interface MinuteBucket {
  minuteMs: number;
  total: number;
  good: number;
}

/** Sums minute buckets in the window (nowMs − windowMs, nowMs]; a bucket counts by its start. */
export function countsInWindow(buckets: readonly MinuteBucket[], nowMs: number, windowMs: number): EventCounts {
  let total = 0;
  let good = 0;
  for (const b of buckets) {
    if (b.minuteMs > nowMs - windowMs && b.minuteMs <= nowMs) {
      total += b.total;
      good += b.good;
    }
  }
  return { total, bad: total - good };
}
