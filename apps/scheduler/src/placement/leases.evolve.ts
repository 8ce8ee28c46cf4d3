import type { StoredEvent } from '@fastgpu/contracts';
import { instantMs } from '@fastgpu/money';
import { allocate, release, rememberStop } from './allocations';
import type { SchedulerEvent } from './placement.types';
import { enqueue, markQueueDirty } from './queues';
import { CLASS_RANK, type Allocation, type LeaseState, type SchedulerState } from './scheduler.state';

/**
 * The leases aggregate of the fold (an interactive allocation of GPUs a tenant holds until it
 * releases it: "lease" in docs/glossary.md): requested, granted on a node, asked to be
 * released, released. A release
 * asked while the grant is in flight is kept as a tombstone so the late grant is closed at once.
 */

export type LeaseEventType = 'LeaseRequested' | 'LeaseReleaseRequested' | 'LeaseGranted' | 'LeaseReleased';
export type LeaseEvent = Extract<SchedulerEvent, { type: LeaseEventType }>;

/** Folds one event of the leases aggregate (the sequence check is the caller's: scheduler.evolve.ts). */
export function evolveLeases(state: SchedulerState, stored: StoredEvent, e: LeaseEvent): SchedulerState {
  const { sequence } = stored;
  switch (e.type) {
    case 'LeaseRequested': {
      const d = e.data;
      if (state.leases.has(d.leaseId)) return state;
      const lease: LeaseState = {
        leaseId: d.leaseId,
        tenantId: d.tenantId,
        projectId: d.projectId,
        eventId: e.id,
        gpuModels: d.gpuModels,
        gpus: d.gpus,
        capacityType: d.capacityType,
        classRank: CLASS_RANK[d.priorityClass],
        requestedAtMs: instantMs(d.requestedAt),
        sequence,
        status: 'pending',
      };
      state.leases.set(d.leaseId, lease);
      enqueue(state, { kind: 'lease', lease }, lease.classRank, lease.tenantId);
      return state;
    }
    case 'LeaseReleaseRequested': {
      const lease = state.leases.get(e.data.leaseId);
      if (!lease || lease.tenantId !== e.data.tenantId) return state;
      if (lease.status === 'pending') {
        // Kept as a tombstone: a grant decided before this release may still arrive and must be closed.
        lease.status = 'released';
        lease.releaseReason = 'released before it was granted';
        markQueueDirty(state, lease.classRank, lease.tenantId);
      } else if (lease.status === 'granted') {
        lease.status = 'releasing';
        lease.releaseReason = 'released by the tenant';
        state.attentionLeases.add(lease);
      }
      return state;
    }
    case 'LeaseGranted': {
      const d = e.data;
      const node = state.nodes.get(d.nodeId);
      if (node) node.schedulerSubjectSequence = sequence;
      const lease = state.leases.get(d.leaseId);
      if (!node || !lease || (lease.status !== 'pending' && !(lease.status === 'released' && !lease.allocation))) return state;
      const allocation: Allocation = {
        kind: 'lease',
        key: d.leaseId,
        tenantId: d.tenantId,
        node,
        gpuModel: d.gpuModel,
        gpus: d.gpus,
        gpuIndices: d.gpuIndices,
        leaseEpoch: d.leaseEpoch,
        attempt: 1,
        classRank: lease.classRank,
        priority: 0,
        preemptible: lease.classRank === CLASS_RANK.preemptible,
        placedAtMs: instantMs(d.grantedAt),
        eventId: e.id,
        lease,
      };
      allocate(state, allocation);
      lease.allocation = allocation;
      if (lease.status === 'released') {
        // The release was asked while the grant was in flight: give the GPUs back at once.
        lease.status = 'releasing';
        state.attentionLeases.add(lease);
        return state;
      }
      lease.status = 'granted';
      markQueueDirty(state, lease.classRank, lease.tenantId);
      return state;
    }
    case 'LeaseReleased': {
      const d = e.data;
      const node = state.nodes.get(d.nodeId);
      if (node) node.schedulerSubjectSequence = sequence;
      const lease = state.leases.get(d.leaseId);
      if (!lease) return state;
      if (lease.allocation) release(state, lease.allocation);
      lease.allocation = undefined;
      lease.status = 'released';
      rememberStop(state, { nodeId: d.nodeId, command: { kind: 'DetachLease', commandId: e.id, leaseId: d.leaseId, leaseEpoch: d.leaseEpoch, reason: d.reason, issuedAt: d.releasedAt } });
      state.attentionLeases.delete(lease);
      state.leases.delete(d.leaseId);
      return state;
    }
    default: {
      const unreachable: never = e;
      void unreachable;
      return state;
    }
  }
}
