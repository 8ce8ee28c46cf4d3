import type { ServiceDefinition } from '@fastgpu/platform';
import { ReliabilityModule } from './reliability.module';

export const reliabilityService: ServiceDefinition = { name: 'reliability', module: ReliabilityModule, consumesEvents: true };
