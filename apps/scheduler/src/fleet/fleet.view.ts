import type { z } from 'zod';
import type { fleetHolderSchema, FleetView } from '@fastgpu/contracts';
import type { Allocation, NodeState } from '../placement/scheduler.state';

export { fleetHolderSchema, fleetResponse, type FleetView } from '@fastgpu/contracts';

/**
 * The fleet as the console shows it: each node with its state and, per GPU index, who holds it.
 * Built from the scheduler's fold (the same state GET /v1/nodes reads) and the last heartbeat
 * each node's subject holds (the answer's schema is libs/contracts console-views.ts). Pure: the
 * shell reads the heartbeats.
 */
export type FleetNodeState = FleetView['nodes'][number]['state'];

export function fleetNodeState(node: Pick<NodeState, 'status' | 'allocations'>): FleetNodeState {
  switch (node.status) {
    case 'ready':
      return 'healthy';
    case 'drained':
      return node.allocations.size > 0 ? 'draining' : 'drained';
    case 'lost':
      return 'lost';
    default: {
      const unreachable: never = node.status;
      return unreachable;
    }
  }
}

function holderOf(allocation: Allocation): z.output<typeof fleetHolderSchema> {
  const subtask = allocation.kind === 'subtask' ? allocation.subtask : undefined;
  return {
    kind: allocation.kind,
    tenantId: allocation.tenantId,
    jobId: subtask?.job.jobId ?? null,
    subtaskId: allocation.kind === 'subtask' ? allocation.key : null,
    leaseId: allocation.kind === 'lease' ? allocation.key : null,
    attempt: allocation.attempt,
    since: new Date(allocation.startedAtMs ?? allocation.placedAtMs).toISOString(),
  };
}

/** The fleet view of the folded nodes, given each node's last heartbeat (epoch ms) where one is kept. */
export function fleetView(nodes: readonly NodeState[], lastHeartbeatMs: ReadonlyMap<string, number>): FleetView {
  return {
    nodes: nodes.map((node) => {
      const heartbeat = lastHeartbeatMs.get(node.nodeId);
      return {
        nodeId: node.nodeId,
        gpuModel: node.gpuModel,
        state: fleetNodeState(node),
        lastHeartbeat: heartbeat === undefined ? null : new Date(heartbeat).toISOString(),
        gpuCount: node.gpuCount,
        freeGpus: node.freeGpus,
        labels: node.labels,
        gpus: Array.from({ length: node.gpuCount }, (_, index) => {
          const owner = node.gpuOwner[index];
          return { index, holder: owner ? holderOf(owner) : null };
        }),
      };
    }),
  };
}
