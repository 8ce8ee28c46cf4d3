import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { SchedulerEngine } from './scheduling/scheduler.engine';
import { defaultPolicy, schedulerPolicySchema, type SchedulerPolicy } from './scheduling/scheduler.types';

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

/** Runs the scheduler engine for the life of the service and reports it in readiness. */
@Injectable()
export class SchedulerRunner implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly engine: SchedulerEngine;
  private readonly logger = new Logger('scheduler');

  constructor(@Inject(RUNTIME) runtime: Runtime) {
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
    await this.engine.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.engine.stop();
  }
}
