import type { ReplayableProjection } from '@fastgpu/replay';
import { loadConfig } from '@fastgpu/config';
import { reliabilityConfig } from '../reliability.config';
import { SLA_PROJECTION, slaProjection } from './sla.projection';

/** Every table the SLA projection writes through `context.table` (the snapshots and request counts are not projections). */
export const slaTables = ['reliability_sla_jobs', 'reliability_sla_attempts', 'reliability_sla_nodes', 'reliability_sla_incidents', 'reliability_sla_credits', 'reliability_sli_minutes'] as const;

/** The SLA read model as `npm run replay -- reliability-sla` rebuilds it (no side effects: it publishes nothing anyway). */
export const slaReplayable: ReplayableProjection = {
  name: SLA_PROJECTION,
  tables: slaTables,
  create: () => slaProjection(reliabilityConfig(loadConfig()).slo),
};
