import type { ServiceDefinition } from '@fastgpu/platform';
import { MeteringModule } from './metering.module';

// Metering reads the log through its projection runner (ordered consumer + checkpoint), not a durable consumer.
export const meteringService: ServiceDefinition = { name: 'metering', module: MeteringModule };
