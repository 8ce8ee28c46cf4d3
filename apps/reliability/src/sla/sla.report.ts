import { CapacityType, canonicalJson, sha256Hex } from '@fastgpu/contracts';
import { gpuMs, Money } from '@fastgpu/money';
import { periodBounds } from './sla.period';
import type { SlaMetricPolicy } from '../reliability.config';
import type { SloState } from '../slo/slo';

/**
 * The SLA report of one tenant for one month, built by a pure function from facts the shell
 * reads out of the SLA read model. Every percentage is exact decimal arithmetic, shown
 * truncated to 4 decimals (truncation never moves a value across a tier boundary of ≤ 4
 * decimals); every duration is integer milliseconds. The hash covers the canonical JSON of
 * everything but the credits issued from it (the credit cites the hash).
 */
export interface InterruptionFacts {
  subtaskId: string;
  jobId: string;
  attempt: number;
  nodeId: string;
  gpus: number;
  capacityType: string;
  cause: string;
  startedAtMs: number | null;
  placedAtMs: number;
  interruptedAtMs: number;
  resumedAtMs: number | null;
  resumedBy: string | null;
}

export interface IncidentFacts {
  incidentId: string;
  kind: string;
  startedAtMs: number;
  endedAtMs: number | null;
  detectedAtMs: number | null;
  reason: string;
  automatic: boolean;
}

export interface NodeFacts {
  nodeId: string;
  gpuModel: string;
  gpuCount: number;
  registeredAtMs: number;
  reportsRejected: number;
  heartbeatsRejected: number;
  incidents: IncidentFacts[];
}

export interface SlaFacts {
  tenantId: string;
  period: string;
  asOfMs: number;
  final: boolean;
  windowEndSequence: number;
  /** Σ gpus × held time of attempts on SLA-covered capacity, clipped to [period start, asOf). */
  allocatedGpuMs: string;
  interruptions: InterruptionFacts[];
  jobs: { succeeded: number; failedUser: number; failedPlatform: number; cancelled: number };
  queueWait: { count: number; p50: number | null; p95: number | null; p99: number | null };
  apiRequests: { total: number; errors: number };
  nodes: NodeFacts[];
  slos: SloState[];
}

export interface SlaPolicy {
  allocationAvailability: SlaMetricPolicy;
  apiAvailability: SlaMetricPolicy;
  requeueTargetMs: number;
}

export interface MetricVerdict {
  availabilityPercent: string | null;
  targetPercent: string;
  met: boolean;
  creditPercent: number;
}

export interface SlaReport {
  tenantId: string;
  period: string;
  periodStart: string;
  periodEnd: string;
  asOf: string;
  final: boolean;
  windowEndSequence: number;
  allocationAvailability: MetricVerdict & { allocatedGpuMs: string; unavailableGpuMs: string };
  apiAvailability: MetricVerdict & { requests: number; errors: number };
  jobs: { finished: number; succeeded: number; failedUser: number; failedPlatform: number; cancelled: number; successPercent: string | null; platformSuccessPercent: string | null };
  queueWaitMs: { count: number; p50: number | null; p95: number | null; p99: number | null };
  requeueAfterNodeLoss: { count: number; pending: number; targetMs: number; withinTarget: number; p50Ms: number | null; p95Ms: number | null; maxMs: number | null };
  interruptions: {
    count: number;
    interruptedGpuMs: number;
    unavailableGpuMs: number;
    items: Array<{
      subtaskId: string;
      jobId: string;
      attempt: number;
      nodeId: string;
      cause: string;
      capacityType: string;
      slaCovered: boolean;
      gpus: number;
      interruptedAt: string;
      resumedAt: string | null;
      resumedBy: string | null;
      /** GPU time run before the interruption: billed up to it, then credited back. */
      interruptedGpuMs: number;
      /** GPU time the work waited to run again, within the window. */
      unavailableGpuMs: number;
    }>;
  };
  nodes: Array<{
    nodeId: string;
    gpuModel: string;
    gpuCount: number;
    observedMs: number;
    downtimeMs: number;
    drainedMs: number;
    uptimePercent: string | null;
    reportsRejectedTotal: number;
    heartbeatsRejectedTotal: number;
    incidents: Array<{ incidentId: string; kind: string; startedAt: string; endedAt: string | null; durationMs: number; detectionDelayMs: number | null; reason: string; automatic: boolean }>;
  }>;
  slos: SloState[];
  hash: string;
}

export interface IssuedCredit {
  creditId: string;
  metric: string;
  measured: string;
  target: string;
  creditPercent: number;
  reportHash: string;
  windowEndSequence: number;
  issuedAt: string;
}

export type ServedReport = SlaReport & { credits: IssuedCredit[] };

const iso = (ms: number) => new Date(ms).toISOString();

