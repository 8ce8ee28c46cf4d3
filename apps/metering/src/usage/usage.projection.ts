import { sql } from 'kysely';
import { DEFAULT_LATENESS_HORIZON, deriveId, streamTimeHorizon, type DomainEvent, type LatenessHorizon, type StoredEvent } from '@fastgpu/contracts';
import { DeliverPolicy } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Bus, EventPublisher, Projection, ProjectionContext, ProjectionTransaction } from '@fastgpu/messaging';
import { copyRows } from '@fastgpu/db';
import { recordRejectedNodeReport } from '@fastgpu/observability';
import { publishBatch } from '../external/ack-counting-publisher';
import { KeyFilter } from './key-filter';
import { allocationColumns, columnNames, copyPayload, hourlyColumns, hourlyCopyColumns, unnestRows } from './usage.bulk-rows';
import { foldUsage } from './usage.fold';
import { keysOf, usageEventTypes, type Allocation, type AllocationKind, type Closure, type EndReason } from './usage.model';

/** The projection's tables, rebuilt together (libs/replay copies each as `<name>_rebuild`). */
export const usageTables = ['metering_allocations', 'metering_usage_hourly', 'metering_job_observations', 'metering_applied_events', 'metering_rejected_events', 'metering_state', 'metering_node_epochs'] as const;

export const USAGE_PROJECTION = 'usage';

/** Messages buffered while reading stream times of a batch's external events. */
const STREAM_TIME_READ_BUFFER_MAX = 5000;
const STREAM_TIME_READ_TIMEOUT_MS = 30_000;
/** UsageRecorded events awaiting their PubAcks at once. */
const USAGE_PUBLISH_BATCH_MAX = 1000;

export interface UsageProjectionDeps {
  /** Publishes UsageRecorded (live only). */
  publisher?: EventPublisher;
  /**
   * With a connection, a batch's UsageRecorded events go out as one pipelined publish counting
   * PubAcks (same ids, headers and checks) instead of a request per event.
   */
  nc?: NatsConnection;
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
    late: Boolean(r.late),
    lateReceivedMs: num(r.late_received_ms),
    staleReports: Number(r.stale_reports),
    closedEventId: (r.closed_event_id as string | null) ?? null,
    closedSequence: num(r.closed_sequence),
    gpuMs: num(r.gpu_ms),
  };
}

/**
 * Bulk writes as one Postgres array literal per column, expanded by `unnest`: one statement per
 * batch, built with plain string concatenation (no per-row objects), and parsed by Postgres in
 * C. Much cheaper on both sides than one JSON object per row, which mattered for replay speed.
 */
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
 * The LateUsageRecorded event of a late external allocation that closed: the same derivation as
 * UsageRecorded under another discriminator, so the two can never share an id.
 */
export function lateUsageRecordedFor(publisher: EventPublisher, closure: Closure): DomainEvent<'LateUsageRecorded'> {
  const a = closure.allocation;
  const id = lateUsageIdFor(closure.closingEvent.id, a.key);
  const sourceSequences = [...new Set([a.placedSequence, a.startSequence, a.endSequence, closure.closingSequence].filter((s): s is number => s !== null))].sort((x, y) => x - y);
  return publisher.build(
    'LateUsageRecorded',
    {
      usageId: id,
      tenantId: a.tenantId!,
      projectId: a.projectId!,
      allocationId: a.allocationId,
      gpuModel: a.gpuModel!,
      capacityType: a.capacityType!,
      gpus: a.gpus!,
      startAt: new Date(a.startMs!).toISOString(),
      endAt: new Date(Math.max(a.endMs!, a.startMs!)).toISOString(),
      gpuMs: a.gpuMs!,
      reportedLateAt: new Date(a.lateReceivedMs!).toISOString(),
      sourceSequences,
    },
    {
      id,
      time: closure.closingEvent.time,
      tenantId: a.tenantId,
      correlationId: closure.closingEvent.correlationid,
      causationId: closure.closingEvent.id,
      ...(closure.closingEvent.traceparent ? { traceparent: closure.closingEvent.traceparent } : {}),
    },
  );
}

