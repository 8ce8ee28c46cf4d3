import type { ServiceDefinition } from '@fastgpu/platform';
import { SchedulerModule } from './scheduler.module';

export const schedulerService: ServiceDefinition = { name: 'scheduler', module: SchedulerModule, consumesEvents: true };
