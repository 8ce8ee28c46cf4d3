import type { CompletedJob, JobState, SchedulerState } from './scheduler.state';

/**
 * How a completed job ended, as its own tenant may know it: a dependency resolves only within
 * the tenant, so another tenant's job is unknown (undefined), exactly like a job that never was.
 * Intake refuses such a dependency at submission already; this holds if one reaches the log anyway.
 */
export function completedOutcome(state: SchedulerState, tenantId: string, jobId: string): CompletedJob['outcome'] | undefined {
  const completed = state.completedJobs.get(jobId);
  return completed?.tenantId === tenantId ? completed.outcome : undefined;
}

/** Whether a job's dependencies let it run: ready, still waiting, or failed for good (an `afterSuccess` dependency did not succeed). */
export function dependencyState(state: SchedulerState, job: JobState): { ready: true } | { ready: false; reason: string; failed: boolean } {
  for (const dependency of job.dependsOn) {
    const outcome = completedOutcome(state, job.tenantId, dependency.jobId);
    if (outcome === undefined) return { ready: false, failed: false, reason: `waiting for job ${dependency.jobId} to end (${dependency.condition})` };
    if (dependency.condition === 'afterSuccess' && outcome !== 'succeeded') return { ready: false, failed: true, reason: `dependency ${dependency.jobId} ended ${outcome}; ${job.jobId} needed it to succeed` };
  }
  return { ready: true };
}
