import type { ServiceDefinition } from '@fastgpu/platform';
import { MeteringModule } from './metering.module';

export const meteringService: ServiceDefinition = { name: 'metering', module: MeteringModule, consumesEvents: true };
