import type { ServedReport } from './sla.report';

const CSV_HEADER = ['tenant_id', 'period', 'section', 'item', 'metric', 'value'] as const;

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Long-format CSV (one value per row), so every section fits one header. */
export function reportsToCsv(reports: readonly ServedReport[]): string {
  const rows: unknown[][] = [CSV_HEADER as unknown as unknown[]];
  for (const r of reports) {
    const add = (section: string, item: string, metric: string, value: unknown) => rows.push([r.tenantId, r.period, section, item, metric, value]);
    add('report', '', 'as_of', r.asOf);
    add('report', '', 'final', r.final);
    add('report', '', 'window_end_sequence', r.windowEndSequence);
    add('report', '', 'hash', r.hash);
    const a = r.allocationAvailability;
    add('allocation', '', 'allocated_gpu_ms', a.allocatedGpuMs);
    add('allocation', '', 'unavailable_gpu_ms', a.unavailableGpuMs);
    add('allocation', '', 'availability_percent', a.availabilityPercent);
    add('allocation', '', 'target_percent', a.targetPercent);
    add('allocation', '', 'met', a.met);
    add('allocation', '', 'credit_percent', a.creditPercent);
    const api = r.apiAvailability;
    add('api', '', 'requests', api.requests);
    add('api', '', 'errors', api.errors);
    add('api', '', 'availability_percent', api.availabilityPercent);
    add('api', '', 'target_percent', api.targetPercent);
    add('api', '', 'met', api.met);
    add('api', '', 'credit_percent', api.creditPercent);
    for (const [key, value] of Object.entries(r.jobs)) add('jobs', '', snake(key), value);
    for (const [key, value] of Object.entries(r.queueWaitMs)) add('queue_wait_ms', '', key, value);
    for (const [key, value] of Object.entries(r.requeueAfterNodeLoss)) add('requeue_after_node_loss', '', snake(key), value);
    add('interruptions', '', 'count', r.interruptions.count);
    add('interruptions', '', 'interrupted_gpu_ms', r.interruptions.interruptedGpuMs);
    add('interruptions', '', 'unavailable_gpu_ms', r.interruptions.unavailableGpuMs);
    for (const i of r.interruptions.items) {
      const item = `${i.subtaskId}#${i.attempt}`;
      for (const key of ['jobId', 'nodeId', 'cause', 'capacityType', 'slaCovered', 'gpus', 'interruptedAt', 'resumedAt', 'resumedBy', 'interruptedGpuMs', 'unavailableGpuMs'] as const) add('interruption', item, snake(key), i[key]);
    }
    for (const n of r.nodes) {
      for (const key of ['gpuModel', 'gpuCount', 'observedMs', 'downtimeMs', 'drainedMs', 'uptimePercent', 'reportsRejectedTotal', 'heartbeatsRejectedTotal'] as const) add('node', n.nodeId, snake(key), n[key]);
      for (const i of n.incidents) add('node_incident', `${n.nodeId}/${i.incidentId}`, i.kind, `${i.startedAt}..${i.endedAt ?? ''} ${i.reason}`);
    }
    for (const s of r.slos) {
      add('slo', s.slo, 'objective_percent', s.objectivePercent);
      add('slo', s.slo, 'status', s.status);
      add('slo', s.slo, 'budget_remaining', s.budgetRemaining);
      add('slo', s.slo, 'current_burn_rate', s.currentBurnRate);
    }
    for (const c of r.credits) add('credit', c.creditId, c.metric, `${c.creditPercent}% (measured ${c.measured}, target ${c.target})`);
  }
  return rows.map((row) => row.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
