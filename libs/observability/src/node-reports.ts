import { Logger } from '@nestjs/common';
import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * What the consumers of node reports count, for every process that runs one: created once here,
 * on no registry, and exposed by each process's Prometheus registry (`registerNodeReportMetrics`,
 * called by `FastGpuMetrics`). The rule they count by is libs/contracts `judgeNodeReport`.
 */
export const nodeReportsRejected = new Counter({
  name: 'fastgpu_node_reports_rejected_total',
  help: 'Node reports (SubtaskStarted/Completed/Failed) a consumer refused because they do not match the current placement, by consumer and reason code',
  labelNames: ['consumer', 'code'],
  registers: [],
});

export const nodeClockSkewSeconds = new Gauge({
  name: 'fastgpu_node_clock_skew_seconds',
  help: "A node agent's clock minus the stream's receipt time of its latest accepted heartbeat (positive: ahead; transit reads as behind)",
  labelNames: ['node'],
  registers: [],
});

/** Exposes the node-report metrics on `registry` (once per registry). */
export function registerNodeReportMetrics(registry: Registry): void {
  if (!registry.getSingleMetric('fastgpu_node_reports_rejected_total')) registry.registerMetric(nodeReportsRejected);
  if (!registry.getSingleMetric('fastgpu_node_clock_skew_seconds')) registry.registerMetric(nodeClockSkewSeconds);
}

export interface RejectedNodeReport {
  /** The service or read model that refused it: `scheduler`, `metering-usage`, `intake-jobs`, `reliability`. */
  consumer: string;
  eventId: string;
  sequence: number;
  type: string;
  nodeId: string;
  subject?: string;
  subtaskId: string;
  /** libs/contracts `ReportRejectionCode`, or a consumer's own addition (reliability: `revoked`). */
  code: string;
  reason: string;
}

const logger = new Logger('node-reports');

/**
 * Counts a refused report and logs it. Callers call it once per report, and only for what they
 * judge live (not while a restart or a rebuild reads the log again), so each is logged once.
 */
export function recordRejectedNodeReport(report: RejectedNodeReport): void {
  nodeReportsRejected.inc({ consumer: report.consumer, code: report.code });
  logger.warn(`${report.consumer} rejected ${report.type} ${report.eventId} (sequence ${report.sequence}, subject ${report.subject ?? 'unknown'}) for sub-task ${report.subtaskId} from node ${report.nodeId}: ${report.reason}`);
}
