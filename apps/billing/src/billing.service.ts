import type { ServiceDefinition } from '@fastgpu/platform';
import type { BillingOptions } from './billing.config';
import { billingGrpcHandlers } from './billing.grpc';
import { BillingModule } from './billing.module';

/** Billing as the platform starts it; options default from the environment (FASTGPU_BILLING_*). */
export function createBillingService(options: Partial<BillingOptions> = {}): ServiceDefinition {
  return { name: 'billing', module: BillingModule.forRoot(options), grpc: billingGrpcHandlers };
}

export const billingService: ServiceDefinition = createBillingService();
