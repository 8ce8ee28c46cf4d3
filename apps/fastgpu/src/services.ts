import type { ServiceDefinition } from '@fastgpu/platform';
import { billingService } from '../../billing/src/billing.service';
import { intakeService } from '../../intake/src/intake.service';
import { meteringService } from '../../metering/src/metering.service';
import { reliabilityService } from '../../reliability/src/reliability.service';
import { schedulerService } from '../../scheduler/src/scheduler.service';

/** The composition root: all five services, as `npm start` runs them in one process. */
export const allServices: ServiceDefinition[] = [intakeService, schedulerService, meteringService, billingService, reliabilityService];
