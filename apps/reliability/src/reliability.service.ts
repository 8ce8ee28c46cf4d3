import type { ServiceDefinition } from '@fastgpu/platform';
import { ReliabilityModule } from './reliability.module';

// The liveness loop and the SLA projection read the log with their own ordered consumers, so the
// service needs no durable consumer of its own.
export const reliabilityService: ServiceDefinition = { name: 'reliability', module: ReliabilityModule };
