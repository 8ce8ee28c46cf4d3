import { z } from 'zod';
import type { Allocation, NodeState } from '../placement/scheduler.state';

/**
 * The fleet as the console shows it: each node with its state and, per GPU index, who holds it.
 * Built from the scheduler's fold (the same state GET /v1/nodes reads) and the last heartbeat
 * each node's subject holds. Pure: the shell reads the heartbeats.
 */
const count = z.number().int().nonnegative();

export const fleetHolderSchema = z.object({
  kind: z.enum(['subtask', 'lease']),
  tenantId: z.string(),
  jobId: z.string().nullable().describe('The job of a sub-task; null for a lease'),
  subtaskId: z.string().nullable().describe('null for a lease'),
  leaseId: z.string().nullable().describe('The lease holding the GPU; null for a sub-task'),
  attempt: count,
  since: z.string().describe('When the sub-task started (placed, until it reports started) or the lease was granted, ISO 8601'),
});

export const fleetResponse = z.object({
  nodes: z.array(
    z.object({
      nodeId: z.string(),
      gpuModel: z.string(),
      state: z.enum(['healthy', 'draining', 'drained', 'lost']).describe('healthy: takes placements; draining: drained with work still running; drained: drained and empty; lost: missed its heartbeats'),
      lastHeartbeat: z.string().nullable().describe('When the log last stored a heartbeat of the node (null: none kept, heartbeats are kept 24 h)'),
      gpuCount: count,
      freeGpus: count,
      labels: z.record(z.string(), z.string()),
      gpus: z.array(z.object({ index: count, holder: fleetHolderSchema.nullable() })),
    }),
  ),
});

export type FleetView = z.output<typeof fleetResponse>;
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
