import { sql } from 'kysely';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { feasibilityReply, nameId, newEntityId, requestIdSchema, type DomainEvent, type EventData, type FeasibilityRequest } from '@fastgpu/contracts';
import { IdempotencyKeys, keyOwner, readIdempotencyKey, requestHash } from '../shared/idempotency';
import { findForTenant, type Principal } from '@fastgpu/auth';
import { foldEvents, handleCommand, JetStreamEventStream, type Decider } from '@fastgpu/eventsourcing';
import { ApiError, notFound, pageOf, unprocessable } from '@fastgpu/http';
import { gpuMs as gpuMsOf } from '@fastgpu/money';
import { ProjectionHost } from '@fastgpu/platform';
import { lastSequence } from '@fastgpu/messaging';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import { leaseDecider, leaseRequestRefusal, type LeaseCommand, type LeaseState } from './lease.decider';
import { leasesProjection } from './leases.projection';
import { LEASES_LIST, type LeaseView, type ListLeasesQuery, type RequestLeaseBody } from './leases.schema';

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
  private readonly store: JetStreamEventStream;
  private readonly decider: Decider<LeaseState, LeaseCommand, DomainEvent>;
  private readonly host: ProjectionHost;
  private readonly keys: IdempotencyKeys;
  private readonly logger = new Logger('intake.leases');

  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {
    const publisher = publisherFor(runtime, 'intake');
    this.store = new JetStreamEventStream(runtime.bus, publisher);
    this.decider = leaseDecider((type, data, meta) => publisher.build(type, data, meta));
    this.keys = new IdempotencyKeys(runtime);
    this.host = new ProjectionHost(runtime);
    this.host.add(leasesProjection);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.host.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.host.stop();
  }

  /**
   * Requests a lease. With an Idempotency-Key the lease id derives from it: a retry with the same
   * body answers that lease as it is now (publishing its request again if the first attempt never
   * did), another body answers 409 `idempotency_key_reused`.
   */
  async request(principal: Principal, body: RequestLeaseBody, options: { idempotencyKey?: string; waitMs: number }): Promise<LeaseView> {
    const tenantId = principal.tenantId;
    if (!tenantId) throw new ApiError(403, 'forbidden', 'leases are requested with a tenant API key');
    const idempotencyKey = readIdempotencyKey(options.idempotencyKey, { required: false });
    const refusal = leaseRequestRefusal(body);
    if (refusal) throw refusal;
    let leaseId = newEntityId();
    let requestedAt = this.runtime.clock.now();
    if (idempotencyKey !== undefined) {
      const owner = keyOwner(tenantId);
      const hash = requestHash(body);
      leaseId = nameId(tenantId, 'lease', idempotencyKey);
      const earlier = await this.keys.find(owner, 'lease', idempotencyKey, hash);
      if (earlier) requestedAt = earlier.createdAt;
      else {
        await this.checkFeasible(tenantId, body);
        const claimed = await this.keys.claim({ owner, scope: 'lease', key: idempotencyKey, requestHash: hash, resourceId: leaseId, createdAt: requestedAt });
        requestedAt = claimed.createdAt;
      }
    } else {
      await this.checkFeasible(tenantId, body);
    }
    // The lease's own history decides: requested already (a retry), nothing is published again.
    const decided = await handleCommand(this.store, this.decider, this.runtime.bus.topology.subjects.lease(leaseId), { kind: 'request', leaseId, tenantId, body, requestedAt: requestedAt.toISOString() });
    // What the log holds for this lease (decided now or by an earlier attempt).
    const requested = decided.state.requested;
    if (!requested) throw new Error(`lease ${leaseId}: no LeaseRequested after its request was decided`);
    await this.host.runner(leasesProjection.name).waitFor(decided.version, READ_MODEL_WAIT_MS);
    const deadline = Date.now() + options.waitMs;
    for (;;) {
      // The lease is in the log: a read model that has not caught up with it yet (lagging, or the
      // first attempt's publish stored after its client gave up) answers the lease as its
      // LeaseRequested says, never 404.
      const row = await this.ownRow(tenantId, leaseId);
      const view = row ? this.view(row) : this.requestedView(requested);
      if (view.state !== 'requested' || Date.now() >= deadline) return view;
      await new Promise((r) => setTimeout(r, GRANT_POLL_MS));
    }
  }

  private async ownRow(tenantId: string, leaseId: string): Promise<LeaseRow | undefined> {
    return (await this.runtime.db.selectFrom('leases').selectAll().where('lease_id', '=', leaseId).where('tenant_id', '=', tenantId).executeTakeFirst()) as LeaseRow | undefined;
  }

  /** A lease as its LeaseRequested records it, before the read model holds its row. */
  private requestedView(requested: EventData<'LeaseRequested'>): LeaseView {
    return {
      leaseId: requested.leaseId,
      tenantId: requested.tenantId,
      projectId: requested.projectId,
      state: 'requested',
      gpus: requested.gpus,
      gpuModels: requested.gpuModels,
      capacityType: requested.capacityType,
      priorityClass: requested.priorityClass,
      nodeId: null,
      gpuModel: null,
      gpuIndices: null,
      leaseEpoch: null,
      requestedAt: new Date(requested.requestedAt).toISOString(),
      grantedAt: null,
      releasedAt: null,
      releaseReason: null,
      gpuMs: 0,
    };
  }

  /**
   * Releases a lease. The lease's own history decides, not the read model: a lease whose
   * LeaseRequested the projection has not folded yet (lagging under faults, or a DELETE right after
   * the POST) is released all the same, like a retried POST answers from the log. An unknown id or
   * another tenant's lease is 404 (the decider's). Released before its grant, the scheduler closes
   * the grant at once should one still arrive (leases.evolve.ts).
   */
  async release(principal: Principal, leaseId: string): Promise<LeaseView> {
    const tenantId = principal.tenantId;
    // An id that cannot exist is missing (and never reaches the database: PostgreSQL refuses U+0000).
    if (!tenantId || !requestIdSchema.safeParse(leaseId).success) throw notFound(`lease ${leaseId}`);
    const row = await this.ownRow(tenantId, leaseId);
    if (row && (row.state === 'released' || row.state === 'releasing')) return this.view(row);
    const decided = await handleCommand(this.store, this.decider, this.runtime.bus.topology.subjects.lease(leaseId), { kind: 'release', leaseId, tenantId, requestedAt: this.runtime.clock.now().toISOString() });
    await this.host.runner(leasesProjection.name).waitFor(decided.version, READ_MODEL_WAIT_MS);
    const after = await this.ownRow(tenantId, leaseId);
    if (after) return this.view(after);
    // The read model still lags: the release is recorded; the lease answers as asked to be released.
    const requested = decided.state.requested;
    if (!requested) throw notFound(`lease ${leaseId}`);
    return { ...this.requestedView(requested), state: 'releasing' };
  }

  /**
   * A lease as the read model shows it. One the read model has not folded yet (a GET right after
   * the POST while the projection lags) answers from its own history, as a retried POST and a
   * DELETE do (read-your-writes), never 404: `requested`, or `releasing` once asked to be released.
   * Another tenant's lease and an unknown id are 404 both ways (findForTenant: the same 404).
   */
  async get(principal: Principal, leaseId: string): Promise<LeaseView> {
    // An id that cannot exist is missing (and never reaches the database: PostgreSQL refuses U+0000).
    if (!requestIdSchema.safeParse(leaseId).success) throw notFound(`lease ${leaseId}`);
    return findForTenant(principal, `lease ${leaseId}`, async (scope) => {
      let query = this.runtime.db.selectFrom('leases').selectAll().where('lease_id', '=', leaseId);
      if (scope !== null) query = query.where('tenant_id', '=', scope);
      const row = (await query.executeTakeFirst()) as LeaseRow | undefined;
      return row ? this.view(row) : this.historyView(leaseId, scope);
    });
  }

  /**
   * The leases the caller may see, newest first, a page at a time: a tenant key its own tenant's
   * only (whatever `tenantId` says), a platform key one tenant's or all. The read model first
   * catches up with the log, so a lease just requested is listed.
   */
  async list(principal: Principal, query: ListLeasesQuery): Promise<{ leases: LeaseView[]; nextCursor: string | null }> {
    const tenantId = principal.tenantId ?? query.tenantId;
    const last = await lastSequence(this.runtime.bus, this.runtime.bus.topology.streams.events);
    await this.host.runner(leasesProjection.name).waitFor(last, READ_MODEL_WAIT_MS);
    let q = this.runtime.db
      .selectFrom('leases')
      .selectAll()
      .orderBy('requested_at', 'desc')
      .orderBy(sql`lease_id COLLATE "C"`, 'desc')
      .limit(query.limit + 1);
    if (tenantId) q = q.where('tenant_id', '=', tenantId);
    if (query.state) q = q.where('state', '=', query.state);
    if (query.cursor) q = q.where(sql<boolean>`(requested_at, lease_id COLLATE "C") < (${new Date(query.cursor.time).toISOString()}::timestamptz, ${query.cursor.id})`);
    const page = pageOf((await q.execute()) as LeaseRow[], query.limit, LEASES_LIST, (row) => ({ time: new Date(row.requested_at).getTime(), id: row.lease_id }));
    return { leases: page.rows.map((row) => this.view(row)), nextCursor: page.nextCursor };
  }

  /** The lease as its own events in the log say, for a caller that sees `scope` (null: every tenant); undefined without a request. */
  private async historyView(leaseId: string, scope: string | null): Promise<LeaseView | undefined> {
    const { events } = await this.store.read(this.runtime.bus.topology.subjects.lease(leaseId));
    const { requested, releaseRequested } = foldEvents(this.decider, events);
    if (!requested || (scope !== null && requested.tenantId !== scope)) return undefined;
    return { ...this.requestedView(requested), state: releaseRequested ? 'releasing' : 'requested' };
  }

  private view(row: LeaseRow): LeaseView {
    const grantedAt = iso(row.granted_at);
    const releasedAt = iso(row.released_at);
    const endMs = releasedAt ? Date.parse(releasedAt) : this.runtime.clock.now().getTime();
    // A lease read just before its grant's own clock reading counts 0, never a negative time.
    const gpuMs = grantedAt ? gpuMsOf(row.gpus, Date.parse(grantedAt), Math.max(endMs, Date.parse(grantedAt))) : 0;
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

  /** Asks the scheduler whether any node could ever hold this lease; no valid answer means accept. */
  private async checkFeasible(tenantId: string, body: RequestLeaseBody): Promise<void> {
    const request: FeasibilityRequest = { tenantId, gpuModels: body.gpuModels, gpusPerSubtask: body.gpus, subtaskCount: 1, gang: false };
    let reply: unknown;
    try {
      reply = (await this.runtime.bus.nc.request(this.runtime.bus.topology.subjects.service('scheduler', 'feasibility'), JSON.stringify(request), { timeout: FEASIBILITY_TIMEOUT_MS })).json();
    } catch {
      return;
    }
    const parsed = feasibilityReply.safeParse(reply);
    if (!parsed.success || 'error' in parsed.data) {
      this.logger.warn(`feasibility: no verdict from the scheduler (${parsed.success ? (parsed.data as { error: { message: string } }).error.message : 'malformed reply'}); accepting`);
      return;
    }
    const verdict = parsed.data;
    if (!verdict.feasible) throw unprocessable(verdict.reason, verdict.field === 'gpusPerSubtask' ? 'gpus' : verdict.field);
  }
}
