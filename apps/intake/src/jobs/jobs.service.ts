import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { deriveId, nameId, newEntityId, type DomainEvent, type EventData } from '@fastgpu/contracts';
import type { Principal } from '@fastgpu/auth';
import { ApiError, conflict, notFound, unprocessable } from '@fastgpu/http';
import { lastSequence, type EventPublisher, type Published } from '@fastgpu/messaging';
import { publisherFor, RUNTIME, TickBatcher, type Runtime } from '@fastgpu/runtime';
import { IntakeProjections } from '../shared/intake-projections';
import { divideJob, DivisionError } from './job-division';
import type { JobView, SubmitJobRequest } from './jobs.schema';

/** How long intake waits for the scheduler's feasibility answer before accepting anyway. */
const FEASIBILITY_TIMEOUT_MS = 1000;
const EXPLAIN_TIMEOUT_MS = 300;
const FEASIBILITY_CACHE_MS = 2000;
const FEASIBILITY_CACHE_ENTRIES_MAX = 10_000;

interface FeasibilityAnswer {
  feasible?: boolean;
  reason?: string;
  field?: string;
}
/** How long a submission waits for the read model, so a GET right after a POST finds the job. */
const READ_MODEL_WAIT_MS = 3000;

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

const iso = (value: Date | string | null | undefined): string | null => (value ? new Date(value).toISOString() : null);

interface KeyClaim {
  tenantId: string;
  key: string;
  requestHash: string;
  jobId: string;
  createdAt: Date;
}

/** A `jobs` read-model row as the API shows it (without spec and sub-tasks). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function jobSummary(row: any): Omit<JobView, 'subtasks' | 'spec'> {
  return {
    jobId: row.job_id,
    tenantId: row.tenant_id,
    projectId: row.project_id,
    name: row.name,
    state: row.state,
    reason: row.outcome_reason,
    submittedAt: iso(row.submitted_at)!,
    completedAt: iso(row.completed_at),
    gpuMsObserved: row.gpu_ms_observed,
  };
}

/**
 * Job submission: validate, divide into sub-tasks, append JobSubmitted + SubtaskCreated to the
 * log. The same Idempotency-Key (per tenant) always names the same job: its id and event ids
 * derive from the key, so a retry republishes identical events that the bus drops.
 */
