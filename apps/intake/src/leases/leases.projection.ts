import type { EventType, StoredEvent } from '@fastgpu/contracts';
import type { Projection, ProjectionContext, ProjectionTransaction } from '@fastgpu/messaging';

/**
 * The leases read model behind GET /v1/leases/{id}: requested → granted → releasing → released,
 * folded from intake's lease events and the scheduler's grant and release. Rebuildable: rows are
 * a function of the log only.
 */
const types: EventType[] = ['LeaseRequested', 'LeaseGranted', 'LeaseReleaseRequested', 'LeaseReleased'];

async function applyOne(trx: ProjectionTransaction, stored: StoredEvent, ctx: ProjectionContext): Promise<void> {
  const leases = ctx.table('leases');
  const { event, sequence } = stored;
  switch (event.type) {
    case 'LeaseRequested': {
      const d = event.data;
      await trx
        .insertInto(leases)
        .values({
          lease_id: d.leaseId,
          tenant_id: d.tenantId,
          project_id: d.projectId,
          gpu_models: JSON.stringify(d.gpuModels),
          gpus: d.gpus,
          capacity_type: d.capacityType,
          priority_class: d.priorityClass,
          state: 'requested',
          requested_at: new Date(d.requestedAt),
          last_sequence: sequence,
        })
        .onConflict((oc) => oc.column('lease_id').doNothing())
        .execute();
      return;
    }
    case 'LeaseGranted': {
      const d = event.data;
      await trx
        .updateTable(leases)
        .set({ state: 'granted', node_id: d.nodeId, gpu_model: d.gpuModel, gpu_indices: JSON.stringify(d.gpuIndices), lease_epoch: d.leaseEpoch, granted_at: new Date(d.grantedAt), last_sequence: sequence })
        .where('lease_id', '=', d.leaseId)
        .where('state', 'in', ['requested', 'releasing'])
        .execute();
      return;
    }
    case 'LeaseReleaseRequested': {
      const d = event.data;
      // Released before the grant: nothing was held, the lease simply ends.
      await trx.updateTable(leases).set({ state: 'released', release_requested_at: new Date(d.requestedAt), released_at: new Date(d.requestedAt), release_reason: 'released before it was granted', last_sequence: sequence }).where('lease_id', '=', d.leaseId).where('tenant_id', '=', d.tenantId).where('state', '=', 'requested').execute();
      await trx.updateTable(leases).set({ state: 'releasing', release_requested_at: new Date(d.requestedAt), last_sequence: sequence }).where('lease_id', '=', d.leaseId).where('tenant_id', '=', d.tenantId).where('state', '=', 'granted').execute();
      return;
    }
    case 'LeaseReleased': {
      const d = event.data;
      await trx.updateTable(leases).set({ state: 'released', released_at: new Date(d.releasedAt), release_reason: d.reason, last_sequence: sequence }).where('lease_id', '=', d.leaseId).execute();
      return;
    }
    default:
      return;
  }
}

export const leasesProjection: Projection = {
  name: 'intake-leases',
  types: new Set(types),
  async apply(trx, events, ctx) {
    for (const stored of events) await applyOne(trx, stored, ctx);
  },
};

export const leasesProjectionTables = ['leases'] as const;
