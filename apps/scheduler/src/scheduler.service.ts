import type { ServiceDefinition } from '@fastgpu/platform';
import { SchedulerModule } from './scheduler.module';

/** The scheduler folds the log with its own ordered consumer (no durable consumer of its own). */
export const schedulerService: ServiceDefinition = { name: 'scheduler', module: SchedulerModule };
