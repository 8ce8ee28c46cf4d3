import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { ObjectInfo, ObjectStore } from '@nats-io/obj';
import type { Subscription } from '@nats-io/transport-node';
import { aggregateObjectName, deriveId, resultObjectName, type EventData } from '@fastgpu/contracts';
import type { EventPublisher } from '@fastgpu/messaging';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import { sql } from 'kysely';
import { AggregationError, resultTransform, type AggregateRuleName } from './aggregate-rules';
import { OutputsService } from './outputs.service';

/** Largest aggregate built (the sum of the results, plus a newline each for jsonl). */
export const AGGREGATE_BYTES_MAX = 4 * 1024 * 1024 * 1024;
/** Jobs looked at when intake starts: results older than the results bucket's default retention are gone anyway. */
const LOOKBACK_MS = 30 * 24 * 3600 * 1000;
const JOBS_PER_SCAN = 100;
/** After a scan that could not finish (NATS or the bucket unavailable), the next is tried this much later. */
const RETRY_MS = 10_000;
const CHUNK_BYTES = 128 * 1024;
const PUT_TIMEOUT_MS = 60_000;
/** Scans follow each other at least this far apart: a burst of completions costs one scan a second, not one each. */
const SCAN_SPACING_MS = 1000;

/** What a job's aggregate object carries besides its bytes (Object Store metadata values are strings). */
interface AggregateMetadata extends Record<string, string> {
  tenantId: string;
  jobId: string;
  rule: AggregateRuleName;
  outcome: 'stored' | 'failed';
  sha256: string;
  reason: string;
  /** "true" once JobResultsAggregated is published: the object is then the record that the work is done. */
  announced: 'true' | 'false';
}

/**
 * Builds a job's aggregate result when every sub-task succeeded (docs/node-agent.md,
 * "Aggregation"), in intake, beside the routes that serve results: it reads the same results
 * bucket and the same jobs read model. A succeeded job whose workload has a rule (`concat`,
 * `jsonl`) gets `<tenantId>/<jobId>/aggregate` in the results bucket, built from each sub-task's
 * succeeded attempt in index order, then `JobResultsAggregated` (its id derived from the job, so
 * a repeat is dropped by the bus). The object itself, with `announced` in its metadata, records
 * that the work is done: no table of its own, nothing to rebuild. A failed aggregation (a result
 * missing or expired, a `jsonl` line that is not JSON, over AGGREGATE_BYTES_MAX) is recorded the
 * same way as an empty object with the reason, and announced with outcome `failed`. Sub-task
 * results stay available whatever happens here.
 *
 * Woken by JobCompleted (a plain subscription to scheduler job subjects, nothing durable), it
 * scans the jobs read model from the last job it handled; at start it scans the jobs completed
 * in the last 30 days, so work a crash interrupted is picked up again.
 */
