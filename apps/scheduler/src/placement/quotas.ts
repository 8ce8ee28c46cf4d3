import type { SchedulerPolicy } from './placement.types';
import type { Scratch } from './scratch-fleet';

/**
 * Quotas: per tenant and GPU model a nominal number of GPUs and, when the policy allows
 * borrowing, a limit on GPUs used beyond it. Borrowed GPUs can be reclaimed by an owner that is
 * within its nominal quota (preemption.ts). A tenant without a quota on a model is not limited.
 */

export type QuotaVerdict = { ok: true; borrowing: boolean } | { ok: false; reason: string };

export function quotaVerdict(scratch: Scratch, policy: SchedulerPolicy, tenantId: string, model: string, gpus: number): QuotaVerdict {
  const quota = policy.tenants[tenantId]?.quotas[model];
  if (!quota) return { ok: true, borrowing: false };
  const used = scratch.usageOf(tenantId, model);
  if (used + gpus <= quota.nominal) return { ok: true, borrowing: false };
  const limit = policy.borrowing ? (quota.borrowingLimit ?? Number.POSITIVE_INFINITY) : 0;
  if (used + gpus <= quota.nominal + limit) return { ok: true, borrowing: true };
  return { ok: false, reason: `quota: tenant ${tenantId} uses ${used} of its ${quota.nominal} ${model} GPUs${policy.borrowing ? ` (borrowing limit ${limit})` : ''} and asks ${gpus} more` };
}
