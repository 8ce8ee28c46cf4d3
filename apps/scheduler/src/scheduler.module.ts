import { Module } from '@nestjs/common';

/** The scheduler service: its controllers, handlers and projections. */
@Module({ controllers: [], providers: [] })
export class SchedulerModule {}