@Injectable()
export class ResultAggregator implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('intake.aggregates');
  private readonly publisher: EventPublisher;
  private subscription?: Subscription;
  private cursor = 0;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  private retryTimer?: NodeJS.Timeout;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(OutputsService) private readonly outputs: OutputsService,
  ) {
    this.publisher = publisherFor(runtime, 'intake');
  }

  onApplicationBootstrap(): void {
    // Every publisher sets Ce-Type: only a job's completion can make an aggregate due.
    this.subscription = this.runtime.bus.nc.subscribe(this.runtime.bus.topology.subjects.schedulerJob('*'), {
      callback: (_error, message) => {
        if (message.headers?.get('Ce-Type') === 'JobCompleted') this.wake();
      },
    });
    this.wake();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.subscription?.unsubscribe();
    await this.running;
  }

  /** Schedules a scan (one at a time; a wake-up during a scan runs another after it). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        const finished = await this.scan().catch((error: Error) => {
          this.logger.warn(`aggregation scan: ${error.message}`);
          return false;
        });
        if (!finished && !this.stopped && !this.retryTimer) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.wake();
          }, RETRY_MS);
        }
        if (this.again && !this.stopped) await new Promise((resolve) => setTimeout(resolve, SCAN_SPACING_MS));
      } while (this.again && !this.stopped);
    })().finally(() => (this.running = undefined));
  }

  /** Handles the succeeded jobs with a rule after the cursor; false when it had to stop early. */
  private async scan(): Promise<boolean> {
    await this.outputs.catchUp();
    const store = await this.outputs.results();
    if (!store) return true; // no result was ever stored: nothing to aggregate
    const since = new Date(this.runtime.clock.now().getTime() - LOOKBACK_MS);
    for (;;) {
      const rows = await this.runtime.db
        .selectFrom('jobs')
        .select(['job_id', 'tenant_id', 'last_sequence', sql<string>`spec->'workload'->>'aggregate'`.as('rule')])
        .where('state', '=', 'succeeded')
        .where('last_sequence', '>', this.cursor)
        .where('completed_at', '>=', since)
        .where(sql<boolean>`spec->'workload'->>'aggregate' IN ('concat', 'jsonl')`)
        .orderBy('last_sequence')
        .limit(JOBS_PER_SCAN)
        .execute();
      for (const row of rows) {
        if (this.stopped) return false;
        await this.aggregate(store, row.tenant_id, row.job_id, row.rule as AggregateRuleName);
        this.cursor = Math.max(this.cursor, Number(row.last_sequence));
      }
      if (rows.length < JOBS_PER_SCAN) return true;
    }
  }

  /** One job: build and store its aggregate unless it is there, then announce it unless announced. */
  async aggregate(store: ObjectStore, tenantId: string, jobId: string, rule: AggregateRuleName): Promise<void> {
    const name = aggregateObjectName(tenantId, jobId);
    const existing = await store.info(name);
    if (existing && !existing.deleted && existing.metadata?.announced === 'true') return;
    const info = existing && !existing.deleted && existing.metadata?.jobId === jobId && (existing.metadata.outcome === 'failed' || /^[0-9a-f]{64}$/.test(existing.metadata.sha256 ?? '')) ? { size: existing.size, metadata: existing.metadata as AggregateMetadata } : await this.build(store, tenantId, jobId, rule);
    const metadata = info.metadata;
    const subtaskCount = Number((await this.runtime.db.selectFrom('jobs').select(sql<string>`spec->>'subtaskCount'`.as('count')).where('job_id', '=', jobId).executeTakeFirst())?.count ?? 1);
    const aggregatedAt = this.runtime.clock.now().toISOString();
    const data: EventData<'JobResultsAggregated'> = {
      jobId,
      tenantId,
      rule,
      outcome: metadata.outcome,
      subtaskCount,
      ...(metadata.outcome === 'stored' ? { bytes: info.size, sha256: metadata.sha256 } : { reason: metadata.reason.slice(0, 500) }),
      aggregatedAt,
    };
    await this.publisher.publish(this.publisher.build('JobResultsAggregated', data, { id: deriveId(jobId, 'JobResultsAggregated'), time: aggregatedAt, tenantId, correlationId: jobId }));
    await store.update(name, { metadata: { ...metadata, announced: 'true' } });
    this.logger.log(`job ${jobId}: aggregate ${metadata.outcome}${metadata.outcome === 'stored' ? ` (${info.size} bytes, ${rule})` : `: ${metadata.reason}`}`);
  }

  /** The results of the job's sub-tasks (each one's succeeded attempt, in index order), through the rule, into the aggregate object. */
  private async build(store: ObjectStore, tenantId: string, jobId: string, rule: AggregateRuleName): Promise<{ size: number; metadata: AggregateMetadata }> {
    const name = aggregateObjectName(tenantId, jobId);
    const base = { tenantId, jobId, rule, announced: 'false' as const };
    const failed = async (reason: string) => {
      const metadata: AggregateMetadata = { ...base, outcome: 'failed', sha256: '', reason };
      await store.putBlob({ name, metadata }, new Uint8Array(0));
      return { size: 0, metadata };
    };
    const subtasks = (await this.runtime.db.selectFrom('subtasks').select(['index', 'attempt', 'state']).where('job_id', '=', jobId).orderBy('index').execute()) as Array<{ index: number; attempt: number; state: string }>;
    const sources: Array<{ index: number; name: string; info: ObjectInfo }> = [];
    let total = 0;
    for (const subtask of subtasks) {
      const index = Number(subtask.index);
      const objectName = resultObjectName(tenantId, jobId, index, Number(subtask.attempt));
      const info = subtask.state === 'succeeded' ? await store.info(objectName) : null;
      if (!info || info.deleted) return failed(`the result of sub-task ${index} (attempt ${subtask.attempt}) is not stored (expired, or the sub-task did not succeed)`);
      sources.push({ index, name: objectName, info });
      total += info.size + (rule === 'jsonl' ? 1 : 0);
    }
    if (total > AGGREGATE_BYTES_MAX) return failed(`the aggregate would take ${total} bytes (at most ${AGGREGATE_BYTES_MAX})`);
    if (rule === 'jsonl') {
      // Checked in a first pass, so a bad line never leaves half an aggregate behind.
      try {
        for (const source of sources) await this.read(store, source, () => undefined, rule);
      } catch (error) {
        if (error instanceof AggregationError) return failed(error.message);
        throw error;
      }
    }
    const hash = createHash('sha256');
    const queue = sources.slice();
    let current: { reader: ReadableStreamDefaultReader<Uint8Array>; transform: ReturnType<typeof resultTransform>; done: Promise<Error | null> } | undefined;
    const data = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        for (;;) {
          if (!current) {
            const next = queue.shift();
            if (!next) {
              controller.close();
              return;
            }
            const result = await store.get(next.name);
            if (!result) throw new Error(`result ${next.name} vanished while it was aggregated`);
            current = { reader: result.data.getReader(), transform: resultTransform(rule, next.index), done: result.error };
          }
          const { done, value } = await current.reader.read();
          const out = done ? current.transform.end() : current.transform.push(value);
          if (done) {
            const error = await current.done;
            if (error) throw error;
            current = undefined;
          }
          for (const part of out) {
            hash.update(part);
            controller.enqueue(part);
          }
          if (out.length > 0) return;
        }
      },
    });
    // Written without its digest first: a reader takes an aggregate whose sha256 is not set yet for one still being written.
    const info = await store.put({ name, metadata: { ...base, outcome: 'stored', sha256: '', reason: '' } satisfies AggregateMetadata, options: { max_chunk_size: CHUNK_BYTES } }, data, { timeout: PUT_TIMEOUT_MS });
    const metadata: AggregateMetadata = { ...base, outcome: 'stored', sha256: hash.digest('hex'), reason: '' };
    await store.update(name, { metadata });
    return { size: info.size, metadata };
  }

  /** Reads one result through the rule, giving each output part to `sink`. */
  private async read(store: ObjectStore, source: { index: number; name: string }, sink: (part: Uint8Array) => void, rule: AggregateRuleName): Promise<void> {
    const result = await store.get(source.name);
    if (!result) throw new AggregationError(`the result of sub-task ${source.index} vanished`);
    const transform = resultTransform(rule, source.index);
    for await (const chunk of result.data as unknown as AsyncIterable<Uint8Array>) for (const part of transform.push(chunk)) sink(part);
    for (const part of transform.end()) sink(part);
    const error = await result.error;
    if (error) throw error;
  }
}
