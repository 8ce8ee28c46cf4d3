import { Module, type DynamicModule } from '@nestjs/common';
import { ReliabilityEngine, RELIABILITY_OPTIONS } from './reliability.engine';
import type { ReliabilityOptions } from './reliability.config';
import { SlaReportsController } from './sla/sla.controller';
import { SloController } from './slo/slo.controller';

/** The reliability service: liveness and fencing, the SLA read model, reports, credits and SLOs. */
@Module({
  controllers: [SlaReportsController, SloController],
  providers: [ReliabilityEngine, { provide: RELIABILITY_OPTIONS, useValue: {} }],
  exports: [ReliabilityEngine],
})
export class ReliabilityModule {
  /** The module with explicit options over the environment's (tests shorten intervals, turn off the close loop). */
  static withOptions(options: Partial<ReliabilityOptions>): DynamicModule {
    return {
      module: ReliabilityModule,
      controllers: [SlaReportsController, SloController],
      providers: [ReliabilityEngine, { provide: RELIABILITY_OPTIONS, useValue: options }],
      exports: [ReliabilityEngine],
    };
  }
}
