import { agentEpochAfter, registrationEndsRuns, type StoredEvent } from '@fastgpu/contracts';
import { release } from './allocations';
import { endAttempt } from './jobs.evolve';
import type { SchedulerEvent } from './placement.types';
import type { Allocation, NodeState, SchedulerState } from './scheduler.state';

/**
 * The fleet aggregate of the fold: nodes as they register (and re-register with another shape
 * or a restarted agent), are lost, recover, are drained and undrained. A node that is lost or
 * whose agent restarted interrupts everything it ran (a platform fault for its sub-tasks, a
 * release for its leases).
 */

export type FleetEventType = 'NodeRegistered' | 'NodeLost' | 'NodeRecovered' | 'NodeDrained' | 'NodeUndrained';
export type FleetEvent = Extract<SchedulerEvent, { type: FleetEventType }>;

/** Interrupts everything on a node (lost, or its agent restarted). */
function interruptNode(state: SchedulerState, node: NodeState, causeId: string, reason: string): void {
  for (const allocation of [...node.allocations]) {
    release(state, allocation);
    if (allocation.subtask) endAttempt(state, allocation.subtask, 'platform', undefined, causeId, reason);
    if (allocation.lease && allocation.lease.status !== 'released') {
      allocation.lease.status = 'releasing';
      allocation.lease.releaseReason = reason;
      state.attentionLeases.add(allocation.lease);
    }
  }
}

/** Folds one event of the fleet aggregate (the sequence check is the caller's: scheduler.evolve.ts). */
export function evolveFleet(state: SchedulerState, _stored: StoredEvent, e: FleetEvent): SchedulerState {
  switch (e.type) {
    case 'NodeRegistered': {
      const d = e.data;
      state.fleetVersion++;
      let node = state.nodes.get(d.nodeId);
      if (!node) {
        node = {
          ordinal: state.nodeList.length,
          nodeId: d.nodeId,
          gpuModel: d.gpuModel,
          gpuCount: d.gpuCount,
          gpuMemoryGb: d.gpuMemoryGb,
          labels: d.labels,
          agentEpoch: d.agentEpoch,
          status: 'ready',
          gpuOwner: new Array<Allocation | undefined>(d.gpuCount).fill(undefined),
          freeGpus: d.gpuCount,
          allocations: new Set(),
          schedulerSubjectSequence: 0,
        };
        state.nodes.set(d.nodeId, node);
        state.nodeList.push(node);
        return state;
      }
      // A restarted agent lost what it ran: its sub-tasks are interrupted by the platform (libs/contracts: only a new, higher epoch does it).
      if (registrationEndsRuns(node.agentEpoch, d.agentEpoch)) interruptNode(state, node, e.id, `node ${d.nodeId} agent restarted`);
      node.agentEpoch = agentEpochAfter(node.agentEpoch, d.agentEpoch);
      node.labels = d.labels;
      node.gpuMemoryGb = d.gpuMemoryGb;
      if (node.allocations.size === 0 && (d.gpuCount !== node.gpuCount || d.gpuModel !== node.gpuModel)) {
        node.gpuModel = d.gpuModel;
        node.gpuCount = d.gpuCount;
        node.gpuOwner = new Array<Allocation | undefined>(d.gpuCount).fill(undefined);
        node.freeGpus = d.gpuCount;
      }
      if (node.status === 'lost') node.status = 'ready';
      return state;
    }
    case 'NodeLost': {
      const node = state.nodes.get(e.data.nodeId);
      if (!node) return state;
      node.status = 'lost';
      interruptNode(state, node, e.id, `node ${node.nodeId} lost: ${e.data.reason}`);
      return state;
    }
    case 'NodeRecovered': {
      const node = state.nodes.get(e.data.nodeId);
      if (node && node.status === 'lost') node.status = 'ready';
      if (node) node.agentEpoch = agentEpochAfter(node.agentEpoch, e.data.agentEpoch);
      return state;
    }
    case 'NodeDrained': {
      const node = state.nodes.get(e.data.nodeId);
      if (node && node.status !== 'lost') node.status = 'drained';
      return state;
    }
    case 'NodeUndrained': {
      const node = state.nodes.get(e.data.nodeId);
      if (node && node.status === 'drained') node.status = 'ready';
      return state;
    }
    default: {
      const unreachable: never = e;
      void unreachable;
      return state;
    }
  }
}
