import { Inject, Injectable, Logger, Optional, type OnApplicationBootstrap, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { lastSequence, ProjectionRunner } from '@fastgpu/messaging';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import { NodeMonitor } from './monitor/node-monitor';
import { reliabilityConfig, type ReliabilityConfig, type ReliabilityOptions } from './reliability.config';
import { slaProjection } from './sla/sla.projection';
import { periodBounds, periodOf, previousPeriod } from './sla/sla.period';
import { SlaRepository } from './sla/sla.repository';
import { SlaService } from './sla/sla.service';
import { ApiRequestRecorder, countsAsApiRequest } from './slo/api-requests.recorder';
import { currentSloStates } from './slo/slo-states';
import type { SloState } from './slo/slo';

export const RELIABILITY_OPTIONS = Symbol('ReliabilityOptions');

/** How often the month-closing loop looks for a month to close. */
const CLOSE_CHECK_MS = 60_000;

/**
 * The reliability service's moving parts in one place: the liveness loop (heartbeats, lost
 * nodes, fencing), the SLA projection, the month-closing loop that issues credits, and the
 * API request recorder. Started when the app boots, stopped when it closes, and each part
 * registered in runtime.health so /healthz and /readyz tell the truth about it.
 */
@Injectable()
export class ReliabilityEngine implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  readonly config: ReliabilityConfig;
  readonly monitor: NodeMonitor;
  readonly projection: ProjectionRunner;
  readonly sla: SlaService;
  readonly recorder: ApiRequestRecorder;
  private readonly logger = new Logger('reliability');
  private closeTimer?: NodeJS.Timeout;
  private closing = false;
  private lastCloseError?: string;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(RELIABILITY_OPTIONS) options: Partial<ReliabilityOptions>,
    @Optional() @Inject(HttpAdapterHost) private readonly adapterHost?: HttpAdapterHost,
  ) {
    this.config = reliabilityConfig(runtime.config, options);
    const publisher = publisherFor(runtime, 'reliability');
    this.monitor = new NodeMonitor(runtime.bus, publisher, runtime.clock, this.config);
    this.projection = new ProjectionRunner(runtime.bus, runtime.db, slaProjection(this.config.slo));
    this.sla = new SlaService(new SlaRepository(runtime.db), this.config, publisher);
    this.recorder = new ApiRequestRecorder(runtime.db);
  }

  onModuleInit(): void {
    type OnResponse = (request: { url: string; principal?: { tenantId: string | null } }, reply: { statusCode: number }, done: () => void) => void;
    const instance: { addHook?(name: 'onResponse', hook: OnResponse): void } | undefined = this.adapterHost?.httpAdapter?.getInstance?.();
    if (!instance?.addHook) return;
    instance.addHook('onResponse', (request, reply, done) => {
      if (countsAsApiRequest(request.url)) this.recorder.record(request.principal?.tenantId, reply.statusCode, this.runtime.clock.now().getTime());
      done();
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    const health = this.runtime.health;
    health.register('reliability-liveness', this.monitor.healthCheck());
    health.register('reliability-sla-projection', {
      check: () => {
        const state = this.projection.health;
        return { ok: state.status === 'running', detail: state.status === 'running' ? { lastSequence: state.lastSequence } : state };
      },
    });
    health.register('reliability-sla-close', { check: () => (this.lastCloseError ? { ok: false, detail: `closing a month failed: ${this.lastCloseError}` } : { ok: true }) });
    await this.projection.start();
    await this.monitor.start();
    this.recorder.start();
    if (this.config.slaAutoClose) {
      this.closeTimer = setInterval(() => void this.closeDueMonths(), CLOSE_CHECK_MS);
      this.closeTimer.unref();
    }
  }

  async onModuleDestroy(): Promise<void> {
    if (this.closeTimer) clearInterval(this.closeTimer);
    await this.monitor.stop();
    await this.projection.stop();
    await this.recorder.stop();
  }

  /** The current SLO states (error budgets, burn rates, page/ticket): for the metrics endpoint. */
  sloStates(nowMs = this.runtime.clock.now().getTime()): Promise<SloState[]> {
    return currentSloStates(this.runtime.db, this.config, nowMs);
  }

  /** Waits until the SLA read model has applied everything in the log now (bounded). */
  async projectionCaughtUp(timeoutMs = 30_000): Promise<boolean> {
    const target = await lastSequence(this.runtime.bus, this.runtime.bus.topology.streams.events);
    return this.projection.waitFor(target, timeoutMs);
  }

  /** Closes a month now (the SRE CLI and tests); the loop does the same for last month once it is due. */
  async closePeriod(period: string, tenantIds?: string[]) {
    if (!(await this.projectionCaughtUp())) throw new Error('the SLA read model is behind the log; not closing on partial data');
    return this.sla.closePeriod(period, this.runtime.clock.now().getTime(), tenantIds);
  }

  private async closeDueMonths(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    try {
      const nowMs = this.runtime.clock.now().getTime();
      const period = previousPeriod(periodOf(nowMs));
      if (nowMs < periodBounds(period).endMs + this.config.slaCloseDelayMs) return;
      const tenants = await this.sla.tenantsToClose(period);
      if (tenants.length === 0) return;
      const closed = await this.closePeriod(period, tenants);
      this.logger.log(`closed SLA month ${period} for ${closed.length} tenants, ${closed.reduce((n, c) => n + c.credits.length, 0)} credits`);
      this.lastCloseError = undefined;
    } catch (error) {
      this.lastCloseError = (error as Error).message;
      this.logger.warn(`closing the SLA month failed: ${this.lastCloseError}`);
    } finally {
      this.closing = false;
    }
  }
}
