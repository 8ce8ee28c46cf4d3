import { sql, type RawBuilder } from 'kysely';
import { deriveId, type DomainEvent, type StoredEvent } from '@fastgpu/contracts';
import { DeliverPolicy } from '@nats-io/jetstream';
import type { Bus, EventPublisher, Projection, ProjectionContext, ProjectionTransaction } from '@fastgpu/messaging';
import { DEFAULT_LATENESS_HORIZON, foldUsage, keysOf, usageEventTypes, type Allocation, type AllocationKind, type Closure, type EndReason, type HourlyUsage, type LatenessHorizon } from './usage.fold';

/** The projection's tables, rebuilt together (libs/replay copies each as `<name>_rebuild`). */
export const usageTables = ['metering_allocations', 'metering_usage_hourly', 'metering_job_observations', 'metering_applied_events', 'metering_rejected_events', 'metering_state'] as const;

export const USAGE_PROJECTION = 'usage';

/**
 * Slack on the lateness horizon when the projection re-checks it against stream time: the HTTP
 * gateway checks at receipt and publishes moments later.
 */
const STREAM_TIME_GRACE_MS = 10 * 60_000;
/** Messages buffered while reading stream times of a batch's external events. */
const STREAM_TIME_READ_BUFFER_MAX = 5000;
const STREAM_TIME_READ_TIMEOUT_MS = 30_000;

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
    placedMs: num(r.placed_ms),
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

/** Columns of metering_allocations, in one place for the bulk writes. */
const allocationColumns: Array<[string, (a: Allocation) => unknown]> = [
  ['allocation_key', (a) => a.key],
  ['kind', (a) => a.kind],
  ['tenant_id', (a) => a.tenantId],
  ['project_id', (a) => a.projectId],
  ['job_id', (a) => a.jobId],
  ['subtask_id', (a) => a.subtaskId],
  ['attempt', (a) => a.attempt],
  ['lease_id', (a) => a.leaseId],
  ['allocation_id', (a) => a.allocationId],
  ['node_id', (a) => a.nodeId],
  ['gpu_model', (a) => a.gpuModel],
  ['gpus', (a) => a.gpus],
  ['capacity_type', (a) => a.capacityType],
  ['lease_epoch', (a) => a.leaseEpoch],
  ['placed_event_id', (a) => a.placedEventId],
  ['placed_sequence', (a) => a.placedSequence],
  ['placed_ms', (a) => a.placedMs],
  ['start_ms', (a) => a.startMs],
  ['start_epoch', (a) => a.startEpoch],
  ['start_event_id', (a) => a.startEventId],
  ['start_sequence', (a) => a.startSequence],
  ['end_ms', (a) => a.endMs],
  ['end_epoch', (a) => a.endEpoch],
  ['end_event_id', (a) => a.endEventId],
  ['end_sequence', (a) => a.endSequence],
  ['end_reason', (a) => a.endReason],
  ['interrupted', (a) => a.interrupted],
  ['stale_reports', (a) => a.staleReports],
  ['closed_event_id', (a) => a.closedEventId],
  ['closed_sequence', (a) => a.closedSequence],
  ['gpu_ms', (a) => a.gpuMs],
];

const hourlyColumns: Array<[string, (h: HourlyUsage) => unknown]> = [
  ['tenant_id', (h) => h.tenantId],
  ['project_id', (h) => h.projectId],
  ['job_id', (h) => h.jobId],
  ['subtask_id', (h) => h.subtaskId],
  ['attempt', (h) => h.attempt],
  ['lease_id', (h) => h.leaseId],
  ['allocation_id', (h) => h.allocationId],
  ['gpu_model', (h) => h.gpuModel],
  ['capacity_type', (h) => h.capacityType],
  ['hour_start', (h) => new Date(h.hourStartMs).toISOString()],
  ['gpu_ms', (h) => h.gpuMs],
  ['interrupted_gpu_ms', (h) => h.interruptedGpuMs],
];

/**
 * Rows as one JSON parameter expanded by Postgres (`json_populate_recordset` over the table's
 * row type): one statement per batch, and far cheaper to serialise than one array per column.
 */
function jsonRows<T>(tableName: string, columns: ReadonlyArray<[string, (row: T) => unknown]>, rows: readonly T[]): RawBuilder<unknown> {
  const objects = rows.map((row) => {
    const object: Record<string, unknown> = {};
    for (const [name, get] of columns) object[name] = get(row);
    return object;
  });
  return sql`SELECT * FROM json_populate_recordset(NULL::${sql.table(tableName)}, ${JSON.stringify(objects)}::json)`;
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
      // Usage continues the trace of the event that closed it (the job's), through to billing.
      ...(closure.closingEvent.traceparent ? { traceparent: closure.closingEvent.traceparent } : {}),
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
    const allocationTable = context.table('metering_allocations');
    if (created.length) {
      await sql`INSERT INTO ${table('metering_allocations')} ${jsonRows(allocationTable, allocationColumns, created)}`.execute(trx);
    }
    if (updated.length) {
      const assignments = allocationColumns.slice(1).map(([name]) => sql`${sql.ref(name)} = r.${sql.ref(name)}`);
      await sql`
        UPDATE ${table('metering_allocations')} AS t SET ${sql.join(assignments)}
        FROM (${jsonRows(allocationTable, allocationColumns, updated)}) AS r
        WHERE t.allocation_key = r.allocation_key`.execute(trx);
    }
    // Each hourly key belongs to one allocation, which closes once: a plain insert, and a
    // duplicate key (an invariant broken) stalls the projection instead of counting twice.
    const hours = out.closures.flatMap((closure) => closure.hours);
    if (hours.length) {
      await sql`INSERT INTO ${table('metering_usage_hourly')} ${jsonRows(context.table('metering_usage_hourly'), hourlyColumns, hours)}`.execute(trx);
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

/**
 * When the log stored the external events at these sequences: one filtered ordered consumer
 * over the batch's range (external subjects only) reads their stream timestamps.
 */
export function streamTimesFrom(bus: Bus) {
  return async (sequences: number[]): Promise<Map<number, number>> => {
    const times = new Map<number, number>();
    if (!sequences.length) return times;
    const first = Math.min(...sequences);
    const last = Math.max(...sequences);
    const consumer = await bus.js.consumers.get(bus.topology.streams.events, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: first,
      filter_subjects: `${bus.topology.prefix}.evt.external.>`,
    });
    const messages = await consumer.consume({ max_messages: Math.min(STREAM_TIME_READ_BUFFER_MAX, sequences.length + 1) });
    const timeout = setTimeout(() => void messages.close(), STREAM_TIME_READ_TIMEOUT_MS);
    try {
      for await (const m of messages) {
        times.set(m.seq, Number(m.timestampNanos / 1_000_000n));
        if (m.seq >= last || m.info.pending === 0) break;
      }
    } finally {
      clearTimeout(timeout);
      await messages.close().catch(() => undefined);
    }
    for (const seq of sequences) if (!times.has(seq)) throw new Error(`no stream time for external event at sequence ${seq}`);
    return times;
  };
}
