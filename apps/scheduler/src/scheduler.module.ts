import { Module } from '@nestjs/common';
import { SchedulerController } from './http/scheduler.controller';
import { SchedulerRunner } from './scheduler.runner';

/** The scheduler service: the engine (fold + placement cycles + feasibility/explain replies) and its HTTP routes. */
@Module({ controllers: [SchedulerController], providers: [SchedulerRunner], exports: [SchedulerRunner] })
export class SchedulerModule {}
