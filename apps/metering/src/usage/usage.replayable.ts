import type { ReplayableProjection } from '@fastgpu/replay';
import { streamTimesFrom, USAGE_PROJECTION, UsageProjection, usageTables } from './usage.projection';

/** The usage projection as `npm run replay -- usage` rebuilds it (no publishing: live is false). */
export const usageReplayable: ReplayableProjection = {
  name: USAGE_PROJECTION,
  tables: usageTables,
  create: ({ bus }) => new UsageProjection({ streamTimes: streamTimesFrom(bus) }),
  // Indexes only the usage API reads, built once when the rebuild has caught up: the hourly key
  // (ten columns, ~0.6 rows per event; most of the replay's index upkeep) and the allocations'
  // (tenant, start). The allocation key and the open-per-node index stay: the projection reads them.
  deferIndex: (table, shape) => table === 'metering_usage_hourly' || (table === 'metering_allocations' && shape.includes('(tenant_id, start_ms)')),
};
