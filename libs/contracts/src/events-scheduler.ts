import { z } from 'zod';
import { faultSchema, gpuModelText, id, instant, nonNegativeInt, placementFields, positiveInt, subtaskAttemptFields, type TextRule } from './events-fields';

/**
 * The scheduler's events: placements, preemptions, requeues, a job's end, granted and released
 * leases, the scheduling policy. Built by events.ts with each text rule.
 */
export function schedulerEventSchemas(text: TextRule) {
  const gpuModel = gpuModelText(text);
  const SubtaskPlaced = z.object({
    jobId: id,
    tenantId: id,
    projectId: id,
    subtaskId: id,
    /** 1 for the first placement; grows on every requeue. */
    attempt: positiveInt,
    ...placementFields(text),
    runtimeMs: positiveInt,
    placedAt: instant,
  });
  const SubtaskPreempted = z.object({
    ...subtaskAttemptFields,
    reason: text.lines(500),
    preemptedByJobId: id.optional(),
    /**
     * Who caused the stop: `platform` (preemption by us, gang restart: credited back as an
     * interruption) or `user` (the tenant cancelled the job: not credited). Additive, optional
     * field: absent means `platform` (events written before it existed were all platform stops).
     */
    fault: faultSchema.optional(),
    preemptedAt: instant,
  });
  const SubtaskRequeued = z.object({
    jobId: id,
    tenantId: id,
    subtaskId: id,
    previousAttempt: positiveInt,
    reason: text.lines(500),
    requeuedAt: instant,
  });
  const SubtaskAbandoned = z.object({
    jobId: id,
    tenantId: id,
    subtaskId: id,
    attempt: positiveInt,
    reason: text.lines(500),
    abandonedAt: instant,
  });
  const JobCompleted = z.object({
    jobId: id,
    tenantId: id,
    projectId: id,
    outcome: z.enum(['succeeded', 'failed', 'cancelled']),
    reason: text.lines(500).optional(),
    subtasksSucceeded: nonNegativeInt,
    subtasksFailed: nonNegativeInt,
    subtasksCancelled: nonNegativeInt,
    /** Sum of GPU-ms the scheduler saw run for this job (all attempts), for reconciliation. */
    gpuMsObserved: nonNegativeInt,
    completedAt: instant,
  });
  const LeaseGranted = z.object({
    leaseId: id,
    tenantId: id,
    projectId: id,
    ...placementFields(text),
    grantedAt: instant,
  });
  const LeaseReleased = z.object({
    leaseId: id,
    tenantId: id,
    nodeId: id,
    leaseEpoch: positiveInt,
    reason: text.lines(500),
    releasedAt: instant,
  });

  /**
   * The scheduling policy in force from this event on (the whole policy, not a patch): a
   * fair-share weight per tenant and, per GPU model, a nominal quota in GPUs with an optional
   * borrowing limit. Decisions depend on it, so it is in the log: the same log gives the same
   * decisions whatever the configuration of the process replaying it.
   */
  const schedulingPolicy = z.object({
    defaultWeight: z.number().positive(),
    /** Whether a tenant may use idle GPUs beyond its nominal quota (taken back by preemption when the owner needs them). */
    borrowing: z.boolean(),
    tenants: z.record(
      id,
      z.object({
        weight: z.number().positive().optional(),
        quotas: z.record(gpuModel, z.object({ nominal: nonNegativeInt, borrowingLimit: nonNegativeInt.optional() })),
      }),
    ),
  });
  const SchedulingPolicySet = z.object({ policy: schedulingPolicy, setAt: instant, actor: id, reason: text.lines(500, 1) });
  return {
    SubtaskPlaced,
    SubtaskPreempted,
    SubtaskRequeued,
    SubtaskAbandoned,
    JobCompleted,
    LeaseGranted,
    LeaseReleased,
    schedulingPolicy,
    SchedulingPolicySet,
  };
}
