import { reportTimeMs, type DomainEvent, type StoredEvent } from '@fastgpu/contracts';
import type { ReliabilitySlaAttemptsTable, ReliabilitySlaCreditsTable, ReliabilitySlaIncidentsTable, ReliabilitySlaJobsTable, ReliabilitySlaNodesTable } from '@fastgpu/db';
import { judgeReport } from '../fencing/fencing.decider';

/**
 * The SLA read model's rules as a pure fold over a batch of events. The shell loads every row
 * the batch can touch (by job, sub-task, node), folds the batch in memory, then writes the rows
 * it changed with one statement per table: replay speed comes from that, the rules from here.
 * Node reports are judged with the liveness loop's fencing rule, so stale reports never count.
 */
export const SliName = { jobStartLatency: 'job-start-latency', meteringFreshness: 'metering-freshness' } as const;
export type SliName = (typeof SliName)[keyof typeof SliName];

export const InterruptionCause = { nodeLost: 'node-lost', preempted: 'preempted', drained: 'drained', platformFailure: 'platform-failure', requeued: 'requeued' } as const;
export type InterruptionCause = (typeof InterruptionCause)[keyof typeof InterruptionCause];

export interface SlaFoldOptions {
  jobStartLatencyThresholdMs: number;
  meteringFreshnessThresholdMs: number;
  /** How far past the stream's receive time a node's reported time is trusted (default 5 s). */
  clockSkewMs?: number;
}

/** Rows are the tables' shapes (libs/db schema.ts), with columns the server defaults always present. */
export type JobRow = Omit<ReliabilitySlaJobsTable, 'platform_fault'> & { platform_fault: boolean };

export type AttemptRow = ReliabilitySlaAttemptsTable;

export type NodeRow = Omit<ReliabilitySlaNodesTable, 'reports_rejected' | 'heartbeats_rejected'> & { reports_rejected: number; heartbeats_rejected: number };

export type IncidentRow = ReliabilitySlaIncidentsTable;

export type CreditRow = ReliabilitySlaCreditsTable;

export interface SliMinuteDelta {
  sli: SliName;
  minute_ms: number;
  total: number;
  good: number;
}

/** The rows a batch may touch, as loaded; the fold adds and changes rows in place. */
export interface SlaRows {
  jobs: Map<string, JobRow>;
  attempts: Map<string, AttemptRow>;
  nodes: Map<string, NodeRow>;
  /** Open incidents of the batch's nodes (and those the batch opens). */
  incidents: Map<string, IncidentRow>;
}

export interface SlaChanges {
  jobs: Set<string>;
  attempts: Set<string>;
  nodes: Set<string>;
  incidents: Set<string>;
  credits: CreditRow[];
  sliMinutes: Map<string, SliMinuteDelta>;
}

/** What the shell must load for a batch. */
export interface SlaKeys {
  jobIds: Set<string>;
  subtaskIds: Set<string>;
  /** Jobs whose attempts are all needed (JobCompleted). */
  completedJobIds: Set<string>;
  /** Nodes whose open attempts are needed (NodeLost). */
  lostNodeIds: Set<string>;
  /** Nodes whose row or open incidents are needed. */
  nodeIds: Set<string>;
}

export const attemptKey = (subtaskId: string, attempt: number) => `${subtaskId}#${attempt}`;
const MINUTE_MS = 60_000;
const ms = (instant: string) => Date.parse(instant);

export function keysOf(events: readonly StoredEvent[]): SlaKeys {
  const keys: SlaKeys = { jobIds: new Set(), subtaskIds: new Set(), completedJobIds: new Set(), lostNodeIds: new Set(), nodeIds: new Set() };
  for (const { event } of events) {
    const d = event.data as Partial<Record<'jobId' | 'subtaskId' | 'nodeId', string>>;
    if (d.jobId) keys.jobIds.add(d.jobId);
    if (d.subtaskId) keys.subtaskIds.add(d.subtaskId);
    if (d.nodeId) keys.nodeIds.add(d.nodeId);
    if (event.type === 'JobCompleted') keys.completedJobIds.add(event.data.jobId);
    if (event.type === 'NodeLost') keys.lostNodeIds.add(event.data.nodeId);
  }
  return keys;
}

