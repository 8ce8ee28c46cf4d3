import type { StoredEvent } from '@fastgpu/contracts';

/**
 * Pure folds for `events as-of`: the state of one job, one node or one tenant's usage from
 * the events up to a stream sequence. Nothing here reads a clock or the bus.
 */
export interface SubtaskView {
  subtaskId: string;
  index: number;
  gpus: number;
  state: 'created' | 'placed' | 'running' | 'succeeded' | 'failed' | 'preempted' | 'requeued' | 'abandoned';
  attempt: number;
  nodeId?: string;
  leaseEpoch?: number;
  startedAt?: string;
  endedAt?: string;
  exitCode?: number;
  reason?: string;
}
export interface JobView {
  jobId: string;
  tenantId?: string;
  projectId?: string;
  state: 'unknown' | 'submitted' | 'running' | 'cancel-requested' | 'completed';
  outcome?: string;
  submittedAt?: string;
  completedAt?: string;
  gpuMsObserved?: number;
  gpuMsRecorded: number;
  subtasks: Record<string, SubtaskView>;
  lastSequence: number;
  events: number;
}

export function foldJob(jobId: string, events: Iterable<StoredEvent>): JobView {
  const job: JobView = { jobId, state: 'unknown', gpuMsRecorded: 0, subtasks: {}, lastSequence: 0, events: 0 };
  for (const { sequence, event } of events) {
    const data = event.data as { jobId?: string };
    if (data.jobId !== jobId) continue;
    job.events++;
    job.lastSequence = sequence;
    switch (event.type) {
      case 'JobSubmitted':
        Object.assign(job, { state: 'submitted', tenantId: event.data.tenantId, projectId: event.data.projectId, submittedAt: event.data.submittedAt });
        break;
      case 'SubtaskCreated':
        job.subtasks[event.data.subtaskId] = { subtaskId: event.data.subtaskId, index: event.data.index, gpus: event.data.gpus, state: 'created', attempt: 1 };
        break;
      case 'JobCancelRequested':
        if (job.state !== 'completed') job.state = 'cancel-requested';
        break;
      case 'SubtaskPlaced': {
        const s = job.subtasks[event.data.subtaskId];
        if (s) Object.assign(s, { state: 'placed', attempt: event.data.attempt, nodeId: event.data.nodeId, leaseEpoch: event.data.leaseEpoch });
        if (job.state === 'submitted') job.state = 'running';
        break;
      }
      case 'SubtaskStarted': {
        const s = job.subtasks[event.data.subtaskId];
        if (s && s.leaseEpoch === event.data.leaseEpoch) Object.assign(s, { state: 'running', startedAt: event.data.startedAt });
        break;
      }
      case 'SubtaskCompleted': {
        const s = job.subtasks[event.data.subtaskId];
        if (s && s.leaseEpoch === event.data.leaseEpoch) Object.assign(s, { state: 'succeeded', endedAt: event.data.endedAt, exitCode: 0 });
        break;
      }
      case 'SubtaskFailed': {
        const s = job.subtasks[event.data.subtaskId];
        if (s && s.leaseEpoch === event.data.leaseEpoch) Object.assign(s, { state: 'failed', endedAt: event.data.endedAt, exitCode: event.data.exitCode, reason: event.data.reason });
        break;
      }
      case 'SubtaskPreempted': {
        const s = job.subtasks[event.data.subtaskId];
        if (s) Object.assign(s, { state: 'preempted', reason: event.data.reason });
        break;
      }
      case 'SubtaskRequeued': {
        const s = job.subtasks[event.data.subtaskId];
        if (s) Object.assign(s, { state: 'requeued', nodeId: undefined, reason: event.data.reason });
        break;
      }
      case 'SubtaskAbandoned': {
        const s = job.subtasks[event.data.subtaskId];
        if (s) Object.assign(s, { state: 'abandoned', reason: event.data.reason });
        break;
      }
      case 'JobCompleted':
        Object.assign(job, { state: 'completed', outcome: event.data.outcome, completedAt: event.data.completedAt, gpuMsObserved: event.data.gpuMsObserved });
        break;
      case 'UsageRecorded':
        job.gpuMsRecorded += event.data.gpuMs;
        break;
      default:
        break;
    }
  }
  return job;
}

