/**
 * Proves the SLO arithmetic against Sloth's published output (slok/sloth: the alert generator's
 * test table in internal/alert/alert_test.go and examples/_gen/getting-started.yml): the same
 * burn-rate factors for 30-day, 28-day and a custom 7-day window set, the same page/ticket window
 * pairs, the same error-ratio thresholds (factor × (1 − objective)), and the same budget
 * recordings (current burn rate = 5m error ratio / budget; remaining = 1 − period burn rate).
 * We compute exactly where Sloth computes in float64, so each Sloth figure is our exact value
 * rounded to a double.
 */
import { describe, expect, it } from 'vitest';
import { Money } from '@fastgpu/money';
import { burnRateFactor, countsInWindow, DAY_MS, errorBudgetRatio, evaluateSlo, googleWindows, googleWindows30d, HOUR_MS, MINUTE_MS, type AlertWindowSet, type EventCounts } from './slo';

const asDouble = (value: Money) => Number(value.toString());

describe('burn-rate factors, as Sloth generates them', () => {
  it('30-day SLO: page 14.4 (1h/5m) and 6 (6h/30m), ticket 3 (1d/2h) and 1 (3d/6h)', () => {
    const got = googleWindows30d.windows.map((w) => ({ name: w.name, severity: w.severity, shortMs: w.shortWindowMs, longMs: w.longWindowMs, factor: asDouble(burnRateFactor(w, 30 * DAY_MS)) }));
    expect(got).toEqual([
      { name: 'page-quick', severity: 'page', shortMs: 5 * MINUTE_MS, longMs: HOUR_MS, factor: 14.4 },
      { name: 'page-slow', severity: 'page', shortMs: 30 * MINUTE_MS, longMs: 6 * HOUR_MS, factor: 6 },
      { name: 'ticket-quick', severity: 'ticket', shortMs: 2 * HOUR_MS, longMs: DAY_MS, factor: 3 },
      { name: 'ticket-slow', severity: 'ticket', shortMs: 6 * HOUR_MS, longMs: 3 * DAY_MS, factor: 1 },
    ]);
  });

  it('28-day SLO: 13.44, 5.6000000000000005, 2.8000000000000003, 0.9333333333333333 (Sloth, float64)', () => {
    const factors = googleWindows(28 * DAY_MS).windows.map((w) => burnRateFactor(w, 28 * DAY_MS));
    expect(factors.map((f) => f.toString())).toEqual(['13.44', '5.6', '2.8', '0.9333333333333333333333333333333333333333']);
    // Sloth's float64 products differ from the exact values by under one part in 10^15.
    const sloth = [13.44, 5.6000000000000005, 2.8000000000000003, 0.9333333333333333];
    factors.forEach((f, i) => expect(f.minus(sloth[i]!).abs().lessThan('1e-15')).toBe(true));
  });

  it('a custom 7-day window set (8 %, 12.5 %, 20 %, 42 %): 13.44, 3.5, 1.4, 0.98', () => {
    const custom: AlertWindowSet = {
      periodMs: 7 * DAY_MS,
      windows: [
        { name: 'page-quick', severity: 'page', errorBudgetPercent: '8', shortWindowMs: 5 * MINUTE_MS, longWindowMs: HOUR_MS },
        { name: 'page-slow', severity: 'page', errorBudgetPercent: '12.5', shortWindowMs: 30 * MINUTE_MS, longWindowMs: 6 * HOUR_MS },
        { name: 'ticket-quick', severity: 'ticket', errorBudgetPercent: '20', shortWindowMs: 2 * HOUR_MS, longWindowMs: DAY_MS },
        { name: 'ticket-slow', severity: 'ticket', errorBudgetPercent: '42', shortWindowMs: 6 * HOUR_MS, longWindowMs: 3 * DAY_MS },
      ],
    };
    expect(custom.windows.map((w) => burnRateFactor(w, custom.periodMs).toString())).toEqual(['13.44', '3.5', '1.4', '0.98']);
  });

  it('objective 99.9: error budget 0.001 (Sloth prints 1-0.9990000000000001 and 0.0009999999999999432 from float64)', () => {
    const budget = errorBudgetRatio('99.9');
    expect(budget.toString()).toBe('0.001');
    expect(budget.minus(0.0009999999999999432).abs().lessThan('1e-16')).toBe(true);
    // Sloth's page-quick threshold on the error ratio: 14.4 * 0.0009999999999999432.
    expect(burnRateFactor(googleWindows30d.windows[0]!, 30 * DAY_MS).times(budget).toString()).toBe('0.0144');
    expect(() => errorBudgetRatio('100')).toThrow(/inside \(0, 100\)/);
  });
});

