import { Module } from '@nestjs/common';
import { ExternalEventsController } from './external/external.controller';
import { LateUsageController } from './usage/late-usage.controller';
import { MeteringProjections } from './usage/metering-projections';
import { UsageController } from './usage/usage.controller';

/** The metering service: the usage projection, the usage API, the late-usage report and external usage ingestion. */
@Module({ controllers: [LateUsageController, UsageController, ExternalEventsController], providers: [MeteringProjections], exports: [MeteringProjections] })
export class MeteringModule {}
