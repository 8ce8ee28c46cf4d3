import { z } from 'zod';
import type { FastGpuConfig } from '@fastgpu/config';

/**
 * Reliability policy, with the defaults of design.md. The heartbeat interval and the number of
 * missed beats come from the shared configuration (every service and the simulator agree on
 * them); the rest is this service's own and is read from `FASTGPU_RELIABILITY_*` variables.
 * Percentages are decimal strings: they are compared with exact decimal arithmetic.
 */
const percent = z.string().regex(/^\d{1,3}(\.\d+)?$/, 'a decimal percentage such as "99.5"');

export const slaTierSchema = z.object({ below: percent, creditPercent: z.number().int().min(0).max(100) });
export const slaMetricSchema = z.object({ target: percent, tiers: z.array(slaTierSchema).min(1).max(10) });

export const reliabilityOptionsSchema = z.object({
  /**
   * How far a node agent's clock may be from ours before it is warned about (log, and the
   * fastgpu_node_clock_skew_seconds gauge always), and the tolerance of the SLA read model's
   * report times. Never a reason to refuse a heartbeat: liveness runs on server time.
   */
  clockSkewMs: z.coerce.number().int().nonnegative().default(5_000),
  /** How often the liveness loop looks for silent nodes (0 = a quarter of the heartbeat interval, at most 1 s). */
  livenessTickMs: z.coerce.number().int().nonnegative().default(0),
  /** At most one ReportRejected per node, reason and interval for heartbeats (all are counted). */
  heartbeatRejectionIntervalMs: z.coerce.number().int().positive().default(60_000),
  /** Health thresholds per GPU: crossing one drains the node automatically. */
  eccErrorsMax: z.coerce.number().int().positive().default(8),
  xidErrorsMax: z.coerce.number().int().positive().default(4),
  temperatureCMax: z.coerce.number().positive().default(90),
  /** A sub-task should be placed again within this long after its node's last heartbeat. */
  requeueTargetMs: z.coerce.number().int().positive().default(30_000),
  /** A month's SLA report is closed (and credits issued) this long after the month ends. */
  slaCloseDelayMs: z.coerce.number().int().nonnegative().default(3_600_000),
  /** Whether this instance closes past months on its own (tests close them explicitly). */
  slaAutoClose: z.stringbool().or(z.boolean()).default(true),
  sla: z
    .object({
      allocationAvailability: slaMetricSchema,
      apiAvailability: slaMetricSchema,
    })
    .default({
      allocationAvailability: {
        target: '99.5',
        tiers: [
          { below: '99.5', creditPercent: 10 },
          { below: '99.0', creditPercent: 25 },
          { below: '95.0', creditPercent: 50 },
        ],
      },
      apiAvailability: {
        target: '99.9',
        tiers: [
          { below: '99.9', creditPercent: 10 },
          { below: '99.0', creditPercent: 25 },
          { below: '95.0', creditPercent: 50 },
        ],
      },
    }),
  slo: z
    .object({
      apiAvailabilityObjective: percent.default('99.9'),
      jobStartLatencyObjective: percent.default('99'),
      /** A sub-task placed within this long of its submission counts as a good start. */
      jobStartLatencyThresholdMs: z.coerce.number().int().positive().default(60_000),
      meteringFreshnessObjective: percent.default('99'),
      /** Usage recorded within this long of the end of the interval it measures counts as fresh. */
      meteringFreshnessThresholdMs: z.coerce.number().int().positive().default(300_000),
    })
    .default({
      apiAvailabilityObjective: '99.9',
      jobStartLatencyObjective: '99',
      jobStartLatencyThresholdMs: 60_000,
      meteringFreshnessObjective: '99',
      meteringFreshnessThresholdMs: 300_000,
    }),
});

export type ReliabilityOptions = z.infer<typeof reliabilityOptionsSchema>;
export type SlaMetricPolicy = z.infer<typeof slaMetricSchema>;

export interface ReliabilityConfig extends ReliabilityOptions {
  heartbeatIntervalMs: number;
  missedHeartbeatsBeforeLost: number;
}

const envNames: Partial<Record<keyof ReliabilityOptions, string>> = {
  clockSkewMs: 'FASTGPU_RELIABILITY_CLOCK_SKEW_MS',
  livenessTickMs: 'FASTGPU_RELIABILITY_TICK_MS',
  heartbeatRejectionIntervalMs: 'FASTGPU_RELIABILITY_REJECTION_INTERVAL_MS',
  eccErrorsMax: 'FASTGPU_RELIABILITY_ECC_ERRORS_MAX',
  xidErrorsMax: 'FASTGPU_RELIABILITY_XID_ERRORS_MAX',
  temperatureCMax: 'FASTGPU_RELIABILITY_TEMPERATURE_C_MAX',
  requeueTargetMs: 'FASTGPU_RELIABILITY_REQUEUE_TARGET_MS',
  slaCloseDelayMs: 'FASTGPU_RELIABILITY_SLA_CLOSE_DELAY_MS',
  slaAutoClose: 'FASTGPU_RELIABILITY_SLA_AUTO_CLOSE',
  sla: 'FASTGPU_RELIABILITY_SLA_JSON',
  slo: 'FASTGPU_RELIABILITY_SLO_JSON',
};
const jsonOptions = new Set<keyof ReliabilityOptions>(['sla', 'slo']);

/** Builds the reliability configuration from the shared one, the environment and explicit overrides (tests). */
export function reliabilityConfig(shared: Pick<FastGpuConfig, 'heartbeatIntervalMs' | 'missedHeartbeatsBeforeLost'>, overrides: Partial<ReliabilityOptions> = {}, env: NodeJS.ProcessEnv = process.env): ReliabilityConfig {
  const fromEnv: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(envNames)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    fromEnv[key] = jsonOptions.has(key as keyof ReliabilityOptions) ? JSON.parse(value) : value;
  }
  const parsed = reliabilityOptionsSchema.safeParse({ ...fromEnv, ...overrides });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`invalid reliability configuration ${issue?.path.join('.')}: ${issue?.message}`);
  }
  return { ...parsed.data, heartbeatIntervalMs: shared.heartbeatIntervalMs, missedHeartbeatsBeforeLost: shared.missedHeartbeatsBeforeLost };
}

/** How often the liveness loop runs: often enough that detection lags the timeout by little. */
export function livenessTickMs(config: Pick<ReliabilityConfig, 'heartbeatIntervalMs' | 'livenessTickMs'>): number {
  if (config.livenessTickMs > 0) return config.livenessTickMs;
  return Math.max(20, Math.min(1000, Math.floor(config.heartbeatIntervalMs / 4)));
}
