import type { ServiceDefinition } from '@fastgpu/platform';
import { BillingModule } from './billing.module';

export const billingService: ServiceDefinition = { name: 'billing', module: BillingModule, consumesEvents: true };