@Injectable()
export class JobsService {
  private readonly publisher: EventPublisher;
  private readonly feasibility = new Map<string, { expiresAtMs: number; answer: Promise<FeasibilityAnswer> }>();
  /** The submissions of one event-loop turn claim their Idempotency-Keys in one INSERT. */
  private readonly keyClaims = new TickBatcher<KeyClaim, boolean>((claims) => this.claimKeys(claims));
  /** ...and publish their events together, so the bus gets one socket write for all of them. */
  private readonly publishes = new TickBatcher<DomainEvent[], Published[]>((groups) => groups.map((events) => this.publisher.publishAll(events)));

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(IntakeProjections) private readonly projections: IntakeProjections,
  ) {
    this.publisher = publisherFor(runtime, 'intake');
  }

  async submit(principal: Principal, request: SubmitJobRequest, idempotencyKey?: string): Promise<{ job: JobView; created: boolean }> {
    const tenantId = principal.tenantId;
    if (!tenantId) throw new ApiError(403, 'forbidden', 'jobs are submitted with a tenant API key');
    const preemptible = request.preemptible ?? request.priorityClass === 'preemptible';
    if (request.priorityClass === 'preemptible' && !preemptible) throw unprocessable('a job of the preemptible class cannot be marked non-preemptible', 'preemptible');
    if (request.gangTopologyKey && !request.gang) throw unprocessable('gangTopologyKey applies to gang jobs only', 'gangTopologyKey');
    if (request.deadline && Date.parse(request.deadline) <= this.runtime.clock.now().getTime()) throw unprocessable('deadline is in the past', 'deadline');
    const runtimeMs = request.runtimeSeconds * 1000;
    let planned;
    try {
      planned = divideJob({ gpusPerSubtask: request.gpusPerSubtask, runtimeMs, subtaskCount: request.subtaskCount, totalGpuHours: request.totalGpuHours });
    } catch (error) {
      if (error instanceof DivisionError) throw unprocessable(error.message, error.field);
      throw error;
    }

    const requestHash = createHash('sha256').update(canonicalJson(request)).digest('hex');
    let jobId = newEntityId();
    let submittedAt = this.runtime.clock.now().toISOString();
    let created = true;
    if (idempotencyKey !== undefined) {
      if (!/^[\x21-\x7e]{1,256}$/.test(idempotencyKey)) throw new ApiError(400, 'invalid_request', 'Idempotency-Key must be 1-256 visible ASCII characters', 'Idempotency-Key');
      jobId = nameId(tenantId, 'job', idempotencyKey);
      const claimed = await this.keyClaims.add({ tenantId, key: idempotencyKey, requestHash, jobId, createdAt: new Date(submittedAt) });
      if (!claimed) {
        const existing = await this.runtime.db.selectFrom('idempotency_keys').selectAll().where('tenant_id', '=', tenantId).where('key', '=', idempotencyKey).executeTakeFirstOrThrow();
        if (existing.request_hash !== requestHash) throw conflict('Idempotency-Key was already used with a different request body', 'Idempotency-Key');
        created = false;
        submittedAt = new Date(existing.created_at).toISOString();
      }
    }

    const submitted: EventData<'JobSubmitted'> = {
      jobId,
      tenantId,
      projectId: request.projectId,
      gpuModels: request.gpuModels,
      gpusPerSubtask: request.gpusPerSubtask,
      subtaskCount: planned.length,
      runtimeMs,
      priorityClass: request.priorityClass,
      priority: request.priority,
      preemptible,
      gang: request.gang,
      capacityType: request.capacityType ?? (preemptible ? 'preemptible' : 'on-demand'),
      dependsOn: request.dependsOn,
      submittedAt,
      ...(request.name ? { name: request.name } : {}),
      ...(request.gangTopologyKey ? { gangTopologyKey: request.gangTopologyKey } : {}),
      ...(request.deadline ? { deadline: new Date(request.deadline).toISOString() } : {}),
      ...(request.retryPolicy ? { retryPolicy: request.retryPolicy } : {}),
      ...(idempotencyKey ? { idempotencyKey } : {}),
    };
    if (created) await this.checkFeasible(submitted);

    const meta = (discriminator: string) => ({ id: deriveId(jobId, discriminator), time: submittedAt, tenantId, correlationId: jobId });
    const events: DomainEvent[] = [this.publisher.build('JobSubmitted', submitted, meta('JobSubmitted'))];
    for (const subtask of planned) {
      events.push(
        this.publisher.build(
          'SubtaskCreated',
          { jobId, tenantId, subtaskId: `${jobId}-${subtask.index}`, index: subtask.index, gpus: subtask.gpus, gpuModels: request.gpuModels, runtimeMs: subtask.runtimeMs },
          { ...meta(`SubtaskCreated:${subtask.index}`), causationId: events[0]!.id },
        ),
      );
    }
    const acks = await this.publishes.add(events);
    if (!created) {
      // A retry answers with the job as it is now (it may have run since).
      await this.projections.waitFor('intake-jobs', Math.max(...acks.map((a) => a.sequence)), READ_MODEL_WAIT_MS);
      return { job: await this.get(principal, jobId, { explain: false }), created };
    }
    // A new job is exactly what its events say; the read model catches up on its own, and a GET
    // that does not find it yet waits for it (see get), so the POST does not wait here.
    const job: JobView = {
      jobId,
      tenantId,
      projectId: submitted.projectId,
      name: submitted.name ?? null,
      state: 'pending',
      reason: null,
      submittedAt,
      completedAt: null,
      gpuMsObserved: null,
      spec: submitted,
      subtasks: planned.map((p) => ({ subtaskId: `${jobId}-${p.index}`, index: p.index, gpus: p.gpus, runtimeMs: p.runtimeMs, state: 'pending', attempt: 0, nodeId: null, gpuModel: null, placedAt: null, startedAt: null, endedAt: null, exitCode: null, reason: null })),
    };
    return { job, created };
  }

  /**
   * One multi-row INSERT for a batch of key claims: true for each claim that inserted its key,
   * false when the key was already there (a retry, or an earlier claim in this same batch).
   */
  private claimKeys(claims: readonly KeyClaim[]): Array<Promise<boolean>> {
    const firstOfKey = new Map<string, number>();
    claims.forEach((claim, i) => {
      const name = `${claim.tenantId}\u0000${claim.key}`;
      if (!firstOfKey.has(name)) firstOfKey.set(name, i);
    });
    const rows = [...firstOfKey.values()].map((i) => claims[i]!);
    const inserted = this.runtime.db
      .insertInto('idempotency_keys')
      .values(rows.map((c) => ({ tenant_id: c.tenantId, key: c.key, request_hash: c.requestHash, job_id: c.jobId, created_at: c.createdAt })))
      .onConflict((oc) => oc.columns(['tenant_id', 'key']).doNothing())
      .returning(['tenant_id', 'key'])
      .execute()
      .then((returned) => new Set(returned.map((r) => `${r.tenant_id}\u0000${r.key}`)));
    return claims.map((claim, i) => {
      const name = `${claim.tenantId}\u0000${claim.key}`;
      return firstOfKey.get(name) === i ? inserted.then((names) => names.has(name)) : inserted.then(() => false);
    });
  }

  /** Read-your-writes for a job id not in the read model yet: wait until it has caught up with the log. */
  private async catchUp(): Promise<void> {
    const last = await lastSequence(this.runtime.bus, this.runtime.bus.topology.streams.events);
    await this.projections.waitFor('intake-jobs', last, READ_MODEL_WAIT_MS);
  }

  /**
   * Asks the scheduler whether any node could ever run this job; no answer means accept.
   * Feasibility depends only on the job's shape and the fleet, which changes slowly, so answers
   * are kept per shape for FEASIBILITY_CACHE_MS (a burst of like jobs asks once).
   */
  private async checkFeasible(job: EventData<'JobSubmitted'>): Promise<void> {
    const shape = `${job.gpuModels.join(',')}|${job.gpusPerSubtask}|${job.gang ? job.subtaskCount : 0}|${job.gangTopologyKey ?? ''}|${job.priorityClass}`;
    const nowMs = Date.now();
    let cached = this.feasibility.get(shape);
    if (!cached || cached.expiresAtMs <= nowMs) {
      cached = { expiresAtMs: nowMs + FEASIBILITY_CACHE_MS, answer: this.askFeasibility(job) };
      if (this.feasibility.size >= FEASIBILITY_CACHE_ENTRIES_MAX) this.feasibility.clear();
      this.feasibility.set(shape, cached);
    }
    const answer = await cached.answer;
    if (answer.feasible === false) throw unprocessable(answer.reason ?? 'no node could ever run this job', answer.field ?? 'gpuModels');
  }

  private async askFeasibility(job: EventData<'JobSubmitted'>): Promise<FeasibilityAnswer> {
    try {
      const reply = await this.runtime.bus.nc.request(this.runtime.bus.topology.subjects.service('scheduler', 'feasibility'), JSON.stringify(job), { timeout: FEASIBILITY_TIMEOUT_MS });
      return reply.json<FeasibilityAnswer>();
    } catch {
      return { feasible: true };
    }
  }

  async get(principal: Principal, jobId: string, options: { explain?: boolean } = {}): Promise<JobView> {
    let row = await this.runtime.db.selectFrom('jobs').selectAll().where('job_id', '=', jobId).executeTakeFirst();
    if (!row) {
      await this.catchUp();
      row = await this.runtime.db.selectFrom('jobs').selectAll().where('job_id', '=', jobId).executeTakeFirst();
    }
    // Another tenant's job answers exactly like a missing one.
    if (!row || (principal.tenantId !== null && row.tenant_id !== principal.tenantId)) throw notFound(`job ${jobId}`);
    const subtasks = await this.runtime.db.selectFrom('subtasks').selectAll().where('job_id', '=', jobId).orderBy('index').execute();
    const view: JobView = {
      ...jobSummary(row),
      spec: typeof row.spec === 'string' ? JSON.parse(row.spec) : row.spec,
      subtasks: subtasks.map((s) => ({
        subtaskId: s.subtask_id,
        index: s.index,
        gpus: s.gpus,
        runtimeMs: s.runtime_ms,
        state: s.state,
        attempt: s.attempt,
        nodeId: s.node_id,
        gpuModel: s.gpu_model,
        placedAt: iso(s.placed_at),
        startedAt: iso(s.started_at),
        endedAt: iso(s.ended_at),
        exitCode: s.exit_code,
        reason: s.reason,
      })),
    };
    if (options.explain !== false && (view.state === 'pending' || view.state === 'running')) {
      const scheduling = await this.explain(jobId, row.tenant_id);
      if (scheduling) view.scheduling = scheduling;
    }
    return view;
  }

  private async explain(jobId: string, tenantId: string): Promise<Record<string, unknown> | undefined> {
    try {
      const reply = await this.runtime.bus.nc.request(this.runtime.bus.topology.subjects.service('scheduler', 'explain'), JSON.stringify({ jobId, tenantId }), { timeout: EXPLAIN_TIMEOUT_MS });
      return reply.json<Record<string, unknown>>();
    } catch {
      return undefined;
    }
  }

  async list(principal: Principal, query: { state?: string; limit: number; tenantId?: string }): Promise<Array<Omit<JobView, 'subtasks' | 'spec'>>> {
    const tenantId = principal.tenantId ?? query.tenantId;
    // A list right after a submission includes it: the read model first catches up with the log.
    await this.catchUp();
    let q = this.runtime.db.selectFrom('jobs').selectAll().orderBy('submitted_at', 'desc').limit(query.limit);
    if (tenantId) q = q.where('tenant_id', '=', tenantId);
    if (query.state) q = q.where('state', '=', query.state);
    return (await q.execute()).map(jobSummary);
  }

  async cancel(principal: Principal, jobId: string, reason: string): Promise<JobView> {
    const job = await this.get(principal, jobId, { explain: false });
    if (['succeeded', 'failed', 'cancelled'].includes(job.state)) throw conflict(`job ${jobId} already ended (${job.state})`);
    const now = this.runtime.clock.now().toISOString();
    const event = this.publisher.build('JobCancelRequested', { jobId, tenantId: job.tenantId, requestedAt: now, reason }, { id: deriveId(jobId, 'JobCancelRequested'), time: now, tenantId: job.tenantId, correlationId: jobId });
    const { sequence } = await this.publisher.publish(event);
    await this.projections.waitFor('intake-jobs', sequence, READ_MODEL_WAIT_MS);
    return this.get(principal, jobId, { explain: false });
  }
}