function overlapMs(startMs: number, endMs: number, windowStartMs: number, windowEndMs: number): number {
  return Math.max(0, Math.min(endMs, windowEndMs) - Math.max(startMs, windowStartMs));
}

/** GPU-ms of [startMs, endMs) inside the window (0 when they do not meet). */
function gpuMsWithin(gpus: number, startMs: number, endMs: number, windowStartMs: number, windowEndMs: number): number {
  const fromMs = Math.max(startMs, windowStartMs);
  const toMs = Math.min(endMs, windowEndMs);
  return toMs > fromMs ? gpuMs(gpus, fromMs, toMs) : 0;
}

/** Percentage with 4 decimals, truncated toward zero. */
export function percentString(value: Money): string {
  return value.toDecimalPlaces(4, Money.ROUND_DOWN).toFixed(4);
}

function percent(part: Money | number, whole: Money | number): Money | null {
  const w = new Money(whole);
  return w.isZero() ? null : new Money(part).times(100).dividedBy(w);
}

/**
 * The credit tier a measured availability falls in: the largest credit among the tiers whose
 * threshold it is below (10 % below target, 25 % below 99.0, 50 % below 95.0 by default).
 * Nothing measured (no allocations, no requests) is no breach.
 */
export function creditFor(measured: Money | null, policy: SlaMetricPolicy): { met: boolean; creditPercent: number } {
  if (measured === null) return { met: true, creditPercent: 0 };
  let creditPercent = 0;
  for (const tier of policy.tiers) if (measured.lessThan(tier.below)) creditPercent = Math.max(creditPercent, tier.creditPercent);
  return { met: measured.greaterThanOrEqualTo(policy.target), creditPercent };
}

