import { deriveId, judgeNodeReport, reportSubjectNodeId, type DomainEvent, type ReportRejectionCode } from '@fastgpu/contracts';
import { iso, type Effect } from '../monitor/effects';

/**
 * Fencing: every placement carries a lease epoch. A report (SubtaskStarted / Completed / Failed)
 * counts only when it matches the sub-task's current placement by the rule every consumer of node
 * reports shares (libs/contracts `judgeNodeReport`: the node on its subject and in its body,
 * sub-task, attempt, lease epoch), and that placement was not revoked (its node lost, preempted,
 * requeued or abandoned). Anything else is rejected (never billed) and the node that sent it is
 * told to stop that work. Pure: the shell passes events in log order and "now".
 */
export interface Placement {
  subtaskId: string;
  jobId: string;
  tenantId: string;
  attempt: number;
  leaseEpoch: number;
  nodeId: string;
  placedAtMs: number;
  /** Why this placement no longer holds its lease; undefined while it does. */
  revokedReason?: string;
}

export interface ReportFacts {
  subtaskId: string;
  attempt: number;
  leaseEpoch: number;
  nodeId: string;
  /** The subject the report was published on (absent for work a heartbeat lists: its subject was checked there). */
  subject?: string;
}

/** `revoked`: the report matches a placement that no longer holds its lease (reliability's own addition to the shared rule). */
export type Judgement = { ok: true } | { ok: false; code: ReportRejectionCode | 'revoked'; reason: string };

/** Whether a report from a node may be applied, given the sub-task's current placement. */
export function judgeReport(current: Placement | undefined, report: ReportFacts): Judgement {
  const judgement = judgeNodeReport(current, report);
  if (!judgement.ok) return judgement;
  if (current?.revokedReason) return { ok: false, code: 'revoked', reason: `lease epoch ${current.leaseEpoch} was revoked: ${current.revokedReason}` };
  return { ok: true };
}

export interface FencingState {
  placements: Map<string, Placement>;
  byNode: Map<string, Set<string>>;
  byJob: Map<string, Set<string>>;
}

export function initialFencingState(): FencingState {
  return { placements: new Map(), byNode: new Map(), byJob: new Map() };
}

export const fencingEventTypes = new Set(['SubtaskPlaced', 'SubtaskPreempted', 'SubtaskRequeued', 'SubtaskAbandoned', 'NodeLost', 'JobCompleted', 'SubtaskStarted', 'SubtaskCompleted', 'SubtaskFailed'] as const);

function index(map: Map<string, Set<string>>, key: string, value: string): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function unindex(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}

function revoke(state: FencingState, subtaskId: string, epoch: number | undefined, reason: string): void {
  const current = state.placements.get(subtaskId);
  if (!current || current.revokedReason) return;
  if (epoch !== undefined && current.leaseEpoch !== epoch) return;
  current.revokedReason = reason;
  unindex(state.byNode, current.nodeId, subtaskId);
}

/**
 * Folds one domain event into the placement table (mutating it: the fleet can be large, and
 * the shell owns the only copy). Placements are forgotten when their job completes, which
 * bounds memory by the jobs in flight; a late report of a finished job has no placement and is
 * rejected as such.
 */
