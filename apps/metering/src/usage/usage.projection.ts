import { sql, type RawBuilder } from 'kysely';
import { deriveId, type DomainEvent, type StoredEvent } from '@fastgpu/contracts';
import type { EventPublisher, Projection, ProjectionContext, ProjectionTransaction } from '@fastgpu/messaging';
import { DEFAULT_LATENESS_HORIZON, foldUsage, keysOf, usageEventTypes, type Allocation, type AllocationKind, type Closure, type EndReason, type HourlyUsage, type LatenessHorizon } from './usage.fold';

/** The projection's tables, rebuilt together (libs/replay copies each as `<name>_rebuild`). */
export const usageTables = ['metering_allocations', 'metering_usage_hourly', 'metering_job_observations', 'metering_applied_events', 'metering_rejected_events', 'metering_state'] as const;

export const USAGE_PROJECTION = 'usage';

/**
 * Slack on the lateness horizon when the projection re-checks it against stream time: the HTTP
 * gateway checks at receipt and publishes moments later.
 */
const STREAM_TIME_GRACE_MS = 10 * 60_000;
/** Stream-time look-ups in flight at once. */
const STREAM_TIME_LOOKUPS_IN_FLIGHT_MAX = 256;

export interface UsageProjectionDeps {
  /** Publishes UsageRecorded (live only). */
  publisher?: EventPublisher;
  /** When the log stored the messages at these sequences (epoch ms). */
  streamTimes?(sequences: number[]): Promise<Map<number, number>>;
  horizon?: LatenessHorizon;
}

type Row = Record<string, unknown>;

const num = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));

function fromRow(r: Row): Allocation {
  return {
    key: r.allocation_key as string,
    kind: r.kind as AllocationKind,
    tenantId: (r.tenant_id as string | null) ?? null,
    projectId: (r.project_id as string | null) ?? null,
    jobId: r.job_id as string,
    subtaskId: r.subtask_id as string,
    attempt: Number(r.attempt),
    leaseId: r.lease_id as string,
    allocationId: r.allocation_id as string,
    nodeId: (r.node_id as string | null) ?? null,
    gpuModel: (r.gpu_model as string | null) ?? null,
    gpus: num(r.gpus),
    capacityType: (r.capacity_type as Allocation['capacityType']) ?? null,
    leaseEpoch: num(r.lease_epoch),
    placedEventId: (r.placed_event_id as string | null) ?? null,
    placedSequence: num(r.placed_sequence),
    startMs: num(r.start_ms),
    startEpoch: num(r.start_epoch),
    startEventId: (r.start_event_id as string | null) ?? null,
    startSequence: num(r.start_sequence),
    endMs: num(r.end_ms),
    endEpoch: num(r.end_epoch),
    endEventId: (r.end_event_id as string | null) ?? null,
    endSequence: num(r.end_sequence),
    endReason: (r.end_reason as EndReason | null) ?? null,
    interrupted: Boolean(r.interrupted),
    staleReports: Number(r.stale_reports),
    closedEventId: (r.closed_event_id as string | null) ?? null,
    closedSequence: num(r.closed_sequence),
    gpuMs: num(r.gpu_ms),
  };
}

