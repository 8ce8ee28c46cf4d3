import { gpuMs } from '@fastgpu/money';
import { RECENT_STOPS_MAX, type Allocation, type SchedulerState } from './scheduler.state';

/**
 * GPUs held on nodes, as the fold records them: allocating and releasing a placement or a
 * lease (the owner of each GPU index, free counts, usage per tenant and model, the largest lease
 * epoch), the GPU-ms a sub-task attempt ran, and the recent stops resent after a takeover.
 */

function addUsage(state: SchedulerState, tenantId: string, model: string, gpus: number): void {
  let byModel = state.usage.get(tenantId);
  if (!byModel) {
    byModel = new Map();
    state.usage.set(tenantId, byModel);
  }
  const next = (byModel.get(model) ?? 0) + gpus;
  if (next < 0) throw new Error(`usage of ${tenantId} on ${model} would go negative`);
  if (next === 0) byModel.delete(model);
  else byModel.set(model, next);
}

export function allocate(state: SchedulerState, allocation: Allocation): void {
  const node = allocation.node;
  for (const index of allocation.gpuIndices) {
    // Invariant: no GPU is ever assigned twice. A log that says otherwise is a bug upstream.
    if (index >= node.gpuCount || node.gpuOwner[index] !== undefined) {
      throw new Error(`GPU ${node.nodeId}#${index} is not free for ${allocation.kind} ${allocation.key}`);
    }
    node.gpuOwner[index] = allocation;
  }
  node.freeGpus -= allocation.gpus;
  node.allocations.add(allocation);
  addUsage(state, allocation.tenantId, allocation.gpuModel, allocation.gpus);
  if (allocation.leaseEpoch > state.lastLeaseEpoch) state.lastLeaseEpoch = allocation.leaseEpoch;
}

export function release(state: SchedulerState, allocation: Allocation): void {
  const node = allocation.node;
  if (!node.allocations.delete(allocation)) return;
  for (const index of allocation.gpuIndices) {
    if (node.gpuOwner[index] === allocation) node.gpuOwner[index] = undefined;
  }
  node.freeGpus += allocation.gpus;
  addUsage(state, allocation.tenantId, allocation.gpuModel, -allocation.gpus);
  state.unstarted.delete(allocation);
}

/** Adds the GPU-ms a sub-task attempt ran until `endMs` to its job's observed total. */
export function observe(allocation: Allocation, endMs: number): void {
  const subtask = allocation.subtask;
  if (!subtask) return;
  const startMs = allocation.startedAtMs ?? allocation.placedAtMs;
  if (endMs > startMs) subtask.job.gpuMsObserved += gpuMs(allocation.gpus, startMs, endMs);
}

export function rememberStop(state: SchedulerState, stop: SchedulerState['recentStops'][number]): void {
  state.recentStops.push(stop);
  if (state.recentStops.length > RECENT_STOPS_MAX) state.recentStops.splice(0, state.recentStops.length - RECENT_STOPS_MAX);
}
