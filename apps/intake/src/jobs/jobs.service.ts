import { Inject, Injectable, Logger } from '@nestjs/common';
import { checkJobRequest, explainReply, feasibilityReply, multiLineText, nameId, requestIdSchema, type ExplainRequest, type FeasibilityRequest, type FeasibilityVerdict } from '@fastgpu/contracts';
import { z } from 'zod';
import { sql, type Selectable } from 'kysely';
import type { JobsTable } from '@fastgpu/db';
import type { Principal } from '@fastgpu/auth';
import type { CommandRunner } from '@fastgpu/eventsourcing';
import { ApiError, notFound, pageOf, parseInput, parseInstant, unprocessable } from '@fastgpu/http';
import { lastSequence } from '@fastgpu/messaging';
import { publisherFor, RUNTIME, TickBatcher, type Runtime } from '@fastgpu/runtime';
import { canonicalJson, IdempotencyKeys, keyOwner, readIdempotencyKey, requestHash, type ClaimedKey, type IdempotencyClaim } from '../shared/idempotency';
import { IntakeProjections } from '../shared/intake-projections';
import { JOBS_LIST, jobView, type JobSummaryView, type JobView, type ListJobsQuery, type SubmitJobRequest } from './jobs.schema';
import { jobCommands } from './job-event-stream';
import { jobDecider, subtaskId, type JobCommand, type JobEnd, type JobState } from './job.decider';

/** How long intake waits for the scheduler's feasibility answer before accepting anyway. */
const FEASIBILITY_TIMEOUT_MS = 1000;
const EXPLAIN_TIMEOUT_MS = 300;
const FEASIBILITY_CACHE_MS = 2000;
const FEASIBILITY_CACHE_ENTRIES_MAX = 10_000;
/** How long a submission waits for the read model, so a GET right after a POST finds the job. */
const READ_MODEL_WAIT_MS = 3000;

/** A cancellation reason (gRPC CancelJob takes one from the caller): the event's bound and the text rule. */
const cancelReason = z.object({ reason: multiLineText(500, 1) });

const iso = (value: Date | string | null | undefined): string | null => (value ? new Date(value).toISOString() : null);

