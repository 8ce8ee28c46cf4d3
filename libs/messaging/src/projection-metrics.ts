import { Counter, type Registry } from 'prom-client';

/**
 * What projection runners count, per projection, for every process that runs one: created once
 * here, on no registry, and exposed by each process's Prometheus registry
 * (`registerProjectionRunnerMetrics`, called by libs/observability). Whether a projection is
 * stalled now is `fastgpu_projection_stalled`, read from its checkpoint row at scrape time.
 */
export const projectionApplyFailures = new Counter({
  name: 'fastgpu_projection_apply_failures_total',
  help: 'Failed attempts to apply a batch, by projection and kind (undecodable, unappliable, transient)',
  labelNames: ['projection', 'kind'],
  registers: [],
});

export const projectionStalls = new Counter({
  name: 'fastgpu_projection_stalls_total',
  help: 'Times a projection stopped at an event (counted once per stall, not per retry), by projection and kind',
  labelNames: ['projection', 'kind'],
  registers: [],
});

/** Exposes the runners' metrics on `registry` (once per registry). */
export function registerProjectionRunnerMetrics(registry: Registry): void {
  const metrics: Array<[string, Counter<'projection' | 'kind'>]> = [
    ['fastgpu_projection_apply_failures_total', projectionApplyFailures],
    ['fastgpu_projection_stalls_total', projectionStalls],
  ];
  for (const [name, metric] of metrics) {
    if (!registry.getSingleMetric(name)) registry.registerMetric(metric);
  }
}
