import type { DomainEvent } from '@fastgpu/contracts';

/**
 * A small fold of the domain log for gauges that no single service owns: queue depth per
 * tenant and GPU model, GPUs registered and allocated per model. Pure: events in, state out.
 * Memory stays bounded by live work: finished sub-tasks, jobs and leases are forgotten.
 */
export interface WorkItem {
  tenantId: string;
  /** Preferred GPU model while queued, the placed model once placed. */
  gpuModel: string;
  gpus: number;
  state: 'queued' | 'placed' | 'stopped';
  nodeId?: string;
}

export interface FleetState {
  subtasks: Map<string, WorkItem & { jobId: string }>;
  leases: Map<string, WorkItem>;
  nodes: Map<string, { gpuModel: string; gpuCount: number; lost: boolean }>;
  eventsByType: Map<string, number>;
}

export function initialFleetState(): FleetState {
  return { subtasks: new Map(), leases: new Map(), nodes: new Map(), eventsByType: new Map() };
}

export function evolveFleet(state: FleetState, event: DomainEvent): FleetState {
  state.eventsByType.set(event.type, (state.eventsByType.get(event.type) ?? 0) + 1);
  switch (event.type) {
    case 'SubtaskCreated': {
      const d = event.data;
      state.subtasks.set(d.subtaskId, { jobId: d.jobId, tenantId: d.tenantId, gpuModel: d.gpuModels[0]!, gpus: d.gpus, state: 'queued' });
      break;
    }
    case 'SubtaskPlaced': {
      const item = state.subtasks.get(event.data.subtaskId);
      if (item) Object.assign(item, { state: 'placed', gpuModel: event.data.gpuModel, nodeId: event.data.nodeId });
      break;
    }
    case 'SubtaskRequeued': {
      const item = state.subtasks.get(event.data.subtaskId);
      if (item) Object.assign(item, { state: 'queued', nodeId: undefined });
      break;
    }
    case 'SubtaskPreempted':
    case 'SubtaskCompleted':
    case 'SubtaskFailed': {
      // Ended or stopped: not queued and not holding GPUs until a SubtaskRequeued says otherwise.
      const item = state.subtasks.get(event.data.subtaskId);
      if (item && item.state === 'placed' && item.nodeId === event.data.nodeId) Object.assign(item, { state: 'stopped', nodeId: undefined });
      break;
    }
    case 'SubtaskAbandoned':
      state.subtasks.delete(event.data.subtaskId);
      break;
    case 'JobCompleted':
      for (const [id, item] of state.subtasks) if (item.jobId === event.data.jobId) state.subtasks.delete(id);
      break;
    case 'LeaseRequested':
      state.leases.set(event.data.leaseId, { tenantId: event.data.tenantId, gpuModel: event.data.gpuModels[0]!, gpus: event.data.gpus, state: 'queued' });
      break;
    case 'LeaseGranted': {
      const item = state.leases.get(event.data.leaseId);
      if (item) Object.assign(item, { state: 'placed', gpuModel: event.data.gpuModel, nodeId: event.data.nodeId, gpus: event.data.gpus });
      break;
    }
    case 'LeaseReleased':
      state.leases.delete(event.data.leaseId);
      break;
    case 'NodeRegistered':
      state.nodes.set(event.data.nodeId, { gpuModel: event.data.gpuModel, gpuCount: event.data.gpuCount, lost: false });
      break;
    case 'NodeLost': {
      const node = state.nodes.get(event.data.nodeId);
      if (node) node.lost = true;
      break;
    }
    case 'NodeRecovered': {
      const node = state.nodes.get(event.data.nodeId);
      if (node) node.lost = false;
      break;
    }
    default:
      break;
  }
  return state;
}

export interface FleetFigures {
  queueDepth: Array<{ tenantId: string; gpuModel: string; kind: 'subtask' | 'lease'; count: number }>;
  gpus: Array<{ gpuModel: string; total: number; allocated: number }>;
}

export function fleetFigures(state: FleetState): FleetFigures {
  const queue = new Map<string, { tenantId: string; gpuModel: string; kind: 'subtask' | 'lease'; count: number }>();
  const allocated = new Map<string, number>();
  const count = (kind: 'subtask' | 'lease', item: WorkItem) => {
    if (item.state === 'queued') {
      const key = `${kind}\u0000${item.tenantId}\u0000${item.gpuModel}`;
      const entry = queue.get(key) ?? { tenantId: item.tenantId, gpuModel: item.gpuModel, kind, count: 0 };
      entry.count++;
      queue.set(key, entry);
    } else if (item.state === 'placed') {
      allocated.set(item.gpuModel, (allocated.get(item.gpuModel) ?? 0) + item.gpus);
    }
  };
  for (const item of state.subtasks.values()) count('subtask', item);
  for (const item of state.leases.values()) count('lease', item);
  const total = new Map<string, number>();
  for (const node of state.nodes.values()) if (!node.lost) total.set(node.gpuModel, (total.get(node.gpuModel) ?? 0) + node.gpuCount);
  const models = new Set([...total.keys(), ...allocated.keys()]);
  return {
    queueDepth: [...queue.values()],
    gpus: [...models].sort().map((gpuModel) => ({ gpuModel, total: total.get(gpuModel) ?? 0, allocated: allocated.get(gpuModel) ?? 0 })),
  };
}