export interface NodeView {
  nodeId: string;
  state: 'unknown' | 'up' | 'lost' | 'drained';
  gpuModel?: string;
  gpuCount?: number;
  agentEpoch?: number;
  /** subtaskId → GPUs held, for placements not yet ended. */
  running: Record<string, { jobId: string; gpus: number; leaseEpoch: number }>;
  leases: Record<string, { gpus: number; leaseEpoch: number }>;
  gpusAllocated: number;
  lastSequence: number;
  events: number;
}

export function foldNode(nodeId: string, events: Iterable<StoredEvent>): NodeView {
  const node: NodeView = { nodeId, state: 'unknown', running: {}, leases: {}, gpusAllocated: 0, lastSequence: 0, events: 0 };
  for (const { sequence, event } of events) {
    const data = event.data as { nodeId?: string; subtaskId?: string; leaseEpoch?: number };
    if (data.nodeId !== nodeId) continue;
    node.events++;
    node.lastSequence = sequence;
    switch (event.type) {
      case 'NodeRegistered':
        Object.assign(node, { state: 'up', gpuModel: event.data.gpuModel, gpuCount: event.data.gpuCount, agentEpoch: event.data.agentEpoch });
        break;
      case 'NodeRecovered':
      case 'NodeUndrained':
        node.state = 'up';
        break;
      case 'NodeLost':
        node.state = 'lost';
        break;
      case 'NodeDrained':
        node.state = 'drained';
        break;
      case 'SubtaskPlaced':
        node.running[event.data.subtaskId] = { jobId: event.data.jobId, gpus: event.data.gpus, leaseEpoch: event.data.leaseEpoch };
        break;
      case 'SubtaskCompleted':
      case 'SubtaskFailed':
      case 'SubtaskPreempted':
        if (node.running[event.data.subtaskId]?.leaseEpoch === event.data.leaseEpoch) delete node.running[event.data.subtaskId];
        break;
      case 'LeaseGranted':
        node.leases[event.data.leaseId] = { gpus: event.data.gpus, leaseEpoch: event.data.leaseEpoch };
        break;
      case 'LeaseReleased':
        delete node.leases[event.data.leaseId];
        break;
      default:
        break;
    }
  }
  node.gpusAllocated = Object.values(node.running).reduce((sum, r) => sum + r.gpus, 0) + Object.values(node.leases).reduce((sum, l) => sum + l.gpus, 0);
  return node;
}

export interface UsageLine {
  projectId: string;
  gpuModel: string;
  capacityType: string;
  gpuMs: number;
  interruptedGpuMs: number;
  records: number;
}
export interface TenantUsageView {
  tenantId: string;
  gpuMsTotal: number;
  lines: UsageLine[];
  lastSequence: number;
}

export function foldTenantUsage(tenantId: string, events: Iterable<StoredEvent>): TenantUsageView {
  const lines = new Map<string, UsageLine>();
  const seen = new Set<string>();
  let lastSequence = 0;
  for (const { sequence, event } of events) {
    if (event.type !== 'UsageRecorded' || event.data.tenantId !== tenantId) continue;
    // Consumers dedupe by event id: a redriven or re-published record counts once.
    if (seen.has(event.id)) continue;
    seen.add(event.id);
    lastSequence = sequence;
    const d = event.data;
    const key = `${d.projectId}\u0000${d.gpuModel}\u0000${d.capacityType}`;
    const line = lines.get(key) ?? { projectId: d.projectId, gpuModel: d.gpuModel, capacityType: d.capacityType, gpuMs: 0, interruptedGpuMs: 0, records: 0 };
    line.gpuMs += d.gpuMs;
    if (d.interrupted) line.interruptedGpuMs += d.gpuMs;
    line.records++;
    lines.set(key, line);
  }
  const sorted = [...lines.values()].sort((a, b) => `${a.projectId}${a.gpuModel}${a.capacityType}`.localeCompare(`${b.projectId}${b.gpuModel}${b.capacityType}`));
  return { tenantId, gpuMsTotal: sorted.reduce((sum, l) => sum + l.gpuMs, 0), lines: sorted, lastSequence };
}
