/**
 * External usage (`ExternalAllocationStarted`/`Stopped`, CloudEvents from producers outside
 * FastGPU) is judged by one rule wherever it is read: metering meters it (apps/metering
 * usage.fold.ts) and billing accrues it at period close (apps/billing accrual.ts). Both must
 * accept and refuse the same reports, or billing would accrue usage metering never records.
 * Pure: no clock, no I/O; "received" is the log's stream time of the report.
 */

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/**
 * GPUs one external allocation may claim. Producers outside FastGPU must not be able to stall
 * metering for everyone with a count whose GPU-ms overflow: 10,000 GPUs stay exact for 28 years.
 */
export const EXTERNAL_ALLOCATION_GPUS_MAX = 10_000;

/**
 * Lateness horizon for producer times of external usage, relative to when they were received.
 * A report older than `backMs` is late: kept, never metered into billable usage (metering records
 * it as late usage for finance to review); one more than `aheadMs` in the future is refused.
 */
export interface LatenessHorizon {
  backMs: number;
  aheadMs: number;
}
export const DEFAULT_LATENESS_HORIZON: LatenessHorizon = { backMs: 35 * DAY_MS, aheadMs: 5 * MINUTE_MS };

/**
 * Slack added to the horizon's back bound when a report is judged against the stream time the log
 * stored it at (rather than the door's clock at receipt): a publish may be delayed (retries, an
 * outage), and usage the door accepted must not turn late on the way into the log.
 */
export const STREAM_TIME_GRACE_MS = 10 * MINUTE_MS;

/** The horizon a report is judged by against stream time: the door's, widened by the grace. */
export function streamTimeHorizon(horizon: LatenessHorizon = DEFAULT_LATENESS_HORIZON): LatenessHorizon {
  return { backMs: horizon.backMs + STREAM_TIME_GRACE_MS, aheadMs: horizon.aheadMs };
}

const EXTERNAL_SUBJECT_MARKER = '.evt.external.tenant.';

/**
 * Why an external report cannot be about `tenantId`, or null: it must be published on that
 * tenant's external subject (`<prefix>.evt.external.tenant.<tenantId>`, which credentials bind to
 * a producer) and its envelope must name no other tenant.
 */
export function externalTenantRefusal(subject: string, tenantId: string, envelopeTenantId: string | null): string | null {
  if (!subject.includes(EXTERNAL_SUBJECT_MARKER) || subject.split('.').pop() !== tenantId) return `tenantId ${tenantId} does not match the subject ${subject}`;
  if (envelopeTenantId !== null && envelopeTenantId !== tenantId) return `tenantId ${tenantId} does not match the envelope tenant ${envelopeTenantId}`;
  return null;
}

/** Why an external start's GPU count is refused, or null. */
export function externalGpusRefusal(gpus: number): string | null {
  return gpus > EXTERNAL_ALLOCATION_GPUS_MAX ? `gpus ${gpus} is more than ${EXTERNAL_ALLOCATION_GPUS_MAX}` : null;
}

/**
 * Where a producer time stands against the horizon of its receipt: `ahead` (refused), `late`
 * (kept for review, never billed automatically) or `within`. Without a receipt time, `within`.
 */
export function externalTimeVerdict(atMs: number, receivedMs: number | undefined, horizon: LatenessHorizon): 'ahead' | 'late' | 'within' {
  if (receivedMs === undefined) return 'within';
  if (atMs > receivedMs + horizon.aheadMs) return 'ahead';
  if (atMs < receivedMs - horizon.backMs) return 'late';
  return 'within';
}