/** Nearest-rank percentile of integers (the same rule as Postgres' percentile_disc). */
export function nearestRank(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export function buildSlaReport(facts: SlaFacts, policy: SlaPolicy): SlaReport {
  const { startMs, endMs } = periodBounds(facts.period);
  const windowEndMs = Math.min(Math.max(facts.asOfMs, startMs), endMs);

  let interruptedGpuMs = 0;
  let unavailableGpuMs = 0;
  const items = facts.interruptions
    .slice()
    .sort((a, b) => a.interruptedAtMs - b.interruptedAtMs || a.subtaskId.localeCompare(b.subtaskId) || a.attempt - b.attempt)
    .map((i) => {
      const slaCovered = i.capacityType !== CapacityType.preemptible;
      const ranFromMs = i.startedAtMs ?? i.placedAtMs;
      const lost = gpuMsWithin(i.gpus, ranFromMs, i.interruptedAtMs, startMs, windowEndMs);
      const waited = gpuMsWithin(i.gpus, i.interruptedAtMs, i.resumedAtMs ?? windowEndMs, startMs, windowEndMs);
      interruptedGpuMs += lost;
      if (slaCovered) unavailableGpuMs += waited;
      return {
        subtaskId: i.subtaskId,
        jobId: i.jobId,
        attempt: i.attempt,
        nodeId: i.nodeId,
        cause: i.cause,
        capacityType: i.capacityType,
        slaCovered,
        gpus: i.gpus,
        interruptedAt: iso(i.interruptedAtMs),
        resumedAt: i.resumedAtMs === null ? null : iso(i.resumedAtMs),
        resumedBy: i.resumedBy,
        interruptedGpuMs: lost,
        unavailableGpuMs: waited,
      };
    });

  const allocated = new Money(facts.allocatedGpuMs);
  const allocation = percent(allocated, allocated.plus(unavailableGpuMs));
  const allocationVerdict = creditFor(allocation, policy.allocationAvailability);
  const api = percent(facts.apiRequests.total - facts.apiRequests.errors, facts.apiRequests.total);
  const apiVerdict = creditFor(api, policy.apiAvailability);

  const { succeeded, failedUser, failedPlatform, cancelled } = facts.jobs;
  const finished = succeeded + failedUser + failedPlatform;
  const success = percent(succeeded, finished);
  const platformSuccess = percent(succeeded + failedUser, finished);

  const requeues = facts.interruptions.filter((i) => i.cause === 'node-lost' && i.interruptedAtMs >= startMs && i.interruptedAtMs < windowEndMs);
  const requeueMs = requeues
    .filter((i) => i.resumedBy === 'placement' && i.resumedAtMs !== null)
    .map((i) => i.resumedAtMs! - i.interruptedAtMs)
    .sort((a, b) => a - b);

  const nodes = facts.nodes
    .slice()
    .sort((a, b) => a.nodeId.localeCompare(b.nodeId))
    .map((n) => {
      const fromMs = Math.max(startMs, n.registeredAtMs);
      const observedMs = Math.max(0, windowEndMs - fromMs);
      const incidents = n.incidents.filter((i) => i.startedAtMs < windowEndMs && (i.endedAtMs ?? windowEndMs) > startMs).sort((a, b) => a.startedAtMs - b.startedAtMs || a.incidentId.localeCompare(b.incidentId));
      const sumOf = (kind: string) => incidents.filter((i) => i.kind === kind).reduce((sum, i) => sum + overlapMs(i.startedAtMs, i.endedAtMs ?? windowEndMs, fromMs, windowEndMs), 0);
      const downtimeMs = sumOf('lost');
      const up = percent(observedMs - downtimeMs, observedMs);
      return {
        nodeId: n.nodeId,
        gpuModel: n.gpuModel,
        gpuCount: n.gpuCount,
        observedMs,
        downtimeMs,
        drainedMs: sumOf('drained'),
        uptimePercent: up === null ? null : percentString(up),
        reportsRejectedTotal: n.reportsRejected,
        heartbeatsRejectedTotal: n.heartbeatsRejected,
        incidents: incidents.map((i) => ({
          incidentId: i.incidentId,
          kind: i.kind,
          startedAt: iso(i.startedAtMs),
          endedAt: i.endedAtMs === null ? null : iso(i.endedAtMs),
          durationMs: (i.endedAtMs ?? windowEndMs) - i.startedAtMs,
          detectionDelayMs: i.detectedAtMs === null ? null : i.detectedAtMs - i.startedAtMs,
          reason: i.reason,
          automatic: i.automatic,
        })),
      };
    });

  const body: Omit<SlaReport, 'hash'> = {
    tenantId: facts.tenantId,
    period: facts.period,
    periodStart: iso(startMs),
    periodEnd: iso(endMs),
    asOf: iso(windowEndMs),
    final: facts.final,
    windowEndSequence: facts.windowEndSequence,
    allocationAvailability: {
      allocatedGpuMs: allocated.toFixed(0),
      unavailableGpuMs: String(unavailableGpuMs),
      availabilityPercent: allocation === null ? null : percentString(allocation),
      targetPercent: policy.allocationAvailability.target,
      ...allocationVerdict,
    },
    apiAvailability: {
      requests: facts.apiRequests.total,
      errors: facts.apiRequests.errors,
      availabilityPercent: api === null ? null : percentString(api),
      targetPercent: policy.apiAvailability.target,
      ...apiVerdict,
    },
    jobs: {
      finished,
      succeeded,
      failedUser,
      failedPlatform,
      cancelled,
      successPercent: success === null ? null : percentString(success),
      platformSuccessPercent: platformSuccess === null ? null : percentString(platformSuccess),
    },
    queueWaitMs: { ...facts.queueWait },
    requeueAfterNodeLoss: {
      count: requeueMs.length,
      pending: requeues.filter((i) => i.resumedAtMs === null).length,
      targetMs: policy.requeueTargetMs,
      withinTarget: requeueMs.filter((v) => v <= policy.requeueTargetMs).length,
      p50Ms: nearestRank(requeueMs, 50),
      p95Ms: nearestRank(requeueMs, 95),
      maxMs: requeueMs.length ? requeueMs[requeueMs.length - 1]! : null,
    },
    interruptions: { count: items.length, interruptedGpuMs, unavailableGpuMs, items },
    nodes,
    slos: facts.slos,
  };
  return { ...body, hash: reportHash(body) };
}

/** The report is hashed as canonical JSON (`@fastgpu/contracts`): the same report always has the same bytes. */
export { canonicalJson };

export function reportHash(body: Omit<SlaReport, 'hash'>): string {
  const { ...hashed } = body as Omit<SlaReport, 'hash'> & { hash?: string; credits?: unknown };
  delete hashed.hash;
  delete hashed.credits;
  return sha256Hex(canonicalJson(hashed));
}

/** SLA metrics that can breach, as named in `SlaCreditIssued.metric`. */
export const SlaMetric = { allocationAvailability: 'gpu-allocation-availability', apiAvailability: 'api-availability' } as const;

/** The breaches of a report, each a credit to issue. */
export function breaches(report: SlaReport): Array<{ metric: string; measured: string; target: string; creditPercent: number }> {
  const out: Array<{ metric: string; measured: string; target: string; creditPercent: number }> = [];
  const a = report.allocationAvailability;
  if (a.creditPercent > 0 && a.availabilityPercent !== null) out.push({ metric: SlaMetric.allocationAvailability, measured: a.availabilityPercent, target: a.targetPercent, creditPercent: a.creditPercent });
  const api = report.apiAvailability;
  if (api.creditPercent > 0 && api.availabilityPercent !== null) out.push({ metric: SlaMetric.apiAvailability, measured: api.availabilityPercent, target: api.targetPercent, creditPercent: api.creditPercent });
  return out;
}
