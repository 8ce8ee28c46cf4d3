import type { SchedulerPolicy } from './placement.types';
import type { Scratch } from './scratch-fleet';

/**
 * Fair share between tenants of one priority class: dominant resource fairness over GPU
 * models, weighted by the policy. The tenant with the lowest weighted dominant share is served
 * next (the cycle's heap in scheduler.decider.ts).
 */

function weightOf(policy: SchedulerPolicy, tenantId: string): number {
  return policy.tenants[tenantId]?.weight ?? policy.defaultWeight;
}

/** Weighted dominant share: the tenant's largest share of any GPU model's capacity, over its weight. */
export function dominantShare(scratch: Scratch, policy: SchedulerPolicy, tenantId: string): number {
  const usage = scratch.usageModels(tenantId);
  let share = 0;
  if (usage) {
    for (const [model, gpus] of usage) {
      const capacity = scratch.pools.get(model)?.capacity ?? 0;
      if (capacity > 0 && gpus / capacity > share) share = gpus / capacity;
    }
  }
  return share / weightOf(policy, tenantId);
}
