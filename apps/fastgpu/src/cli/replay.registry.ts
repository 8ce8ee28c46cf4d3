import type { ReplayableProjection } from '@fastgpu/replay';
import { usageReplayable } from '../../../metering/src/usage/usage.replayable';
import { slaReplayable } from '../../../reliability/src/sla/sla.replayable';
import { directoryReplayable, jobsReplayable } from '../../../intake/src/intake.replayable';
import { billingReplayable } from '../../../billing/src/billing.replayable';

/**
 * Projections `npm run replay -- <name>` can rebuild. Each service appends its own entry:
 * a name, the tables it writes (through `context.table`) and a factory for a rebuild instance.
 */
export const replayableProjections: Record<string, ReplayableProjection> = {
  usage: usageReplayable,
  'reliability-sla': slaReplayable,
  'intake-jobs': jobsReplayable,
  'intake-directory': directoryReplayable,
  'billing-ledger': billingReplayable,
};
