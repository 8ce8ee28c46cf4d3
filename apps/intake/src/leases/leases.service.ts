import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { deriveId, nameId, newEntityId, type EventData } from '@fastgpu/contracts';
import type { Principal } from '@fastgpu/auth';
import { ApiError, notFound, unprocessable } from '@fastgpu/http';
import type { EventPublisher } from '@fastgpu/messaging';
import { ProjectionHost } from '@fastgpu/platform';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import { leasesProjection } from './leases.projection';
import type { LeaseView, RequestLeaseBody } from './leases.schema';

/** How long a request waits for the scheduler's feasibility answer before accepting anyway. */
const FEASIBILITY_TIMEOUT_MS = 1000;
/** How long a write waits for the read model, so a GET right after it finds the change. */
const READ_MODEL_WAIT_MS = 3000;
/** Poll interval while a POST waits for the grant (bounded by the request's waitMs). */
const GRANT_POLL_MS = 50;

interface LeaseRow {
  lease_id: string;
  tenant_id: string;
  project_id: string;
  gpu_models: unknown;
  gpus: number;
  capacity_type: string;
  priority_class: string;
  state: LeaseView['state'];
  node_id: string | null;
  gpu_model: string | null;
  gpu_indices: unknown;
  lease_epoch: number | null;
  requested_at: Date | string;
  granted_at: Date | string | null;
  released_at: Date | string | null;
  release_reason: string | null;
}

const json = <T>(value: unknown): T => (typeof value === 'string' ? (JSON.parse(value) as T) : (value as T));
const iso = (value: Date | string | null): string | null => (value ? new Date(value).toISOString() : null);

/**
 * Interactive GPU leases (the seed's allocate_gpus / release_gpus): a request is a LeaseRequested
 * event; the scheduler grants it when placed (LeaseGranted) and releases it on request
 * (LeaseReleased). Billing runs per GPU-millisecond between grant and release.
 */
@Injectable()
export class LeasesService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly publisher: EventPublisher;
  private readonly host: ProjectionHost;

  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {
    this.publisher = publisherFor(runtime, 'intake');
    this.host = new ProjectionHost(runtime);
    this.host.add(leasesProjection);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.host.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.host.stop();
  }

  async request(principal: Principal, body: RequestLeaseBody, options: { idempotencyKey?: string; waitMs: number }): Promise<LeaseView> {
    const tenantId = principal.tenantId;
    if (!tenantId) throw new ApiError(403, 'forbidden', 'leases are requested with a tenant API key');
    if (body.priorityClass === 'preemptible' && body.capacityType && body.capacityType !== 'preemptible') throw unprocessable('a preemptible lease is billed as preemptible capacity', 'capacityType');
    if (options.idempotencyKey !== undefined && !/^[\x21-\x7e]{1,256}$/.test(options.idempotencyKey)) throw new ApiError(400, 'invalid_request', 'Idempotency-Key must be 1-256 visible ASCII characters', 'Idempotency-Key');
    const leaseId = options.idempotencyKey ? nameId(tenantId, 'lease', options.idempotencyKey) : newEntityId();
    const existing = options.idempotencyKey ? await this.row(leaseId) : undefined;
    if (!existing) {
      await this.checkFeasible(body);
      const requestedAt = this.runtime.clock.now().toISOString();
      const data: EventData<'LeaseRequested'> = {
        leaseId,
        tenantId,
        projectId: body.projectId,
        gpuModels: body.gpuModels,
        gpus: body.gpus,
        capacityType: body.capacityType ?? (body.priorityClass === 'preemptible' ? 'preemptible' : 'on-demand'),
        priorityClass: body.priorityClass,
        requestedAt,
      };
      const event = this.publisher.build('LeaseRequested', data, { id: deriveId(leaseId, 'LeaseRequested'), time: requestedAt, tenantId, correlationId: leaseId });
      const ack = await this.publisher.publish(event);
      await this.host.runner(leasesProjection.name).waitFor(ack.sequence, READ_MODEL_WAIT_MS);
    }
    const deadline = Date.now() + options.waitMs;
    for (;;) {
      const view = await this.get(principal, leaseId);
      if (view.state !== 'requested' || Date.now() >= deadline) return view;
      await new Promise((r) => setTimeout(r, GRANT_POLL_MS));
    }
  }

  async release(principal: Principal, leaseId: string): Promise<LeaseView> {
    const row = await this.visibleRow(principal, leaseId);
    if (row.state === 'released' || row.state === 'releasing') return this.view(row);
    const requestedAt = this.runtime.clock.now().toISOString();
    const event = this.publisher.build('LeaseReleaseRequested', { leaseId, tenantId: row.tenant_id, requestedAt }, { id: deriveId(leaseId, 'LeaseReleaseRequested'), time: requestedAt, tenantId: row.tenant_id, correlationId: leaseId });
    const ack = await this.publisher.publish(event);
    await this.host.runner(leasesProjection.name).waitFor(ack.sequence, READ_MODEL_WAIT_MS);
    return this.get(principal, leaseId);
  }

  async get(principal: Principal, leaseId: string): Promise<LeaseView> {
    return this.view(await this.visibleRow(principal, leaseId));
  }

  private async row(leaseId: string): Promise<LeaseRow | undefined> {
    return (await this.runtime.db.selectFrom('leases').selectAll().where('lease_id', '=', leaseId).executeTakeFirst()) as LeaseRow | undefined;
  }

  private async visibleRow(principal: Principal, leaseId: string): Promise<LeaseRow> {
    const row = await this.row(leaseId);
    // Another tenant's lease answers exactly like a missing one.
    if (!row || (principal.tenantId !== null && row.tenant_id !== principal.tenantId)) throw notFound(`lease ${leaseId}`);
    return row;
  }

  private view(row: LeaseRow): LeaseView {
    const grantedAt = iso(row.granted_at);
    const releasedAt = iso(row.released_at);
    const endMs = releasedAt ? Date.parse(releasedAt) : this.runtime.clock.now().getTime();
    const gpuMs = grantedAt ? Math.max(0, row.gpus * (endMs - Date.parse(grantedAt))) : 0;
    return {
      leaseId: row.lease_id,
      tenantId: row.tenant_id,
      projectId: row.project_id,
      state: row.state,
      gpus: row.gpus,
      gpuModels: json<string[]>(row.gpu_models),
      capacityType: row.capacity_type,
      priorityClass: row.priority_class,
      nodeId: row.node_id,
      gpuModel: row.gpu_model,
      gpuIndices: row.gpu_indices === null ? null : json<number[]>(row.gpu_indices),
      leaseEpoch: row.lease_epoch,
      requestedAt: iso(row.requested_at)!,
      grantedAt,
      releasedAt,
      releaseReason: row.release_reason,
      gpuMs,
    };
  }

  /** Asks the scheduler whether any node could ever hold this lease; no answer means accept. */
  private async checkFeasible(body: RequestLeaseBody): Promise<void> {
    let reply;
    try {
      reply = await this.runtime.bus.nc.request(this.runtime.bus.topology.subjects.service('scheduler', 'feasibility'), JSON.stringify({ gpuModels: body.gpuModels, gpusPerSubtask: body.gpus, subtaskCount: 1, gang: false }), { timeout: FEASIBILITY_TIMEOUT_MS });
    } catch {
      return;
    }
    const answer = reply.json<{ feasible?: boolean; reason?: string; field?: string }>();
    if (answer.feasible === false) throw unprocessable(answer.reason ?? 'no node could ever hold this lease', answer.field === 'gpusPerSubtask' ? 'gpus' : (answer.field ?? 'gpuModels'));
  }
}