/** A `jobs` read-model row as the API shows it (without spec and sub-tasks). */
function jobSummary(row: Selectable<JobsTable>): JobSummaryView {
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

/** The recorded JobSubmitted a row's jsonb `spec` holds (text on a driver that does not parse jsonb). */
const specOf = (stored: unknown): JobView['spec'] => jobView.shape.spec.parse(typeof stored === 'string' ? (JSON.parse(stored) as unknown) : stored);

/**
 * Job submission: validate, divide into sub-tasks, and run the submission on the event-sourcing
 * kernel (libs/eventsourcing `handleCommand` with job.decider.ts on the job's subject), which
 * appends JobSubmitted with the subject's expected sequence, then its SubtaskCreated events
 * together (job-event-stream.ts). Every submission carries an Idempotency-Key (per tenant):
 * a retry without one would be a second job. The key names the job: its id and event ids derive
 * from it, so a retry decides the same events, and appends only those not on the subject yet.
 */
@Injectable()
export class JobsService {
  private readonly logger = new Logger('intake.jobs');
  private readonly commands: CommandRunner<JobState, JobCommand>;
  private readonly keys: IdempotencyKeys;
  /** Feasibility verdicts by the whole request they answer (tenant included); only verdicts are kept, never "no answer". */
  private readonly feasibility = new Map<string, { expiresAtMs: number; verdict: Promise<FeasibilityVerdict | undefined> }>();
  /** The submissions of one event-loop turn look their Idempotency-Keys up in one SELECT... */
  private readonly keyLookups: TickBatcher<Pick<IdempotencyClaim, 'owner' | 'scope' | 'key' | 'requestHash'>, ClaimedKey | undefined>;
  /** ...and claim them in one INSERT. */
  private readonly keyClaims: TickBatcher<IdempotencyClaim, boolean>;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(IntakeProjections) private readonly projections: IntakeProjections,
  ) {
    this.commands = jobCommands(runtime.bus, publisherFor(runtime, 'intake'), jobDecider);
    this.keys = new IdempotencyKeys(runtime);
    this.keyLookups = new TickBatcher((lookups) => this.keys.findAll(lookups));
    this.keyClaims = new TickBatcher<IdempotencyClaim, boolean>((claims) => this.keys.claimAll(claims));
  }

  async submit(principal: Principal, request: SubmitJobRequest, idempotencyKeyHeader?: string): Promise<{ job: JobView; created: boolean }> {
    const tenantId = principal.tenantId;
    if (!tenantId) throw new ApiError(403, 'forbidden', 'jobs are submitted with a tenant API key');
    const idempotencyKey = readIdempotencyKey(idempotencyKeyHeader, { required: true, why: 'a retry without one would submit a second job' })!;
    // A refused request throws JobRequestError, a DomainError the edge maps (422 with the field).
    const checked = checkJobRequest(request, this.runtime.clock.now().getTime());

    // A retry answers the original request: no check runs again (the fleet may have changed since).
    const hash = requestHash(request);
    const owner = keyOwner(tenantId);
    const jobId = nameId(tenantId, 'job', idempotencyKey);
    const earlier = await this.keyLookups.add({ owner, scope: 'job', key: idempotencyKey, requestHash: hash });
    let created = !earlier;
    let submittedAt = (earlier?.createdAt ?? this.runtime.clock.now()).toISOString();
    if (created) {
      await this.checkDependencies(tenantId, request.dependsOn);
      await this.checkFeasible({ tenantId, gpuModels: request.gpuModels, gpusPerSubtask: request.gpusPerSubtask, subtaskCount: checked.subtasks.length, gang: request.gang, ...(request.gangTopologyKey ? { gangTopologyKey: request.gangTopologyKey } : {}) });
      const claim: IdempotencyClaim = { owner, scope: 'job', key: idempotencyKey, requestHash: hash, resourceId: jobId, createdAt: new Date(submittedAt) };
      if (!(await this.keyClaims.add(claim))) {
        // A concurrent request with this key won: this one is its retry.
        const winner = await this.keys.afterLostClaim(claim);
        created = false;
        submittedAt = winner.createdAt.toISOString();
      }
    }

    // The job's own history decides: a retry appends only what is not on the subject yet (a first
    // attempt that claimed its key but never published, or was cut short, gets its events now).
    // A key this request claimed names a job no one has written: its subject is not read first.
    const { state, version } = await this.commands(this.runtime.bus.topology.subjects.job(jobId), { kind: 'submit', jobId, tenantId, request, checked, idempotencyKey, submittedAt }, { assumeNew: created });
    if (!created) {
      // A retry answers with the job as it is now (it may have run since) once the read model holds
      // it. While the read model lags behind the job's events (an instance catching up after a
      // fault), the retry answers what those events say, as the first answer did: never 404 for a
      // job that is in the log.
      await this.projections.waitFor('intake-jobs', version, READ_MODEL_WAIT_MS);
      if (await this.visibleRow(principal, jobId)) return { job: await this.get(principal, jobId, { explain: false }), created };
    }
    const submitted = state.submitted;
    if (!submitted) throw new Error(`job ${jobId}: no JobSubmitted after its submission was decided`);
    // A new job is exactly what its events say; the read model catches up on its own, and a GET
    // that does not find it yet waits for it (see get), so the POST does not wait here.
    const job: JobView = {
      jobId,
      tenantId,
      projectId: submitted.projectId,
      name: submitted.name ?? null,
      state: 'pending',
      reason: null,
      submittedAt: submitted.submittedAt,
      completedAt: null,
      gpuMsObserved: null,
      spec: submitted,
      subtasks: checked.subtasks.map((p) => ({ subtaskId: subtaskId(jobId, p.index), index: p.index, gpus: p.gpus, runtimeMs: p.runtimeMs, state: 'pending', attempt: 0, nodeId: null, gpuModel: null, placedAt: null, startedAt: null, endedAt: null, exitCode: null, reason: null })),
    };
    return { job, created };
  }

  /** Read-your-writes for a job id not in the read model yet: wait until it has caught up with the log. */
  private async catchUp(): Promise<void> {
    const last = await lastSequence(this.runtime.bus, this.runtime.bus.topology.streams.events);
    await this.projections.waitFor('intake-jobs', last, READ_MODEL_WAIT_MS);
  }

  /** The caller's own rows among `jobIds`: one query, the same for missing ids and other tenants' ids. */
  private async ownJobIds(tenantId: string, jobIds: readonly string[]): Promise<Set<string>> {
    const rows = await this.runtime.db.selectFrom('jobs').select('job_id').where('tenant_id', '=', tenantId).where('job_id', 'in', jobIds).execute();
    return new Set(rows.map((r) => r.job_id));
  }

  /**
   * Dependencies resolve within the tenant only: another tenant's job id is a missing id, with
   * the same status, body and work (the same query, and the same catch-up with the log when an
   * id is not found), so neither the answer nor its time says whether the id exists elsewhere.
   */
  private async checkDependencies(tenantId: string, dependsOn: SubmitJobRequest['dependsOn']): Promise<void> {
    if (dependsOn.length === 0) return;
    const jobIds = [...new Set(dependsOn.map((d) => d.jobId))];
    let found = await this.ownJobIds(tenantId, jobIds);
    if (found.size < jobIds.length) {
      // A dependency submitted a moment ago may not be in the read model yet.
      await this.catchUp();
      found = await this.ownJobIds(tenantId, jobIds);
    }
    const index = dependsOn.findIndex((d) => !found.has(d.jobId));
    if (index >= 0) throw unprocessable(`depends on unknown job ${dependsOn[index]!.jobId}`, `dependsOn.${index}.jobId`);
  }

  /**
   * Asks the scheduler whether any node could ever run this job; no valid answer means accept.
   * The answer depends only on the fleet and on the request, which names the tenant, so verdicts
   * are kept for FEASIBILITY_CACHE_MS keyed by the whole request (a burst of like jobs from one
   * tenant asks once, and no tenant's verdict answers another's).
   */
  private async checkFeasible(request: FeasibilityRequest): Promise<void> {
    const key = canonicalJson(request);
    const nowMs = Date.now();
    let cached = this.feasibility.get(key);
    if (!cached || cached.expiresAtMs <= nowMs) {
      const verdict = this.askFeasibility(request);
      cached = { expiresAtMs: nowMs + FEASIBILITY_CACHE_MS, verdict };
      if (this.feasibility.size >= FEASIBILITY_CACHE_ENTRIES_MAX) this.feasibility.clear();
      this.feasibility.set(key, cached);
      // "No answer" is not a verdict: the next request asks again.
      const entry = cached;
      void verdict.then((v) => v === undefined && this.feasibility.get(key) === entry && this.feasibility.delete(key));
    }
    const verdict = await cached.verdict;
    if (verdict?.feasible === false) throw unprocessable(verdict.reason, verdict.field);
  }

  private async askFeasibility(request: FeasibilityRequest): Promise<FeasibilityVerdict | undefined> {
    let body: unknown;
    try {
      const reply = await this.runtime.bus.nc.request(this.runtime.bus.topology.subjects.service('scheduler', 'feasibility'), JSON.stringify(request), { timeout: FEASIBILITY_TIMEOUT_MS });
      body = reply.json();
    } catch {
      return undefined;
    }
    const parsed = feasibilityReply.safeParse(body);
    if (!parsed.success || 'error' in parsed.data) {
      this.logger.warn(`feasibility: no verdict from the scheduler (${parsed.success ? (parsed.data as { error: { message: string } }).error.message : 'malformed reply'}); accepting`);
      return undefined;
    }
    return parsed.data;
  }

  /** The job row this caller may see: a tenant sees only its own, so another tenant's id is a missing id (same query, same catch-up). */
  private async visibleRow(principal: Principal, jobId: string) {
    let query = this.runtime.db.selectFrom('jobs').selectAll().where('job_id', '=', jobId);
    if (principal.tenantId !== null) query = query.where('tenant_id', '=', principal.tenantId);
    return query.executeTakeFirst();
  }

  async get(principal: Principal, jobId: string, options: { explain?: boolean } = {}): Promise<JobView> {
    // An id that cannot exist is missing (and is never sent to the database: PostgreSQL refuses U+0000).
    if (!requestIdSchema.safeParse(jobId).success) throw notFound(`job ${jobId}`);
    let row = await this.visibleRow(principal, jobId);
    if (!row) {
      await this.catchUp();
      row = await this.visibleRow(principal, jobId);
    }
    if (!row) throw notFound(`job ${jobId}`);
    const subtasks = await this.runtime.db.selectFrom('subtasks').selectAll().where('job_id', '=', jobId).orderBy('index').execute();
    const view: JobView = {
      ...jobSummary(row),
      spec: specOf(row.spec),
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
    const request: ExplainRequest = { jobId, tenantId };
    let body: unknown;
    try {
      const reply = await this.runtime.bus.nc.request(this.runtime.bus.topology.subjects.service('scheduler', 'explain'), JSON.stringify(request), { timeout: EXPLAIN_TIMEOUT_MS });
      body = reply.json();
    } catch {
      return undefined;
    }
    const parsed = explainReply.safeParse(body);
    if (!parsed.success || 'error' in parsed.data) {
      this.logger.warn(`explain: no explanation from the scheduler (${parsed.success ? (parsed.data as { error: { message: string } }).error.message : 'malformed reply'})`);
      return undefined;
    }
    return parsed.data;
  }

  /**
   * One page of the caller's jobs (a platform role: any tenant's with `tenantId`, or all), newest
   * first by (submitted_at, job_id); `nextCursor` names the last row. The tenant is in the query,
   * never in the cursor, so no cursor reaches another tenant's rows.
   */
  async list(principal: Principal, query: ListJobsQuery): Promise<{ jobs: JobSummaryView[]; nextCursor: string | null }> {
    const tenantId = principal.tenantId ?? query.tenantId;
    const fromMs = query.from === undefined ? undefined : parseInstant(query.from, 'from');
    const toMs = query.to === undefined ? undefined : parseInstant(query.to, 'to');
    if (fromMs !== undefined && toMs !== undefined && toMs <= fromMs) throw unprocessable('to: must be after from', 'to');
    // A list right after a submission includes it: the read model first catches up with the log.
    await this.catchUp();
    let q = this.runtime.db
      .selectFrom('jobs')
      .selectAll()
      .orderBy('submitted_at', 'desc')
      .orderBy(sql`job_id COLLATE "C"`, 'desc')
      .limit(query.limit + 1);
    if (tenantId) q = q.where('tenant_id', '=', tenantId);
    if (query.state) q = q.where('state', '=', query.state);
    if (query.projectId) q = q.where('project_id', '=', query.projectId);
    if (fromMs !== undefined) q = q.where('submitted_at', '>=', new Date(fromMs));
    if (toMs !== undefined) q = q.where('submitted_at', '<', new Date(toMs));
    if (query.cursor) q = q.where(sql<boolean>`(submitted_at, job_id COLLATE "C") < (${new Date(query.cursor.time).toISOString()}::timestamptz, ${query.cursor.id})`);
    const page = pageOf(await q.execute(), query.limit, JOBS_LIST, (row) => ({ time: new Date(row.submitted_at as Date | string).getTime(), id: row.job_id }));
    return { jobs: page.rows.map(jobSummary), nextCursor: page.nextCursor };
  }

  async cancel(principal: Principal, jobId: string, reasonText: string): Promise<JobView> {
    const { reason } = parseInput(cancelReason, { reason: reasonText });
    const job = await this.get(principal, jobId, { explain: false });
    // The job's end is the scheduler's (JobCompleted, on its own subject): the read model says it.
    const ended = ENDED_STATES.find((s) => s === job.state) ?? null;
    const command: JobCommand = { kind: 'cancel', jobId, tenantId: job.tenantId, requestedAt: this.runtime.clock.now().toISOString(), reason, ended };
    const { version } = await this.commands(this.runtime.bus.topology.subjects.job(jobId), command);
    await this.projections.waitFor('intake-jobs', version, READ_MODEL_WAIT_MS);
    return this.get(principal, jobId, { explain: false });
  }
}

const ENDED_STATES: readonly JobEnd[] = ['succeeded', 'failed', 'cancelled'];
