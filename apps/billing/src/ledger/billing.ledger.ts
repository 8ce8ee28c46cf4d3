import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { lastSequence, ProjectionRunner } from '@fastgpu/messaging';
import { JsonLogger } from '@fastgpu/observability';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { billingProjection } from './billing.projection';
import { BillingStore } from './billing.store';

/** Bound on how long an API call waits for the ledger to catch up with the stream. */
export const CATCH_UP_TIMEOUT_MS = 10_000;

/**
 * Runs the billing projection for the life of the app and reports its health. The ledger is money:
 * it stops at an event it cannot apply or decode (the projection sets `stopsOnUndecodable`) and
 * readiness fails with the sequence, event id, type and reason until an operator repairs the event
 * (docs/operations.md, "Runbook: a projection stopped at an event"); API calls waiting to catch up
 * are answered at once instead of waiting out their timeout.
 */
@Injectable()
export class BillingLedger implements OnModuleInit, OnModuleDestroy {
  readonly runner: ProjectionRunner;

  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {
    this.runner = new ProjectionRunner(runtime.bus, runtime.db, billingProjection(), { logger: new JsonLogger('billing') });
    runtime.health.register('projection:billing-ledger', {
      check: () => {
        const health = this.runner.health;
        return { ok: health.status === 'running', detail: health };
      },
    });
  }

  async onModuleInit(): Promise<void> {
    await this.runner.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.runner.stop();
  }

  /** The live tables. */
  store(): BillingStore {
    return new BillingStore(this.runtime.db, (name) => name);
  }

  /** Waits until everything in the stream now is applied; returns the ledger's sequence (a cutoff). */
  async catchUp(timeoutMs = CATCH_UP_TIMEOUT_MS): Promise<number> {
    const target = await lastSequence(this.runtime.bus, this.runtime.bus.topology.streams.events);
    if (!(await this.runner.waitFor(target, timeoutMs))) {
      const health = this.runner.health;
      throw new Error(`billing ledger is behind the stream (at ${health.lastSequence}, stream at ${target}${health.error ? `: ${health.error}` : ''})`);
    }
    return this.runner.lastSequence;
  }

  async waitFor(sequence: number): Promise<void> {
    if (!(await this.runner.waitFor(sequence, CATCH_UP_TIMEOUT_MS))) throw new Error(`billing ledger did not apply sequence ${sequence} in time: ${this.runner.health.error ?? 'still behind'}`);
  }
}