/** The id of the LateUsageRecorded of an allocation closed by `closingEventId` (the late-usage report shows it). */
export function lateUsageIdFor(closingEventId: string, allocationKey: string): string {
  return deriveId(closingEventId, `late-usage:${allocationKey}`);
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

  /** Allocation keys written per table, for tables this process owns (context.ownsTables). */
  private readonly written = new Map<string, KeyFilter>();

  constructor(private readonly deps: UsageProjectionDeps = {}) {}

  private writtenKeys(tableName: string): KeyFilter {
    let filter = this.written.get(tableName);
    if (!filter) {
      filter = new KeyFilter();
      this.written.set(tableName, filter);
    }
    return filter;
  }

  async apply(trx: ProjectionTransaction, events: StoredEvent[], context: ProjectionContext): Promise<void> {
    const table = (name: (typeof usageTables)[number]) => sql.table(context.table(name));
    const keys = new Set<string>();
    /** Nodes lost or registered again in the batch: their open allocations end. */
    const endingNodes = new Set<string>();
    const nodeEventIds: string[] = [];
    /** Nodes whose agent epoch the batch may raise (registered or recovered). */
    const epochNodes = new Set<string>();
    const externalSequences: number[] = [];
    const streamTimeMs = new Map<number, number>();
    for (const { event, sequence, receivedAtMs } of events) {
      for (const key of keysOf(event)) keys.add(key);
      if (event.type === 'NodeLost' || event.type === 'NodeRegistered') {
        endingNodes.add(event.data.nodeId);
        nodeEventIds.push(event.id);
      }
      if (event.type === 'NodeRegistered' || event.type === 'NodeRecovered') epochNodes.add(event.data.nodeId);
      if (event.type === 'ExternalAllocationStarted' || event.type === 'ExternalAllocationStopped' || event.type === 'ExternalAllocationReportedLate') {
        // The runner and the replay pass the stream time each message was stored at; read it
        // from the log (one consumer per batch) only for events that come without it.
        if (receivedAtMs !== undefined) streamTimeMs.set(sequence, receivedAtMs);
        else externalSequences.push(sequence);
      }
    }

    if (!context.live) {
      // A rebuild's commits need not wait for the WAL flush: a crash loses the last batches and
      // their checkpoint together, and the rebuild resumes before them. Atomicity is unchanged.
      await sql`SET LOCAL synchronous_commit TO off`.execute(trx);
    }
    const allocations = new Map<string, Allocation>();
    // Tables this process filled from empty: keys it never wrote cannot be there, so only the
    // others are looked up (most keys of a batch are new allocations).
    const written = context.ownsTables ? this.writtenKeys(context.table('metering_allocations')) : undefined;
    const lookUp = written ? [...keys].filter((key) => written.mightContain(key)) : [...keys];
    if (lookUp.length || endingNodes.size) {
      const byNode = endingNodes.size ? sql`OR (node_id = ANY(${[...endingNodes]}::text[]) AND end_ms IS NULL)` : sql``;
      const { rows } = await sql<Row>`SELECT * FROM ${table('metering_allocations')} WHERE allocation_key = ANY(${lookUp}::text[]) ${byNode}`.execute(trx);
      for (const row of rows) allocations.set(row.allocation_key as string, fromRow(row));
    }
    const loaded = new Set(allocations.keys());
    const appliedNodeEvents = new Set<string>();
    if (nodeEventIds.length) {
      const { rows } = await sql<{ event_id: string }>`SELECT event_id FROM ${table('metering_applied_events')} WHERE event_id = ANY(${nodeEventIds}::text[])`.execute(trx);
      for (const row of rows) appliedNodeEvents.add(row.event_id);
    }
    const nodeEpochs = new Map<string, number>();
    if (epochNodes.size) {
      const { rows } = await sql<{ node_id: string; agent_epoch: string }>`SELECT node_id, agent_epoch FROM ${table('metering_node_epochs')} WHERE node_id = ANY(${[...epochNodes]}::text[])`.execute(trx);
      for (const row of rows) nodeEpochs.set(row.node_id, Number(row.agent_epoch));
    }
    if (externalSequences.length && this.deps.streamTimes) for (const [sequence, ms] of await this.deps.streamTimes(externalSequences)) streamTimeMs.set(sequence, ms);
    const horizon = this.deps.horizon ?? DEFAULT_LATENESS_HORIZON;

    const out = foldUsage(events, { allocations, appliedNodeEvents, nodeEpochs, streamTimeMs, horizon: streamTimeHorizon(horizon) });

    const changed = [...out.changed].map((key) => allocations.get(key)!);
    // Rows the batch created are inserted; rows it loaded are updated (no speculative upserts).
    const created = changed.filter((a) => !loaded.has(a.key));
    const updated = changed.filter((a) => loaded.has(a.key));
    // Remembered before the insert: if the batch rolls back, a key remembered in vain only costs a look-up.
    if (written) for (const a of created) written.add(a.key);
    if (created.length && context.bulkCopy) {
      await copyRows(trx, context.table('metering_allocations'), allocationColumns.map((c) => c.name), copyPayload(allocationColumns, created));
    } else if (created.length) {
      await sql`INSERT INTO ${table('metering_allocations')} (${columnNames(allocationColumns)}) SELECT * FROM ${unnestRows(allocationColumns, created)}`.execute(trx);
    }
    if (updated.length) {
      const assignments = allocationColumns.slice(1).map(({ name }) => sql`${sql.ref(name)} = r.${sql.ref(name)}`);
      await sql`
        UPDATE ${table('metering_allocations')} AS t SET ${sql.join(assignments)}
        FROM ${unnestRows(allocationColumns, updated)}
        WHERE t.allocation_key = r.allocation_key`.execute(trx);
    }
    // Each hourly key belongs to one allocation, which closes once: a plain insert, and a
    // duplicate key (an invariant broken) stalls the projection instead of counting twice.
    // Late allocations are never billable usage: no hourly rows.
    const hours = out.closures.flatMap((closure) => (closure.allocation.late ? [] : closure.hours));
    if (hours.length && context.bulkCopy) {
      await copyRows(trx, context.table('metering_usage_hourly'), hourlyCopyColumns.map((c) => c.name), copyPayload(hourlyCopyColumns, hours));
    } else if (hours.length) {
      const names = hourlyColumns.map(({ name }) => (name === 'hour_start' ? sql`to_timestamp(r.hour_start / 1000)` : sql`r.${sql.ref(name)}`));
      await sql`INSERT INTO ${table('metering_usage_hourly')} (${columnNames(hourlyColumns)}) SELECT ${sql.join(names)} FROM ${unnestRows(hourlyColumns, hours)}`.execute(trx);
    }
    if (out.jobObservations.length) {
      const o = out.jobObservations;
      await sql`
        INSERT INTO ${table('metering_job_observations')} (job_id, tenant_id, project_id, outcome, gpu_ms_observed, completed_at, event_id, sequence)
        SELECT * FROM unnest(${o.map((x) => x.jobId)}::text[], ${o.map((x) => x.tenantId)}::text[], ${o.map((x) => x.projectId)}::text[], ${o.map((x) => x.outcome)}::text[],
          ${o.map((x) => x.gpuMsObserved)}::int8[], ${o.map((x) => new Date(x.completedAtMs).toISOString())}::timestamptz[], ${o.map((x) => x.eventId)}::text[], ${o.map((x) => x.sequence)}::int8[])
        ON CONFLICT (job_id) DO NOTHING`.execute(trx);
    }
    if (out.nodeEventsApplied.length) {
      const n = out.nodeEventsApplied;
      await sql`INSERT INTO ${table('metering_applied_events')} (event_id, sequence) SELECT * FROM unnest(${n.map((x) => x.eventId)}::text[], ${n.map((x) => x.sequence)}::int8[]) ON CONFLICT DO NOTHING`.execute(trx);
    }
    if (out.nodeEpochsChanged.size) {
      const nodes = [...out.nodeEpochsChanged];
      await sql`
        INSERT INTO ${table('metering_node_epochs')} (node_id, agent_epoch) SELECT * FROM unnest(${nodes}::text[], ${nodes.map((node) => nodeEpochs.get(node)!)}::int8[])
        ON CONFLICT (node_id) DO UPDATE SET agent_epoch = greatest(${table('metering_node_epochs')}.agent_epoch, excluded.agent_epoch)`.execute(trx);
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
    // Node reports the shared report rule refused: counted and logged once, when live.
    if (context.live) for (const rejected of out.reportRejections) recordRejectedNodeReport({ consumer: 'metering-usage', ...rejected });
    if (context.live && this.deps.publisher && out.closures.length) {
      // Before the commit: a crash after publishing repeats the batch, which republishes the same ids.
      const usage = out.closures.map((closure) => (closure.allocation.late ? lateUsageRecordedFor(this.deps.publisher!, closure) : usageRecordedFor(this.deps.publisher!, closure)));
      if (this.deps.nc) {
        for (let start = 0; start < usage.length; start += USAGE_PUBLISH_BATCH_MAX) await publishBatch(this.deps.nc, usage.slice(start, start + USAGE_PUBLISH_BATCH_MAX));
      } else {
        await this.deps.publisher.publishAll(usage);
      }
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