describe('alert states', () => {
  /** Counts per window as Sloth's recording rules would see them (error ratio = bad / total). */
  function ratios(byWindow: Record<number, EventCounts>, fallback: EventCounts = { total: 1_000_000, bad: 0 }) {
    return (windowMs: number) => byWindow[windowMs] ?? fallback;
  }

  it('pages when both 1h and 5m error ratios exceed 14.4 × budget, not when only one does', () => {
    const firing = evaluateSlo('api', '99.9', ratios({ [HOUR_MS]: { total: 10_000, bad: 145 }, [5 * MINUTE_MS]: { total: 1_000, bad: 15 } }));
    expect(firing.status).toBe('page');
    expect(firing.alerts[0]).toMatchObject({ name: 'page-quick', firing: true, factor: '14.4', longBurnRate: '14.5', shortBurnRate: '15' });
    // Exactly at the threshold is not above it (Sloth compares with >).
    const atThreshold = evaluateSlo('api', '99.9', ratios({ [HOUR_MS]: { total: 10_000, bad: 144 }, [5 * MINUTE_MS]: { total: 1_000, bad: 15 } }));
    expect(atThreshold.alerts[0]!.firing).toBe(false);
    // The long window alone (the burst is over) does not page: the short window resets it.
    const recovered = evaluateSlo('api', '99.9', ratios({ [HOUR_MS]: { total: 10_000, bad: 145 }, [5 * MINUTE_MS]: { total: 1_000, bad: 0 } }));
    expect(recovered.status).toBe('ok');
  });

  it('opens a ticket on a slow burn over 3d/6h above 1×', () => {
    const state = evaluateSlo('api', '99.9', ratios({ [3 * DAY_MS]: { total: 100_000, bad: 120 }, [6 * HOUR_MS]: { total: 10_000, bad: 11 } }));
    expect(state.status).toBe('ticket');
    expect(state.alerts.find((a) => a.name === 'ticket-slow')).toMatchObject({ firing: true, longBurnRate: '1.2', shortBurnRate: '1.1' });
  });

  it('reports budget consumed and remaining over the period like slo:period_error_budget_remaining:ratio', () => {
    const state = evaluateSlo('job-start', '99', ratios({ [30 * DAY_MS]: { total: 2_000, bad: 5 }, [5 * MINUTE_MS]: { total: 10, bad: 1 } }));
    // 5 / 2000 = 0.0025 of a 0.01 budget: a quarter consumed; current burn 0.1 / 0.01 = 10×.
    expect(state).toMatchObject({ budgetConsumed: '0.25', budgetRemaining: '0.75', currentBurnRate: '10', period: { total: 2_000, bad: 5 } });
    expect(evaluateSlo('idle', '99', () => ({ total: 0, bad: 0 }))).toMatchObject({ budgetConsumed: '0', budgetRemaining: '1', status: 'ok' });
  });

  it('counts minute buckets inside a window ending now', () => {
    const now = 10 * MINUTE_MS;
    const buckets = [0, 4, 5, 6, 9, 10, 11].map((m) => ({ minuteMs: m * MINUTE_MS, total: 10, good: 9 }));
    // (5 min, 10 min]: the buckets starting at minutes 6, 9 and 10.
    expect(countsInWindow(buckets, now, 5 * MINUTE_MS)).toEqual({ total: 30, bad: 3 });
  });
});
