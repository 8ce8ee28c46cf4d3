import type { ReplayableProjection } from '@fastgpu/replay';
import { streamTimesFrom, USAGE_PROJECTION, UsageProjection, usageTables } from './usage.projection';

/** The usage projection as `npm run replay -- usage` rebuilds it (no publishing: live is false). */
export const usageReplayable: ReplayableProjection = {
  name: USAGE_PROJECTION,
  tables: usageTables,
  create: ({ bus }) => new UsageProjection({ streamTimes: streamTimesFrom(bus) }),
};
