import { Module } from '@nestjs/common';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { ExternalEventsController } from './external/external.controller';
import { LateUsageController } from './usage/late-usage.controller';
import { MeteringProjections } from './usage/metering-projections';
import { UsageController } from './usage/usage.controller';
import { UsageRepository } from './usage/usage.repository';

/** The metering service: the usage projection, the usage API, the late-usage report and external usage ingestion. */
@Module({
  controllers: [LateUsageController, UsageController, ExternalEventsController],
  providers: [MeteringProjections, { provide: UsageRepository, useFactory: (runtime: Runtime) => new UsageRepository(runtime.db), inject: [RUNTIME] }],
  exports: [MeteringProjections],
})
export class MeteringModule {}
