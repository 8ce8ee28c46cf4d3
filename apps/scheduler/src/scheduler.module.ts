import { Module } from '@nestjs/common';
import { FleetController } from './http/fleet.controller';
import { SchedulerController } from './http/scheduler.controller';
import { SchedulerRunner } from './scheduler.runner';

/** The scheduler service: the engine (fold + placement cycles + feasibility/explain replies) and its HTTP routes. */
@Module({ controllers: [SchedulerController, FleetController], providers: [SchedulerRunner], exports: [SchedulerRunner] })
export class SchedulerModule {}
