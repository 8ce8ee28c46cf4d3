import type { Kysely } from 'kysely';
import { Global, Module, type DynamicModule } from '@nestjs/common';
import type { FastGpuConfig } from '@fastgpu/config';
import type { Database } from '@fastgpu/db';
import { EventPublisher, type Bus } from '@fastgpu/messaging';

/** The clock is a dependency so that handlers and tests agree on "now"; deciders never read it. */
export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };

export interface HealthCheck {
  /** ok=false makes readiness fail with `detail` as the reason. */
  check(): Promise<{ ok: boolean; detail?: unknown }> | { ok: boolean; detail?: unknown };
}

/** Every service registers what its readiness depends on: NATS, Postgres, projections. */
export class HealthRegistry {
  private readonly checks = new Map<string, HealthCheck>();
  register(name: string, check: HealthCheck): void {
    this.checks.set(name, check);
  }
  async report(): Promise<{ ok: boolean; checks: Record<string, { ok: boolean; detail?: unknown }> }> {
    const checks: Record<string, { ok: boolean; detail?: unknown }> = {};
    for (const [name, check] of this.checks) {
      try {
        checks[name] = await check.check();
      } catch (error) {
        checks[name] = { ok: false, detail: (error as Error).message };
      }
    }
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  }
}

/** What every service module receives: configuration, the bus, the database, a clock, health. */
export interface Runtime {
  config: FastGpuConfig;
  bus: Bus;
  db: Kysely<Database>;
  clock: Clock;
  health: HealthRegistry;
  /** SHA-256 (hex) of the admin API key. */
  adminKeyHash: string;
}

export const RUNTIME = Symbol('Runtime');
/** The runtime's clock alone, for classes that need "now" and nothing else of the runtime. */
export const CLOCK = Symbol('Clock');

export function publisherFor(runtime: Runtime, service: string): EventPublisher {
  return new EventPublisher(runtime.bus.js, runtime.bus.topology, `fastgpu/${service}`, { retryMs: runtime.config.publishRetryMs });
}

@Global()
@Module({})
export class RuntimeModule {
  static forRoot(runtime: Runtime): DynamicModule {
    return {
      module: RuntimeModule,
      providers: [
        { provide: RUNTIME, useValue: runtime },
        { provide: CLOCK, useValue: runtime.clock },
      ],
      exports: [RUNTIME, CLOCK],
    };
  }
}

export { TickBatcher } from './tick-batcher';
export { ConnectionWatch } from './connection';
