/** Proves the capacity planner's exact arithmetic: ceil(R / (T · L · η)), rounding up, and its input checks. */
import { describe, expect, it } from 'vitest';
import { capacityPlan, CapacityPlanError } from './capacity-plan';

describe('capacity plan', () => {
  it('divides exactly and rounds up (the seed example is 658, not 526)', () => {
    expect(capacityPlan({ gpuHours: '500', hours: '1', load: '0.8', efficiency: '0.95' })).toEqual({ gpusNeeded: 658, quotient: '657.894736842105', formula: 'ceil(R / (T · L · η))' });
  });

  it('does not round up an exact quotient, and rounds up the smallest excess', () => {
    expect(capacityPlan({ gpuHours: '1000', hours: '10', load: '0.5', efficiency: '1' }).gpusNeeded).toBe(200);
    expect(capacityPlan({ gpuHours: '1000.000001', hours: '10', load: '0.5', efficiency: '1' }).gpusNeeded).toBe(201);
    // Binary floating point gets 0.1 × 3 wrong; decimals do not.
    expect(capacityPlan({ gpuHours: '0.3', hours: '1', load: '0.1', efficiency: '1' }).gpusNeeded).toBe(3);
  });

  it('rejects zero hours, load or efficiency outside (0, 1], and non-numbers', () => {
    expect(() => capacityPlan({ gpuHours: '1', hours: '0', load: '1', efficiency: '1' })).toThrow(CapacityPlanError);
    expect(() => capacityPlan({ gpuHours: '1', hours: '1', load: '1.5', efficiency: '1' })).toThrow(/load must be in/);
    expect(() => capacityPlan({ gpuHours: '1', hours: '1', load: '1', efficiency: '0' })).toThrow(/efficiency/);
    expect(() => capacityPlan({ gpuHours: '-5', hours: '1', load: '1', efficiency: '1' })).toThrow(/gpuHours/);
  });
});