export function evolveFencing(state: FencingState, event: DomainEvent): void {
  switch (event.type) {
    case 'SubtaskPlaced': {
      const d = event.data;
      const previous = state.placements.get(d.subtaskId);
      if (previous && previous.leaseEpoch > d.leaseEpoch) return;
      if (previous) unindex(state.byNode, previous.nodeId, d.subtaskId);
      state.placements.set(d.subtaskId, { subtaskId: d.subtaskId, jobId: d.jobId, tenantId: d.tenantId, attempt: d.attempt, leaseEpoch: d.leaseEpoch, nodeId: d.nodeId, placedAtMs: Date.parse(d.placedAt) });
      index(state.byNode, d.nodeId, d.subtaskId);
      index(state.byJob, d.jobId, d.subtaskId);
      return;
    }
    case 'SubtaskPreempted':
      revoke(state, event.data.subtaskId, event.data.leaseEpoch, `preempted: ${event.data.reason}`);
      return;
    case 'SubtaskRequeued': {
      const current = state.placements.get(event.data.subtaskId);
      if (current && current.attempt === event.data.previousAttempt) revoke(state, event.data.subtaskId, undefined, `requeued: ${event.data.reason}`);
      return;
    }
    case 'SubtaskAbandoned':
      revoke(state, event.data.subtaskId, undefined, `abandoned: ${event.data.reason}`);
      return;
    case 'NodeLost': {
      const onNode = [...(state.byNode.get(event.data.nodeId) ?? [])];
      for (const subtaskId of onNode) revoke(state, subtaskId, undefined, `node ${event.data.nodeId} lost (last heartbeat ${event.data.lastHeartbeatAt})`);
      return;
    }
    case 'JobCompleted': {
      for (const subtaskId of state.byJob.get(event.data.jobId) ?? []) {
        const current = state.placements.get(subtaskId);
        if (current) unindex(state.byNode, current.nodeId, subtaskId);
        state.placements.delete(subtaskId);
      }
      state.byJob.delete(event.data.jobId);
      return;
    }
    default:
      return;
  }
}

export type NodeReport = DomainEvent<'SubtaskStarted'> | DomainEvent<'SubtaskCompleted'> | DomainEvent<'SubtaskFailed'>;

export function isNodeReport(event: DomainEvent): event is NodeReport {
  return event.type === 'SubtaskStarted' || event.type === 'SubtaskCompleted' || event.type === 'SubtaskFailed';
}

/**
 * A rejected report becomes a `ReportRejected` (so the rejection is on record) and a `StopSubtask`
 * command to the node that sent it: the node whose subject carried it, which is not the node it
 * names when it was forged, so a forgery never stops the real work. Ids derive from the report's id.
 */
export function decideReport(state: FencingState, report: NodeReport, nowMs: number, subject?: string): Effect[] {
  return reportVerdict(state, report, nowMs, subject).effects;
}

/** `decideReport` with the judgement it made (the shell counts rejections by their code). */
export function reportVerdict(state: FencingState, report: NodeReport, nowMs: number, subject?: string): { judgement: Judgement; effects: Effect[] } {
  const judgement = judgeReport(state.placements.get(report.data.subtaskId), { ...report.data, subject });
  if (judgement.ok) return { judgement, effects: [] };
  const d = report.data;
  const senderNodeId = (subject === undefined ? undefined : reportSubjectNodeId(subject)) ?? d.nodeId;
  const effects: Effect[] = [
    {
      kind: 'command',
      nodeId: senderNodeId,
      command: { kind: 'StopSubtask', commandId: deriveId(report.id, 'StopSubtask'), subtaskId: d.subtaskId, attempt: d.attempt, leaseEpoch: d.leaseEpoch, reason: judgement.reason, issuedAt: iso(nowMs) },
    },
    {
      kind: 'event',
      id: deriveId(report.id, 'ReportRejected'),
      type: 'ReportRejected',
      causationId: report.id,
      data: { nodeId: senderNodeId, subtaskId: d.subtaskId, reportType: report.type, reason: judgement.reason.slice(0, 500), rejectedAt: iso(nowMs) },
    },
  ];
  return { judgement, effects };
}

/**
 * Work a node says it runs (in its heartbeat) that no longer holds its lease: a newer epoch
 * exists, or this epoch was revoked. Unknown sub-tasks are left alone: the placement may simply
 * not have reached this instance yet.
 */
export function staleRunningWork(state: FencingState, nodeId: string, running: ReadonlyArray<{ subtaskId: string; attempt: number; leaseEpoch: number }>): Array<{ subtaskId: string; attempt: number; leaseEpoch: number; reason: string }> {
  const stale: Array<{ subtaskId: string; attempt: number; leaseEpoch: number; reason: string }> = [];
  for (const work of running) {
    const current = state.placements.get(work.subtaskId);
    if (!current || current.leaseEpoch < work.leaseEpoch) continue;
    const judgement = judgeReport(current, { ...work, nodeId });
    if (!judgement.ok) stale.push({ ...work, reason: judgement.reason });
  }
  return stale;
}
