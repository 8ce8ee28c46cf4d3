import { Module } from '@nestjs/common';
import { ExternalEventsController } from './external/external.controller';
import { MeteringProjections } from './usage/metering-projections';
import { UsageController } from './usage/usage.controller';

/** The metering service: the usage projection, the usage API and external usage ingestion. */
@Module({ controllers: [UsageController, ExternalEventsController], providers: [MeteringProjections], exports: [MeteringProjections] })
export class MeteringModule {}
