import 'reflect-metadata';
import { runStandalone } from '@fastgpu/platform';
import { billingService } from './billing.service';

await runStandalone(billingService);