/** Columns of metering_allocations with their Postgres types, in one place for the bulk upsert. */
const allocationColumns: Array<[string, string, (a: Allocation) => unknown]> = [
  ['allocation_key', 'text', (a) => a.key],
  ['kind', 'text', (a) => a.kind],
  ['tenant_id', 'text', (a) => a.tenantId],
  ['project_id', 'text', (a) => a.projectId],
  ['job_id', 'text', (a) => a.jobId],
  ['subtask_id', 'text', (a) => a.subtaskId],
  ['attempt', 'int4', (a) => a.attempt],
  ['lease_id', 'text', (a) => a.leaseId],
  ['allocation_id', 'text', (a) => a.allocationId],
  ['node_id', 'text', (a) => a.nodeId],
  ['gpu_model', 'text', (a) => a.gpuModel],
  ['gpus', 'int4', (a) => a.gpus],
  ['capacity_type', 'text', (a) => a.capacityType],
  ['lease_epoch', 'int4', (a) => a.leaseEpoch],
  ['placed_event_id', 'text', (a) => a.placedEventId],
  ['placed_sequence', 'int8', (a) => a.placedSequence],
  ['start_ms', 'int8', (a) => a.startMs],
  ['start_epoch', 'int4', (a) => a.startEpoch],
  ['start_event_id', 'text', (a) => a.startEventId],
  ['start_sequence', 'int8', (a) => a.startSequence],
  ['end_ms', 'int8', (a) => a.endMs],
  ['end_epoch', 'int4', (a) => a.endEpoch],
  ['end_event_id', 'text', (a) => a.endEventId],
  ['end_sequence', 'int8', (a) => a.endSequence],
  ['end_reason', 'text', (a) => a.endReason],
  ['interrupted', 'bool', (a) => a.interrupted],
  ['stale_reports', 'int4', (a) => a.staleReports],
  ['closed_event_id', 'text', (a) => a.closedEventId],
  ['closed_sequence', 'int8', (a) => a.closedSequence],
  ['gpu_ms', 'int8', (a) => a.gpuMs],
];

const hourlyColumns: Array<[string, string, (h: HourlyUsage) => unknown]> = [
  ['tenant_id', 'text', (h) => h.tenantId],
  ['project_id', 'text', (h) => h.projectId],
  ['job_id', 'text', (h) => h.jobId],
  ['subtask_id', 'text', (h) => h.subtaskId],
  ['attempt', 'int4', (h) => h.attempt],
  ['lease_id', 'text', (h) => h.leaseId],
  ['allocation_id', 'text', (h) => h.allocationId],
  ['gpu_model', 'text', (h) => h.gpuModel],
  ['capacity_type', 'text', (h) => h.capacityType],
  ['hour_start', 'timestamptz', (h) => new Date(h.hourStartMs).toISOString()],
  ['gpu_ms', 'int8', (h) => h.gpuMs],
  ['interrupted_gpu_ms', 'int8', (h) => h.interruptedGpuMs],
];

/** `SELECT * FROM unnest($1::text[], $2::int8[], …)`: one statement, one parameter per column. */
function unnestRows<T>(columns: Array<[string, string, (row: T) => unknown]>, rows: readonly T[]): RawBuilder<unknown> {
  const arrays = columns.map(([, type, get]) => sql`${rows.map(get)}::${sql.raw(type)}[]`);
  return sql`SELECT * FROM unnest(${sql.join(arrays)}) AS r(${sql.join(columns.map(([name]) => sql.ref(name)))})`;
}

/** The UsageRecorded event of a closed allocation: id derived from the closing event and the allocation. */
export function usageRecordedFor(publisher: EventPublisher, closure: Closure): DomainEvent<'UsageRecorded'> {
  const a = closure.allocation;
  const id = deriveId(closure.closingEvent.id, `usage:${a.key}`);
  const sourceSequences = [...new Set([a.placedSequence, a.startSequence, a.endSequence, closure.closingSequence].filter((s): s is number => s !== null))].sort((x, y) => x - y);
  return publisher.build(
    'UsageRecorded',
    {
      usageId: id,
      tenantId: a.tenantId!,
      projectId: a.projectId!,
      ...(a.jobId ? { jobId: a.jobId } : {}),
      ...(a.subtaskId ? { subtaskId: a.subtaskId, attempt: a.attempt } : {}),
      ...(a.leaseId ? { leaseId: a.leaseId } : {}),
      gpuModel: a.gpuModel!,
      capacityType: a.capacityType!,
      gpus: a.gpus!,
      startAt: new Date(a.startMs!).toISOString(),
      endAt: new Date(Math.max(a.endMs!, a.startMs!)).toISOString(),
      gpuMs: a.gpuMs!,
      interrupted: a.interrupted,
      sourceSequences,
    },
    {
      id,
      time: closure.closingEvent.time,
      tenantId: a.tenantId,
      correlationId: closure.closingEvent.correlationid,
      causationId: closure.closingEvent.id,
    },
  );
}

