import { Module } from '@nestjs/common';

/** The metering service: its controllers, handlers and projections. */
@Module({ controllers: [], providers: [] })
export class MeteringModule {}
