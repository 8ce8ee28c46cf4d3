import Decimal from 'decimal.js';

/**
 * The capacity planner, done right: to deliver R GPU-hours within T hours at target load L and
 * efficiency η, the fleet needs ceil(R / (T · L · η)) GPUs. Exact decimal arithmetic (the seed's
 * worked example divided 500 by 0.8 × 0.95 and printed 526; the quotient is 657.89…, so 658).
 */
const Exact = Decimal.clone({ precision: 60, rounding: Decimal.ROUND_HALF_UP, toExpNeg: -60, toExpPos: 60 });

export interface CapacityPlanInput {
  gpuHours: string;
  hours: string;
  load: string;
  efficiency: string;
}

export interface CapacityPlan {
  gpusNeeded: number;
  /** R / (T · L · η) before rounding up, to 12 decimal places. */
  quotient: string;
  formula: string;
}

export class CapacityPlanError extends Error {
  constructor(
    readonly field: keyof CapacityPlanInput,
    message: string,
  ) {
    super(message);
  }
}

function parse(field: keyof CapacityPlanInput, value: string): InstanceType<typeof Exact> {
  if (!/^\d+(\.\d+)?$/.test(value)) throw new CapacityPlanError(field, `${field} must be a non-negative decimal number`);
  return new Exact(value);
}

export function capacityPlan(input: CapacityPlanInput): CapacityPlan {
  const r = parse('gpuHours', input.gpuHours);
  const t = parse('hours', input.hours);
  const l = parse('load', input.load);
  const eta = parse('efficiency', input.efficiency);
  if (t.lte(0)) throw new CapacityPlanError('hours', 'hours must be greater than 0');
  if (l.lte(0) || l.gt(1)) throw new CapacityPlanError('load', 'load must be in (0, 1]');
  if (eta.lte(0) || eta.gt(1)) throw new CapacityPlanError('efficiency', 'efficiency must be in (0, 1]');
  const quotient = r.dividedBy(t.times(l).times(eta));
  const gpus = quotient.ceil();
  if (!gpus.lte(Number.MAX_SAFE_INTEGER)) throw new CapacityPlanError('gpuHours', 'the plan needs more GPUs than can be counted');
  return { gpusNeeded: gpus.toNumber(), quotient: quotient.toDecimalPlaces(12).toFixed(), formula: 'ceil(R / (T · L · η))' };
}
