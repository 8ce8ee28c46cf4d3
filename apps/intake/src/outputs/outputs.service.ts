import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { sql } from 'kysely';
import { DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import { Objm, type ObjectInfo, type ObjectResult, type ObjectStore } from '@nats-io/obj';
import { aggregateObjectName, LogHeader, LogKind, requestIdSchema, resultObjectName, ResultMetadata } from '@fastgpu/contracts';
import type { Principal } from '@fastgpu/auth';
import { notFound, tooManyRequests } from '@fastgpu/http';
import { lastSequence } from '@fastgpu/messaging';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { logEventOf, sseFrame } from './log-events';
import type { AggregateView, LogsQuery, ResultView } from './outputs.schema';

/**
 * A job's outputs, as node agents wrote them (docs/node-protocol.md, "Logs" and "Results"): log
 * messages from the LOGS stream and result objects from the results bucket. Every read starts
 * from the job in intake's read model, scoped to the caller's tenant, so another tenant's job
 * answers exactly like a missing one; the subjects and object names are then built from that
 * row (its tenant), never from the request.
 */
export interface OutputJob {
  jobId: string;
  tenantId: string;
  /** Index → the attempt the read model knows (0 before the first placement). */
  attempts: number[];
}

/** Where a log reader writes its frames: `write` resolves when the socket took them. */
export interface LogSink {
  write(chunk: string | Uint8Array): Promise<void>;
  readonly closed: boolean;
  onClose(listener: () => void): void;
}

export interface LogReader {
  follow: boolean;
  run(sink: LogSink): Promise<void>;
}

/** Open followed log streams per process and per tenant: each holds a consumer and a socket. */
export const LOG_FOLLOWS_MAX = 512;
export const LOG_FOLLOWS_PER_TENANT_MAX = 16;
/** A followed stream ends after this long (a client reconnects with Last-Event-ID). */
export const LOG_FOLLOW_MS_MAX = 3600 * 1000;
/** A follow over several attempts ends once the job has ended and nothing came for this long. */
const LOG_FOLLOW_IDLE_MS = 2000;
const LOG_FOLLOW_CHECK_MS = 500;
const LOG_KEEPALIVE_MS = 15_000;
const LOG_FETCH_MESSAGES_MAX = 256;
const LOG_FETCH_EXPIRES_MS = 2000;
/** Messages one read without follow returns at most (a long history is read in several requests with Last-Event-ID). */
const LOG_READ_MESSAGES_MAX = 100_000;
/** Object Store lookups in flight for one results listing. */
const RESULT_LOOKUPS_IN_FLIGHT_MAX = 16;
/** How long a read waits for the jobs read model to catch up with the log (as job reads do). */
const READ_MODEL_WAIT_MS = 3000;
const READ_MODEL_POLL_MS = 25;
const JOBS_PROJECTION = 'intake-jobs';
const TERMINAL_JOB_STATES = new Set(['succeeded', 'failed', 'cancelled']);

/** "SHA-256=<base64url>" (the Object Store's digest) as lowercase hex. */
function digestHex(digest: string): string | undefined {
  const match = /^SHA-256=(.+)$/i.exec(digest);
  return match ? Buffer.from(match[1]!.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('hex') : undefined;
}

@Injectable()
export class OutputsService implements OnApplicationShutdown {
  private bucket?: ObjectStore;
  private follows = 0;
  private readonly followsByTenant = new Map<string, number>();
  private readonly closers = new Set<() => void>();

  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  onApplicationShutdown(): void {
    for (const close of this.closers) close();
  }

  /** The job as this caller may see it: another tenant's job, like a missing one, is 404 after the same lookups. */
  async job(principal: Principal, jobId: string): Promise<OutputJob> {
    // An id that cannot exist is missing (and never sent to PostgreSQL, which refuses U+0000).
    if (!requestIdSchema.safeParse(jobId).success) throw notFound(`job ${jobId}`);
    let query = this.runtime.db.selectFrom('jobs').select(['job_id', 'tenant_id', sql<string>`spec->>'subtaskCount'`.as('subtask_count')]).where('job_id', '=', jobId);
    if (principal.tenantId !== null) query = query.where('tenant_id', '=', principal.tenantId);
    const read = async () => {
      const row = await query.executeTakeFirst();
      if (!row) return undefined;
      const subtasks = await this.runtime.db.selectFrom('subtasks').select(['index', 'attempt']).where('job_id', '=', jobId).orderBy('index').execute();
      return { row, subtasks };
    };
    let found = await read();
    if (!found || found.subtasks.length < Number(found.row.subtask_count)) {
      // A job submitted a moment ago may not be in the read model yet, or only some of its
      // sub-tasks (each SubtaskCreated is its own append after JobSubmitted): wait for it to catch
      // up with the log, once.
      await this.catchUp();
      found = await read();
    }
    if (!found) throw notFound(`job ${jobId}`);
    const attempts: number[] = [];
    for (const s of found.subtasks) attempts[Number(s.index)] = Number(s.attempt);
    return { jobId: found.row.job_id, tenantId: found.row.tenant_id, attempts };
  }

  /** Waits (bounded) until intake's jobs read model has applied the log up to its current end. */
  async catchUp(): Promise<void> {
    const last = await lastSequence(this.runtime.bus, this.runtime.bus.topology.streams.events);
    const deadline = Date.now() + READ_MODEL_WAIT_MS;
    while (Date.now() < deadline) {
      const checkpoint = await this.runtime.db.selectFrom('projection_checkpoints').select(['last_sequence']).where('projection', '=', JOBS_PROJECTION).executeTakeFirst();
      if (Number(checkpoint?.last_sequence ?? 0) >= last) return;
      await new Promise((r) => setTimeout(r, READ_MODEL_POLL_MS));
    }
  }

  private async jobState(jobId: string): Promise<string | undefined> {
    const row = await this.runtime.db.selectFrom('jobs').select(['state']).where('job_id', '=', jobId).executeTakeFirst();
    return row?.state;
  }

  private subtaskOf(job: OutputJob, index: number): void {
    if (index >= job.attempts.length) throw notFound(`sub-task ${index} of job ${job.jobId}`);
  }

  // ------------------------------------------------------------------ logs

  /** Everything checked before the response starts (404, 429); `run` then writes the frames. */
  async openLogs(principal: Principal, jobId: string, query: LogsQuery, afterSequence: number): Promise<LogReader> {
    const job = await this.job(principal, jobId);
    if (query.subtask !== undefined) this.subtaskOf(job, query.subtask);
    const { topology } = this.runtime.bus;
    const filter = `${topology.prefix}.logs.${job.tenantId}.${job.jobId}.${query.subtask ?? '*'}.${query.attempt ?? '*'}`;
    const follow = query.follow === 'true';
    if (!follow) return { follow, run: (sink) => this.readLogs(filter, afterSequence, sink) };
    const tenantKey = job.tenantId;
    const tenantFollows = this.followsByTenant.get(tenantKey) ?? 0;
    if (this.follows >= LOG_FOLLOWS_MAX || tenantFollows >= LOG_FOLLOWS_PER_TENANT_MAX) throw tooManyRequests(`at most ${LOG_FOLLOWS_PER_TENANT_MAX} followed log streams per tenant are open at once`, 5);
    this.follows++;
    this.followsByTenant.set(tenantKey, tenantFollows + 1);
    const release = () => {
      this.follows--;
      const left = (this.followsByTenant.get(tenantKey) ?? 1) - 1;
      if (left > 0) this.followsByTenant.set(tenantKey, left);
      else this.followsByTenant.delete(tenantKey);
    };
    const oneAttempt = query.subtask !== undefined && query.attempt !== undefined;
    return {
      follow,
      run: (sink) => this.followLogs(job.jobId, filter, afterSequence, oneAttempt, sink).finally(release),
    };
  }

  private async consumerFor(filter: string, afterSequence: number) {
    const { js, topology } = this.runtime.bus;
    return js.consumers.get(topology.streams.logs, {
      filter_subjects: filter,
      ...(afterSequence > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSequence + 1 } : { deliver_policy: DeliverPolicy.All }),
    });
  }

  /** Writes one message; the kind it had, or undefined for a message that is not the agent's. */
  private async emit(m: JsMsg, sink: LogSink): Promise<string | undefined> {
    const event = logEventOf({ seq: m.seq, subject: m.subject, data: m.data, kind: m.headers?.get(LogHeader.kind) || undefined, offset: m.headers?.get(LogHeader.offset) || undefined });
    if (!event) return undefined;
    await sink.write(sseFrame(event));
    return event.kind;
  }

  /** What the stream holds now, then the response ends. */
  private async readLogs(filter: string, afterSequence: number, sink: LogSink): Promise<void> {
    const { jsm, topology } = this.runtime.bus;
    if (afterSequence === 0) {
      // Nothing stored for these subjects: answer at once rather than wait for a fetch to expire.
      const info = await jsm.streams.info(topology.streams.logs, { subjects_filter: filter }).catch(() => undefined);
      if (Object.values(info?.state.subjects ?? {}).reduce((sum, count) => sum + count, 0) === 0) return;
    }
    const consumer = await this.consumerFor(filter, afterSequence);
    let sent = 0;
    while (sent < LOG_READ_MESSAGES_MAX && !sink.closed) {
      const batch = await consumer.fetch({ max_messages: LOG_FETCH_MESSAGES_MAX, expires: LOG_FETCH_EXPIRES_MS });
      let received = 0;
      let caughtUp = false;
      for await (const m of batch) {
        received++;
        sent++;
        await this.emit(m, sink);
        if (m.info.pending === 0) {
          caughtUp = true;
          break;
        }
      }
      if (caughtUp || received === 0) return;
    }
  }

  /** What the stream holds and what arrives, until the attempt's end marker (one attempt) or the job's end. */
  private async followLogs(jobId: string, filter: string, afterSequence: number, oneAttempt: boolean, sink: LogSink): Promise<void> {
    const consumer = await this.consumerFor(filter, afterSequence);
    const messages = await consumer.consume({ max_messages: LOG_FETCH_MESSAGES_MAX });
    const close = () => void messages.close().catch(() => undefined);
    this.closers.add(close);
    sink.onClose(close);
    const startedMs = Date.now();
    let lastMessageMs = startedMs;
    let lastWriteMs = startedMs;
    let checking = false;
    const watch = setInterval(() => {
      if (checking) return;
      checking = true;
      void (async () => {
        const nowMs = Date.now();
        if (sink.closed || nowMs - startedMs > LOG_FOLLOW_MS_MAX) return close();
        if (!oneAttempt && nowMs - lastMessageMs > LOG_FOLLOW_IDLE_MS && TERMINAL_JOB_STATES.has((await this.jobState(jobId)) ?? '')) return close();
        if (nowMs - lastWriteMs > LOG_KEEPALIVE_MS) {
          lastWriteMs = nowMs;
          await sink.write(': keep-alive\n\n');
        }
      })()
        .catch(() => close())
        .finally(() => (checking = false));
    }, LOG_FOLLOW_CHECK_MS);
    try {
      for await (const m of messages) {
        lastMessageMs = lastWriteMs = Date.now();
        const kind = await this.emit(m, sink);
        if (oneAttempt && kind === LogKind.end) break;
        if (sink.closed) break;
      }
    } finally {
      clearInterval(watch);
      close();
      this.closers.delete(close);
    }
  }

  // ------------------------------------------------------------------ results

  /** The results bucket, or undefined while no agent has created it. */
  async results(): Promise<ObjectStore | undefined> {
    if (this.bucket) return this.bucket;
    try {
      this.bucket = await new Objm(this.runtime.bus.nc).open(this.runtime.bus.topology.buckets.results);
    } catch {
      // No agent has stored a result yet (the bucket is created with the first): nothing to show.
      return undefined;
    }
    return this.bucket;
  }

  private view(job: OutputJob, subtaskIndex: number, attempt: number, info: ObjectInfo | null): ResultView | undefined {
    if (!info || info.deleted) return undefined;
    const metadata = ResultMetadata.safeParse(info.metadata ?? {});
    if (!metadata.success || metadata.data.tenantId !== job.tenantId || metadata.data.jobId !== job.jobId) return undefined;
    return { subtaskIndex, attempt, bytes: info.size, sha256: digestHex(info.digest) ?? metadata.data.sha256, exitCode: Number(metadata.data.exitCode), nodeId: metadata.data.nodeId, storedAt: metadata.data.storedAt };
  }

  /** Every stored result of the job: each sub-task's attempts up to the one the read model knows. */
  async listResults(principal: Principal, jobId: string): Promise<ResultView[]> {
    const job = await this.job(principal, jobId);
    const store = await this.results();
    if (!store) return [];
    const wanted = job.attempts.flatMap((current, index) => Array.from({ length: Math.max(current ?? 0, 1) }, (_, a) => ({ index, attempt: a + 1 })));
    const found: ResultView[] = [];
    for (let start = 0; start < wanted.length; start += RESULT_LOOKUPS_IN_FLIGHT_MAX) {
      const slice = wanted.slice(start, start + RESULT_LOOKUPS_IN_FLIGHT_MAX);
      const infos = await Promise.all(slice.map((w) => store.info(resultObjectName(job.tenantId, job.jobId, w.index, w.attempt))));
      slice.forEach((w, i) => {
        const view = this.view(job, w.index, w.attempt, infos[i] ?? null);
        if (view) found.push(view);
      });
    }
    return found;
  }

  /** One sub-task's result: the attempt asked for, or the latest attempt that stored one. */
  async openResult(principal: Principal, jobId: string, index: number, attempt: number | undefined): Promise<{ view: ResultView; result: ObjectResult }> {
    const job = await this.job(principal, jobId);
    this.subtaskOf(job, index);
    const missing = notFound(`result of sub-task ${index} of job ${jobId}`);
    const store = await this.results();
    if (!store) throw missing;
    const candidates = attempt !== undefined ? [attempt] : Array.from({ length: Math.max(job.attempts[index] ?? 0, 1) }, (_, a) => Math.max(job.attempts[index] ?? 0, 1) - a);
    for (const candidate of candidates) {
      const name = resultObjectName(job.tenantId, job.jobId, index, candidate);
      const view = this.view(job, index, candidate, await store.info(name));
      if (!view) continue;
      const result = await store.get(name);
      if (result) return { view, result };
    }
    throw missing;
  }

  // ------------------------------------------------------------------ the aggregate

  /** The job's aggregate as recorded by the aggregator (result-aggregator.ts), or null when there is none (yet). */
  async aggregateOf(job: OutputJob): Promise<AggregateView | null> {
    const store = await this.results();
    const info = store ? await store.info(aggregateObjectName(job.tenantId, job.jobId)) : null;
    const metadata = info?.metadata;
    if (!info || info.deleted || metadata?.tenantId !== job.tenantId || metadata.jobId !== job.jobId || (metadata.outcome !== 'stored' && metadata.outcome !== 'failed') || (metadata.rule !== 'concat' && metadata.rule !== 'jsonl')) return null;
    if (metadata.outcome === 'stored' && !/^[0-9a-f]{64}$/.test(metadata.sha256 ?? '')) return null; // still being written
    return metadata.outcome === 'stored' ? { rule: metadata.rule, outcome: 'stored', bytes: info.size, sha256: metadata.sha256!, reason: null } : { rule: metadata.rule, outcome: 'failed', bytes: null, sha256: null, reason: metadata.reason ?? null };
  }

  /** The aggregate's bytes: 404 while there is none, or when aggregation failed (the reason is in the message). */
  async openAggregate(principal: Principal, jobId: string): Promise<{ view: AggregateView & { outcome: 'stored'; bytes: number; sha256: string }; result: ObjectResult }> {
    const job = await this.job(principal, jobId);
    const view = await this.aggregateOf(job);
    if (!view) throw notFound(`aggregate result of job ${jobId} (built when every sub-task succeeded and the workload names a rule)`);
    if (view.outcome === 'failed') throw notFound(`aggregate result of job ${jobId}: aggregation failed: ${view.reason}`);
    const result = await (await this.results())!.get(aggregateObjectName(job.tenantId, job.jobId));
    if (!result) throw notFound(`aggregate result of job ${jobId}`);
    return { view: view as AggregateView & { outcome: 'stored'; bytes: number; sha256: string }, result };
  }
}
