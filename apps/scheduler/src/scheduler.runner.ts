import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { lastSequence } from '@fastgpu/messaging';
import { recordRejectedNodeReport } from '@fastgpu/observability';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { SchedulerEngine } from './scheduling/scheduler.engine';
import { defaultPolicy, schedulerPolicySchema, type SchedulerPolicy } from './placement/placement.types';

/**
 * Scheduler settings from the environment: FASTGPU_SCHEDULER_POLICY (JSON: tenant weights and
 * per-model quotas; recorded in the log as the first SchedulingPolicySet when the log has none,
 * after which `PUT /v1/scheduling-policy` changes it) and FASTGPU_SCHEDULER_LEASE_TTL_MS (leader lease, default 3000).
 */
export function schedulerSettings(env: NodeJS.ProcessEnv = process.env): { policy: SchedulerPolicy; policyFromConfig: boolean; leaseTtlMs: number } {
  let policy = defaultPolicy;
  if (env.FASTGPU_SCHEDULER_POLICY) {
    const parsed = schedulerPolicySchema.safeParse(JSON.parse(env.FASTGPU_SCHEDULER_POLICY));
    if (!parsed.success) throw new Error(`invalid configuration FASTGPU_SCHEDULER_POLICY: ${parsed.error.issues[0]?.message}`);
    policy = parsed.data;
  }
  const leaseTtlMs = Number(env.FASTGPU_SCHEDULER_LEASE_TTL_MS ?? 3000);
  if (!Number.isInteger(leaseTtlMs) || leaseTtlMs < 300) throw new Error('invalid configuration FASTGPU_SCHEDULER_LEASE_TTL_MS: an integer ≥ 300');
  return { policy, policyFromConfig: env.FASTGPU_SCHEDULER_POLICY !== undefined, leaseTtlMs };
}

/** How often refused node reports are taken from the fold to be counted and logged. */
const REJECTED_REPORTS_DRAIN_MS = 1000;

/** Runs the scheduler engine for the life of the service and reports it in readiness. */
@Injectable()
export class SchedulerRunner implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly engine: SchedulerEngine;
  private readonly logger = new Logger('scheduler');
  private drainTimer?: NodeJS.Timeout;
  /** The log's last sequence when this process started: refusals up to it were counted by an earlier run. */
  private replayedUntil = Number.POSITIVE_INFINITY;

  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {
    const settings = schedulerSettings();
    this.engine = new SchedulerEngine({ bus: runtime.bus, clock: runtime.clock, policy: settings.policy, recordPolicy: settings.policyFromConfig, leaseTtlMs: settings.leaseTtlMs, onError: (error) => this.logger.error(error.message) });
    runtime.health.register('scheduler', {
      check: () => {
        const status = this.engine.status();
        return { ok: status.caughtUp, detail: status };
      },
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    const { bus } = this.runtime;
    this.replayedUntil = await lastSequence(bus, bus.topology.streams.events);
    await this.engine.start();
    this.drainTimer = setInterval(() => this.drainRejectedReports(), REJECTED_REPORTS_DRAIN_MS);
    this.drainTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.drainTimer) clearInterval(this.drainTimer);
    await this.engine.stop();
    this.drainRejectedReports();
  }

  /** Counts and logs the node reports the fold refused (once each: replayed ones are not repeated). */
  private drainRejectedReports(): void {
    for (const rejected of this.engine.state.rejectedReports.splice(0)) {
      if (rejected.sequence > this.replayedUntil) recordRejectedNodeReport({ consumer: 'scheduler', ...rejected });
    }
  }
}