export function emptyChanges(): SlaChanges {
  return { jobs: new Set(), attempts: new Set(), nodes: new Set(), incidents: new Set(), credits: [], sliMinutes: new Map() };
}

export function foldSla(rows: SlaRows, events: readonly StoredEvent[], options: SlaFoldOptions): SlaChanges {
  const changes = emptyChanges();
  const touchAttempt = (row: AttemptRow) => changes.attempts.add(attemptKey(row.subtask_id, row.attempt));
  const attemptsWhere = (match: (row: AttemptRow) => boolean) => [...rows.attempts.values()].filter(match).sort((a, b) => (a.subtask_id < b.subtask_id ? -1 : a.subtask_id > b.subtask_id ? 1 : a.attempt - b.attempt));
  const latestAttempt = (subtaskId: string) => attemptsWhere((r) => r.subtask_id === subtaskId).pop();

  const countSli = (sli: SliName, atMs: number, good: boolean) => {
    const minuteMs = atMs - (((atMs % MINUTE_MS) + MINUTE_MS) % MINUTE_MS);
    const key = `${sli}@${minuteMs}`;
    const delta = changes.sliMinutes.get(key) ?? { sli, minute_ms: minuteMs, total: 0, good: 0 };
    delta.total++;
    if (good) delta.good++;
    changes.sliMinutes.set(key, delta);
  };

  const endAttempt = (row: AttemptRow, atMs: number, endKind: string, cause: InterruptionCause, revokedReason: string) => {
    const endedAtMs = Math.max(row.placed_at_ms, atMs);
    Object.assign(row, { ended_at_ms: endedAtMs, end_kind: endKind, interruption_cause: cause, interrupted_at_ms: endedAtMs, revoked_reason: revokedReason });
    touchAttempt(row);
  };

  /** The work of a sub-task runs again (or never will): its open interruptions end here. */
  const resumeInterruptions = (match: (row: AttemptRow) => boolean, atMs: number, by: string) => {
    for (const row of attemptsWhere((r) => match(r) && r.interrupted_at_ms !== null && r.resumed_at_ms === null)) {
      row.resumed_at_ms = Math.max(row.interrupted_at_ms!, atMs);
      row.resumed_by = by;
      touchAttempt(row);
    }
  };

  const openIncident = (incident: IncidentRow) => {
    if (rows.incidents.has(incident.incident_id)) return;
    rows.incidents.set(incident.incident_id, incident);
    changes.incidents.add(incident.incident_id);
  };

  const closeIncidents = (nodeId: string, kind: string, endedAtMs: number) => {
    for (const incident of rows.incidents.values()) {
      if (incident.node_id !== nodeId || incident.kind !== kind || incident.ended_at_ms !== null) continue;
      incident.ended_at_ms = Math.max(incident.started_at_ms, endedAtMs);
      changes.incidents.add(incident.incident_id);
    }
  };

  for (const { event, sequence, receivedAtMs, subject } of events) apply(event, sequence, receivedAtMs, subject);
  return changes;

  /** A node's reported time on the server's clock (libs/contracts `reportTimeMs`): not before placement, not past receipt + skew. */
  function reported(iso: string, placedAtMs: number, receivedAtMs: number | undefined): number {
    return reportTimeMs(ms(iso), { placedAtMs, receivedAtMs }, options.clockSkewMs);
  }

  function apply(event: DomainEvent, sequence: number, receivedAtMs?: number, subject?: string): void {
    switch (event.type) {
      case 'JobSubmitted': {
        const d = event.data;
        if (rows.jobs.has(d.jobId)) return;
        rows.jobs.set(d.jobId, { job_id: d.jobId, tenant_id: d.tenantId, project_id: d.projectId, capacity_type: d.capacityType, submitted_at_ms: ms(d.submittedAt), outcome: null, completed_at_ms: null, platform_fault: false, sequence });
        changes.jobs.add(d.jobId);
        return;
      }
      case 'SubtaskPlaced': {
        const d = event.data;
        const key = attemptKey(d.subtaskId, d.attempt);
        if (rows.attempts.has(key)) return;
        const placedAtMs = ms(d.placedAt);
        let queueWaitMs: number | null = null;
        const job = rows.jobs.get(d.jobId);
        if (d.attempt === 1 && job) {
          queueWaitMs = Math.max(0, placedAtMs - job.submitted_at_ms);
          countSli(SliName.jobStartLatency, placedAtMs, queueWaitMs <= options.jobStartLatencyThresholdMs);
        }
        resumeInterruptions((r) => r.subtask_id === d.subtaskId && r.attempt < d.attempt, placedAtMs, 'placement');
        // A placement that still holds its lease when a newer one appears is superseded.
        for (const row of attemptsWhere((r) => r.subtask_id === d.subtaskId && r.attempt < d.attempt && r.revoked_reason === null)) {
          row.revoked_reason = `superseded by attempt ${d.attempt}`;
          touchAttempt(row);
        }
        const row: AttemptRow = {
          subtask_id: d.subtaskId,
          attempt: d.attempt,
          job_id: d.jobId,
          tenant_id: d.tenantId,
          node_id: d.nodeId,
          gpus: d.gpus,
          capacity_type: d.capacityType,
          lease_epoch: d.leaseEpoch,
          placed_at_ms: placedAtMs,
          queue_wait_ms: queueWaitMs,
          started_at_ms: null,
          ended_at_ms: null,
          end_kind: null,
          revoked_reason: null,
          interruption_cause: null,
          interrupted_at_ms: null,
          resumed_at_ms: null,
          resumed_by: null,
          sequence,
        };
        rows.attempts.set(key, row);
        touchAttempt(row);
        return;
      }
      case 'SubtaskStarted':
      case 'SubtaskCompleted':
      case 'SubtaskFailed': {
        const d = event.data;
        const row = latestAttempt(d.subtaskId);
        const placement = row && { subtaskId: row.subtask_id, jobId: row.job_id, tenantId: row.tenant_id, attempt: row.attempt, leaseEpoch: row.lease_epoch, nodeId: row.node_id, placedAtMs: row.placed_at_ms, revokedReason: row.revoked_reason ?? undefined };
        if (!row || !judgeReport(placement, { ...d, subject }).ok) return; // stale: rejected by the liveness loop, never counted
        if (event.type === 'SubtaskStarted') {
          if (row.started_at_ms === null) {
            row.started_at_ms = reported(event.data.startedAt, row.placed_at_ms, receivedAtMs);
            touchAttempt(row);
          }
          return;
        }
        if (row.ended_at_ms !== null) return;
        const endedAtMs = reported(event.data.endedAt, row.placed_at_ms, receivedAtMs);
        row.ended_at_ms = endedAtMs;
        if (event.type === 'SubtaskCompleted') row.end_kind = 'completed';
        else if (event.data.fault === 'platform') Object.assign(row, { end_kind: 'failed-platform', interruption_cause: InterruptionCause.platformFailure, interrupted_at_ms: endedAtMs });
        else row.end_kind = 'failed-user';
        touchAttempt(row);
        return;
      }
      case 'SubtaskPreempted': {
        const d = event.data;
        const row = rows.attempts.get(attemptKey(d.subtaskId, d.attempt));
        if (!row || row.lease_epoch !== d.leaseEpoch || row.ended_at_ms !== null) return;
        if (d.fault === 'user') {
          // The tenant cancelled: the work ends here, and it is no interruption of ours.
          Object.assign(row, { ended_at_ms: Math.max(row.placed_at_ms, ms(d.preemptedAt)), end_kind: 'cancelled' });
          touchAttempt(row);
          return;
        }
        // A preemption while the node is drained for health is a drain, not a priority decision.
        const drained = [...rows.incidents.values()].some((i) => i.node_id === d.nodeId && i.kind === 'drained' && i.ended_at_ms === null);
        endAttempt(row, ms(d.preemptedAt), 'preempted', drained ? InterruptionCause.drained : InterruptionCause.preempted, `preempted: ${d.reason}`);
        return;
      }
      case 'SubtaskRequeued': {
        const d = event.data;
        const row = rows.attempts.get(attemptKey(d.subtaskId, d.previousAttempt));
        if (!row) return;
        if (row.ended_at_ms === null) endAttempt(row, ms(d.requeuedAt), 'requeued', InterruptionCause.requeued, `requeued: ${d.reason}`);
        else if (row.revoked_reason === null) {
          row.revoked_reason = `requeued: ${d.reason}`;
          touchAttempt(row);
        }
        return;
      }
      case 'SubtaskAbandoned': {
        const d = event.data;
        const atMs = ms(d.abandonedAt);
        const row = rows.attempts.get(attemptKey(d.subtaskId, d.attempt));
        if (row && row.ended_at_ms === null) endAttempt(row, atMs, 'abandoned', InterruptionCause.requeued, `abandoned: ${d.reason}`);
        resumeInterruptions((r) => r.subtask_id === d.subtaskId, atMs, 'abandoned');
        const job = rows.jobs.get(d.jobId);
        if (job && !job.platform_fault) {
          job.platform_fault = true;
          changes.jobs.add(job.job_id);
        }
        return;
      }
      case 'JobCompleted': {
        const d = event.data;
        const atMs = ms(d.completedAt);
        const job = rows.jobs.get(d.jobId);
        if (job) {
          job.outcome = d.outcome;
          job.completed_at_ms = atMs;
          if (d.outcome === 'failed' && attemptsWhere((r) => r.job_id === d.jobId && r.end_kind === 'failed-platform').length) job.platform_fault = true;
          changes.jobs.add(job.job_id);
        }
        for (const row of attemptsWhere((r) => r.job_id === d.jobId && r.ended_at_ms === null)) {
          row.ended_at_ms = Math.max(row.placed_at_ms, atMs);
          row.end_kind = 'job-ended';
          touchAttempt(row);
        }
        resumeInterruptions((r) => r.job_id === d.jobId, atMs, 'job-completed');
        return;
      }
      case 'NodeRegistered': {
        const d = event.data;
        const node = rows.nodes.get(d.nodeId);
        if (node) Object.assign(node, { gpu_model: d.gpuModel, gpu_count: d.gpuCount });
        else rows.nodes.set(d.nodeId, { node_id: d.nodeId, gpu_model: d.gpuModel, gpu_count: d.gpuCount, registered_at_ms: ms(d.registeredAt), reports_rejected: 0, heartbeats_rejected: 0 });
        changes.nodes.add(d.nodeId);
        return;
      }
      case 'NodeLost': {
        const d = event.data;
        const lastHeartbeatAtMs = ms(d.lastHeartbeatAt);
        openIncident({ incident_id: event.id, node_id: d.nodeId, kind: 'lost', started_at_ms: lastHeartbeatAtMs, detected_at_ms: ms(d.detectedAt), ended_at_ms: null, reason: d.reason, automatic: true, sequence });
        // The node's work is billed up to its last heartbeat; the time after is the platform's.
        for (const row of attemptsWhere((r) => r.node_id === d.nodeId && r.ended_at_ms === null && r.revoked_reason === null)) {
          endAttempt(row, lastHeartbeatAtMs, 'node-lost', InterruptionCause.nodeLost, `node ${d.nodeId} lost`);
        }
        return;
      }
      case 'NodeRecovered':
        closeIncidents(event.data.nodeId, 'lost', ms(event.data.recoveredAt));
        return;
      case 'NodeDrained': {
        const d = event.data;
        openIncident({ incident_id: event.id, node_id: d.nodeId, kind: 'drained', started_at_ms: ms(d.drainedAt), detected_at_ms: null, ended_at_ms: null, reason: d.reason, automatic: d.automatic, sequence });
        return;
      }
      case 'NodeUndrained':
        closeIncidents(event.data.nodeId, 'drained', ms(event.data.undrainedAt));
        return;
      case 'ReportRejected': {
        const node = rows.nodes.get(event.data.nodeId);
        if (!node) return;
        if (event.data.reportType === 'Heartbeat') node.heartbeats_rejected++;
        else node.reports_rejected++;
        changes.nodes.add(node.node_id);
        return;
      }
      case 'SlaCreditIssued': {
        const d = event.data;
        changes.credits.push({
          credit_id: d.creditId,
          tenant_id: d.tenantId,
          period: d.period,
          metric: d.metric,
          measured: d.measured,
          target: d.target,
          credit_percent: d.creditPercent,
          report_hash: d.reportHash,
          window_end_sequence: d.windowEndSequence,
          issued_at_ms: ms(d.issuedAt),
          sequence,
        });
        return;
      }
      case 'UsageRecorded': {
        const recordedAtMs = ms(event.time);
        countSli(SliName.meteringFreshness, recordedAtMs, recordedAtMs - ms(event.data.endAt) <= options.meteringFreshnessThresholdMs);
        return;
      }
      default:
        return;
    }
  }
}