/**
 * The usage projection: loads the allocations a batch touches in one query, folds the batch in
 * memory (pure), then writes changed allocations and hourly aggregates with one multi-row
 * statement each. Live, it publishes UsageRecorded for every allocation that closed before the
 * transaction commits; a retried batch republishes the same ids and the bus drops them.
 */
export class UsageProjection implements Projection {
  readonly name = USAGE_PROJECTION;
  readonly types = new Set(usageEventTypes);

  constructor(private readonly deps: UsageProjectionDeps = {}) {}

  async apply(trx: ProjectionTransaction, events: StoredEvent[], context: ProjectionContext): Promise<void> {
    const table = (name: (typeof usageTables)[number]) => sql.table(context.table(name));
    const keys = new Set<string>();
    const lostNodes = new Set<string>();
    const nodeLostIds: string[] = [];
    const externalSequences: number[] = [];
    for (const { event, sequence } of events) {
      for (const key of keysOf(event)) keys.add(key);
      if (event.type === 'NodeLost') {
        lostNodes.add(event.data.nodeId);
        nodeLostIds.push(event.id);
      }
      if (event.type === 'ExternalAllocationStarted' || event.type === 'ExternalAllocationStopped') externalSequences.push(sequence);
    }

    if (!context.live) {
      // A rebuild's commits need not wait for the WAL flush: a crash loses the last batches and
      // their checkpoint together, and the rebuild resumes before them. Atomicity is unchanged.
      await sql`SET LOCAL synchronous_commit TO off`.execute(trx);
    }
    const allocations = new Map<string, Allocation>();
    if (keys.size || lostNodes.size) {
      const byNode = lostNodes.size ? sql`OR (node_id = ANY(${[...lostNodes]}::text[]) AND end_ms IS NULL)` : sql``;
      const { rows } = await sql<Row>`SELECT * FROM ${table('metering_allocations')} WHERE allocation_key = ANY(${[...keys]}::text[]) ${byNode}`.execute(trx);
      for (const row of rows) allocations.set(row.allocation_key as string, fromRow(row));
    }
    const loaded = new Set(allocations.keys());
    const appliedNodeLost = new Set<string>();
    if (nodeLostIds.length) {
      const { rows } = await sql<{ event_id: string }>`SELECT event_id FROM ${table('metering_applied_events')} WHERE event_id = ANY(${nodeLostIds}::text[])`.execute(trx);
      for (const row of rows) appliedNodeLost.add(row.event_id);
    }
    const streamTimeMs = externalSequences.length && this.deps.streamTimes ? await this.deps.streamTimes(externalSequences) : new Map<number, number>();
    const horizon = this.deps.horizon ?? DEFAULT_LATENESS_HORIZON;

    const out = foldUsage(events, { allocations, appliedNodeLost, streamTimeMs, horizon: { backMs: horizon.backMs + STREAM_TIME_GRACE_MS, aheadMs: horizon.aheadMs } });

    const changed = [...out.changed].map((key) => allocations.get(key)!);
    // Rows the batch created are inserted; rows it loaded are updated (no speculative upserts).
    const created = changed.filter((a) => !loaded.has(a.key));
    const updated = changed.filter((a) => loaded.has(a.key));
    const allocationList = sql.join(allocationColumns.map(([name]) => sql.ref(name)));
    if (created.length) {
      await sql`INSERT INTO ${table('metering_allocations')} (${allocationList}) ${unnestRows(allocationColumns, created)}`.execute(trx);
    }
    if (updated.length) {
      const assignments = allocationColumns.slice(1).map(([name]) => sql`${sql.ref(name)} = r.${sql.ref(name)}`);
      await sql`
        UPDATE ${table('metering_allocations')} AS t SET ${sql.join(assignments)}
        FROM (${unnestRows(allocationColumns, updated)}) AS r
        WHERE t.allocation_key = r.allocation_key`.execute(trx);
    }
    // Each hourly key belongs to one allocation, which closes once: a plain insert, and a
    // duplicate key (an invariant broken) stalls the projection instead of counting twice.
    const hours = out.closures.flatMap((closure) => closure.hours);
    if (hours.length) {
      await sql`INSERT INTO ${table('metering_usage_hourly')} (${sql.join(hourlyColumns.map(([name]) => sql.ref(name)))}) ${unnestRows(hourlyColumns, hours)}`.execute(trx);
    }
    if (out.jobObservations.length) {
      const o = out.jobObservations;
      await sql`
        INSERT INTO ${table('metering_job_observations')} (job_id, tenant_id, project_id, outcome, gpu_ms_observed, completed_at, event_id, sequence)
        SELECT * FROM unnest(${o.map((x) => x.jobId)}::text[], ${o.map((x) => x.tenantId)}::text[], ${o.map((x) => x.projectId)}::text[], ${o.map((x) => x.outcome)}::text[],
          ${o.map((x) => x.gpuMsObserved)}::int8[], ${o.map((x) => new Date(x.completedAtMs).toISOString())}::timestamptz[], ${o.map((x) => x.eventId)}::text[], ${o.map((x) => x.sequence)}::int8[])
        ON CONFLICT (job_id) DO NOTHING`.execute(trx);
    }
    if (out.nodeLostApplied.length) {
      const n = out.nodeLostApplied;
      await sql`INSERT INTO ${table('metering_applied_events')} (event_id, sequence) SELECT * FROM unnest(${n.map((x) => x.eventId)}::text[], ${n.map((x) => x.sequence)}::int8[]) ON CONFLICT DO NOTHING`.execute(trx);
    }
    if (out.rejections.length) {
      const r = out.rejections;
      await sql`
        INSERT INTO ${table('metering_rejected_events')} (event_id, sequence, type, tenant_id, reason)
        SELECT * FROM unnest(${r.map((x) => x.eventId)}::text[], ${r.map((x) => x.sequence)}::int8[], ${r.map((x) => x.type)}::text[], ${r.map((x) => x.tenantId)}::text[], ${r.map((x) => x.reason)}::text[])
        ON CONFLICT DO NOTHING`.execute(trx);
    }
    if (out.eventTimeMaxMs !== null) {
      await sql`
        INSERT INTO ${table('metering_state')} (id, event_time_max_ms) VALUES (1, ${out.eventTimeMaxMs})
        ON CONFLICT (id) DO UPDATE SET event_time_max_ms = greatest(${table('metering_state')}.event_time_max_ms, excluded.event_time_max_ms)`.execute(trx);
    }
    if (context.live && this.deps.publisher && out.closures.length) {
      // Before the commit: a crash after publishing repeats the batch, which republishes the same ids.
      await this.deps.publisher.publishAll(out.closures.map((closure) => usageRecordedFor(this.deps.publisher!, closure)));
    }
  }
}

/** Stream times from JetStream (`STREAM.MSG.GET`), a bounded number in flight. */
export function streamTimesFrom(jsm: { streams: { getMessage(stream: string, query: { seq: number }): Promise<{ time: Date } | null> } }, stream: string) {
  return async (sequences: number[]): Promise<Map<number, number>> => {
    const times = new Map<number, number>();
    for (let i = 0; i < sequences.length; i += STREAM_TIME_LOOKUPS_IN_FLIGHT_MAX) {
      const slice = sequences.slice(i, i + STREAM_TIME_LOOKUPS_IN_FLIGHT_MAX);
      const messages = await Promise.all(slice.map((seq) => jsm.streams.getMessage(stream, { seq })));
      messages.forEach((m, j) => {
        if (m) times.set(slice[j]!, m.time.getTime());
      });
    }
    return times;
  };
}
