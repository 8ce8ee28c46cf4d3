import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import { parseTraceParent } from '@opentelemetry/core';
import type { NatsConnection } from '@nats-io/transport-node';
import { canonicalJson, compiledReject, compileRaw, DEFAULT_LATENESS_HORIZON, deriveId, eventCatalogue, EXTERNAL_ALLOCATION_GPUS_MAX, makeEvent, singleLineText, subjectFor, sha256Hex, type DomainEvent, type EventData, type LatenessHorizon } from '@fastgpu/contracts';
import type { MeteringDatabase } from '@fastgpu/db';
import type { EventPublisher } from '@fastgpu/messaging';
import { currentTraceparent } from '@fastgpu/telemetry';
import { publishBatch } from './ack-counting-publisher';

/** Events one `POST /v1/events` request may carry. */
export const EXTERNAL_EVENTS_PER_REQUEST_MAX = 1000;

/** Events published per acknowledged batch. */
const PUBLISH_BATCH_MAX = 1000;

/** Longest CloudEvent `id`, `source`, `subject` and `tenantid` (the envelope's own bounds). */
const CLOUDEVENT_ID_LENGTH_MAX = 128;
const CLOUDEVENT_SOURCE_LENGTH_MAX = 256;
const CLOUDEVENT_SUBJECT_LENGTH_MAX = 256;
const TRACEPARENT_LENGTH_MAX = 128;

export const externalEventTypes = ['ExternalAllocationStarted', 'ExternalAllocationStopped'] as const;
type ExternalType = (typeof externalEventTypes)[number];

/**
 * The namespace of internal ids of external events: a constant that no other derivation uses as
 * its cause (platform causes are UUIDv7 event ids or nameId's zero clock; this one is not a v7).
 */
export const EXTERNAL_EVENT_ID_NAMESPACE = '5c0e9d1a-3b7f-4c62-9e84-a1f2d3c4b5e6';

/**
 * The internal event id (and `Nats-Msg-Id`) of an external event: derived from (tenant, source,
 * id) — the identity CloudEvents gives an event, scoped to the tenant of the API key. The three
 * parts are JSON-encoded, so no choice of source and id by one tenant names another tuple, and
 * the namespace keeps the result apart from every platform id: hitting another tenant's or the
 * platform's event id would need a SHA-256 collision. The same triple always gives the same id,
 * so a retry is deduplicated on the bus too.
 */
export function externalEventId(tenantId: string, source: string, id: string): string {
  return deriveId(EXTERNAL_EVENT_ID_NAMESPACE, JSON.stringify([tenantId, source, id]));
}

/**
 * A W3C `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header), parsed strictly:
 * lowercase hex fields, version not `ff`, trace and parent ids not all zero, nothing after the
 * flags for version `00`, and no surrounding spaces or control characters (OpenTelemetry's
 * parser tolerates one space at either end; we do not). Returns the reason it is not one.
 */
export function traceparentProblem(value: string): string | undefined {
  if (!singleLineTraceparent.safeParse(value).success) return 'must not contain control characters';
  if (/\s/.test(value)) return 'must not contain spaces';
  if (!parseTraceParent(value)) return 'not a W3C traceparent (version-traceid-parentid-flags in lowercase hex, ids not all zero)';
  return undefined;
}
const singleLineTraceparent = singleLineText(TRACEPARENT_LENGTH_MAX);

/**
 * A structured-mode CloudEvent as producers send it (binary mode is turned into this shape by
 * the controller); tenant comes from the API key. Text attributes follow the shared text rule:
 * no control characters (so CR/LF cannot reach a header or a log line), no lone surrogates.
 */
const instantWithOffset = z.iso.datetime({ offset: true });
export const externalCloudEventSchema = z.object({
  specversion: z.literal('1.0'),
  id: singleLineText(CLOUDEVENT_ID_LENGTH_MAX, 1),
  source: singleLineText(CLOUDEVENT_SOURCE_LENGTH_MAX, 1),
  type: z.enum(externalEventTypes),
  time: instantWithOffset.optional(),
  subject: singleLineText(CLOUDEVENT_SUBJECT_LENGTH_MAX).optional(),
  datacontenttype: z.literal('application/json').optional(),
  tenantid: singleLineText(CLOUDEVENT_ID_LENGTH_MAX).optional(),
  traceparent: z.string().max(TRACEPARENT_LENGTH_MAX).optional(),
  data: z.record(z.string(), z.unknown()),
});

type ExternalCloudEvent = z.infer<typeof externalCloudEventSchema>;

/**
 * The envelope schema compiled (libs/contracts compiled-schema.ts): it accepts exactly what zod
 * accepts, with zod's output, several times cheaper. It only says accepted or rejected; for a
 * rejection zod runs again and gives the field and the reason text, so 4xx answers are zod's.
 */
const compiledCloudEvent = compileRaw(externalCloudEventSchema);

interface Problem {
  field: string;
  reason: string;
}

function parseCloudEvent(raw: unknown): { ok: true; event: ExternalCloudEvent } | { ok: false; problem: Problem } {
  const fast = compiledCloudEvent(raw);
  if (fast !== compiledReject) return { ok: true, event: fast as ExternalCloudEvent };
  const parsed = externalCloudEventSchema.safeParse(raw);
  return parsed.success ? { ok: true, event: parsed.data } : { ok: false, problem: problemOf(parsed.error) };
}

/**
 * SHA-256 (hex) of what an external event says, compared when its (tenant, source, id) comes
 * again: `canonicalJson({ type, source, subject: subject ?? null, data })`, written with its keys
 * already in sorted order (data, source, subject, type), so only `data` goes through
 * canonicalJson (`@fastgpu/contracts`; `data` is the catalogue-validated payload, strings and
 * integers only, which it holds). `time` is left out on purpose: a retry that rebuilds the event (the SDKs stamp
 * a new `time`) is the same event; its producer times are in `data` and do count.
 */
export function payloadHash(type: string, source: string, subject: string | undefined, data: unknown): string {
  const text = `{"data":${canonicalJson(data)},"source":${JSON.stringify(source)},"subject":${subject === undefined ? 'null' : JSON.stringify(subject)},"type":${JSON.stringify(type)}}`;
  return sha256Hex(text);
}

/**
 * What happened to one event of a request:
 * - `accepted`: new, published to the log;
 * - `accepted-late`: new, but its producer time is older than the lateness horizon: recorded in
 *   the log as `ExternalAllocationReportedLate`, never metered into billable usage; finance sees
 *   it in the late-usage report and decides;
 * - `duplicate`: this (source, id) was already received from this tenant with the same type,
 *   source, subject and data; nothing is published again;
 * - `rejected`: invalid, with `field` and `reason`; nothing of it was recorded;
 * - `conflict`: this (source, id) was already received from this tenant with other content.
 */
export type IngestStatus = 'accepted' | 'accepted-late' | 'duplicate' | 'rejected' | 'conflict';
export interface IngestResult {
  /** The client's id, when the event had a string one. */
  id: string | null;
  index: number;
  status: IngestStatus;
  /** The internal event id (accepted, accepted-late and duplicate events). */
  eventId?: string;
  field?: string;
  reason?: string;
}

export interface IngestOutcome {
  results: IngestResult[];
  accepted: number;
  acceptedLate: number;
  duplicates: number;
  rejected: number;
  conflicts: number;
}

export interface Candidate {
  index: number;
  ceId: string;
  source: string;
  /** The event to publish: the report itself, or `ExternalAllocationReportedLate` for a late one. */
  event: DomainEvent<ExternalType | 'ExternalAllocationReportedLate'>;
  /** Older than the lateness horizon at receipt. */
  late: boolean;
  hash: string;
}

/** The log did not acknowledge a request's events: nothing of the request was recorded. */
export class LogUnavailableError extends Error {}

function problemOf(error: z.ZodError, prefix = ''): Problem {
  const fieldOf = (issue: z.core.$ZodIssue) => `${prefix}${issue.path.map(String).join('.')}`.replace(/\.$/, '') || '(root)';
  const reason = error.issues
    .slice(0, 3)
    .map((i) => `${fieldOf(i)}: ${i.message}`)
    .join('; ');
  return { field: fieldOf(error.issues[0]!), reason };
}

const idOf = (value: unknown): string | null => (typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string' ? (value as { id: string }).id : null);
const rejected = (raw: unknown, index: number, problem: Problem): IngestResult => ({ id: idOf(raw), index, status: 'rejected', field: problem.field, reason: problem.reason });

class ConflictRollback extends Error {}

/**
 * External usage ingestion: validates each CloudEvent (schema, text rule, traceparent, tenant,
 * not ahead of the receipt clock), keeps a report older than the lateness horizon as a late one
 * (never metered automatically), derives its internal id from (tenant, source, id),
 * and in one transaction records a receipt per (tenant, source, id) with a hash of what the event
 * says and publishes the new events before committing: a receipt exists only for a published
 * event (a failed publish rolls the receipts back), and a crash between publish and commit is
 * repaired by the client's retry (same internal id: the bus and the projection drop the copy).
 * A retry of a received event is a duplicate; the same (source, id) with other content is a
 * conflict, and then the whole request changes nothing.
 */
export class ExternalIngest {
  constructor(
    private readonly db: Kysely<MeteringDatabase>,
    private readonly publisher: EventPublisher,
    private readonly nc: NatsConnection,
    private readonly horizon: LatenessHorizon = DEFAULT_LATENESS_HORIZON,
  ) {}

  /**
   * `requestTraceparent` is the trace context of the request (an event without its own
   * traceparent carries it, as `EventPublisher.build` would give it): read once per request.
   */
  validate(raw: unknown, index: number, tenantId: string, nowMs: number, requestTraceparent: string | undefined = currentTraceparent()): Candidate | IngestResult {
    const parsed = parseCloudEvent(raw);
    if (!parsed.ok) return rejected(raw, index, parsed.problem);
    const ce = parsed.event;
    if (ce.traceparent !== undefined) {
      const problem = traceparentProblem(ce.traceparent);
      if (problem) return rejected(raw, index, { field: 'traceparent', reason: `traceparent: ${problem}` });
    }
    if (ce.tenantid !== undefined && ce.tenantid !== tenantId) return rejected(raw, index, { field: 'tenantid', reason: 'tenantid: does not match the API key' });
    if (ce.data.tenantId !== undefined && ce.data.tenantId !== tenantId) return rejected(raw, index, { field: 'data.tenantId', reason: 'data.tenantId: does not match the API key' });
    let event: DomainEvent<ExternalType>;
    const atField = ce.type === 'ExternalAllocationStarted' ? 'startedAt' : 'stoppedAt';
    const atValue = ce.data[atField];
    const atMs = typeof atValue === 'string' ? Date.parse(atValue) : Number.NaN;
    const id = externalEventId(tenantId, ce.source, ce.id);
    const data = { ...ce.data, tenantId } as never;
    try {
      // What EventPublisher.build does, with the trace context read once per request: makeEvent
      // validates the payload against the catalogue (one validation per event).
      event = makeEvent<ExternalType>(
        ce.type,
        data,
        {
          id,
          source: ce.source,
          time: ce.time ? new Date(Date.parse(ce.time)).toISOString() : typeof atValue === 'string' ? atValue : new Date(nowMs).toISOString(),
          tenantId,
          // The client's own id, for tracing a report back to its producer (never used as an id here).
          correlationId: ce.id,
          traceparent: ce.traceparent ?? requestTraceparent,
        },
        subjectFor(this.publisher.topology, ce.type, data),
      );
    } catch (error) {
      // Rare path: the catalogue's schema again, for the field and reason of each issue, named from the request's root.
      const check = eventCatalogue[ce.type].schema.safeParse(data);
      return rejected(raw, index, check.success ? { field: 'data', reason: `data: ${(error as Error).message}` } : problemOf(check.error, 'data.'));
    }
    if (event.type === 'ExternalAllocationStarted' && event.data.gpus > EXTERNAL_ALLOCATION_GPUS_MAX) return rejected(raw, index, { field: 'data.gpus', reason: `data.gpus: at most ${EXTERNAL_ALLOCATION_GPUS_MAX}` });
    const field = `data.${atField}`;
    if (atMs > nowMs + this.horizon.aheadMs) return rejected(raw, index, { field, reason: `${field}: more than ${this.horizon.aheadMs / 60_000} minutes ahead of receipt` });
    // The hash is of the report as sent, late or not: a retry compares with what the client said.
    const hash = payloadHash(ce.type, ce.source, ce.subject, event.data);
    if (atMs < nowMs - this.horizon.backMs) return { index, ceId: ce.id, source: ce.source, event: this.lateReport(event, nowMs), late: true, hash };
    return { index, ceId: ce.id, source: ce.source, event, late: false, hash };
  }

  /**
   * A report older than the horizon, kept as `ExternalAllocationReportedLate` under the same
   * internal id (one event per (tenant, source, id), late or not): the verdict is made once, here,
   * with the receipt time, and travels in the log, so the projection and a rebuild follow it.
   */
  private lateReport(report: DomainEvent<ExternalType>, nowMs: number): DomainEvent<'ExternalAllocationReportedLate'> {
    const receivedAt = new Date(nowMs).toISOString();
    let data: EventData<'ExternalAllocationReportedLate'>;
    if (report.type === 'ExternalAllocationStarted') {
      const d = report.data;
      data = { allocationId: d.allocationId, tenantId: d.tenantId, report: 'started', projectId: d.projectId, gpuModel: d.gpuModel, gpus: d.gpus, capacityType: d.capacityType, at: d.startedAt, receivedAt };
    } else {
      const d = report.data;
      data = { allocationId: d.allocationId, tenantId: d.tenantId, report: 'stopped', at: d.stoppedAt, receivedAt };
    }
    const meta = { id: report.id, source: report.source, time: report.time, tenantId: report.tenantid, correlationId: report.correlationid, ...(report.traceparent ? { traceparent: report.traceparent } : {}) };
    return makeEvent('ExternalAllocationReportedLate', data, meta, subjectFor(this.publisher.topology, 'ExternalAllocationReportedLate', data));
  }

  async ingest(raws: readonly unknown[], tenantId: string, now: Date): Promise<IngestOutcome> {
    if (raws.length > EXTERNAL_EVENTS_PER_REQUEST_MAX) throw new RangeError(`at most ${EXTERNAL_EVENTS_PER_REQUEST_MAX} events per request`);
    const nowMs = now.getTime();
    const results = new Array<IngestResult>(raws.length);
    const candidates: Candidate[] = [];
    // Keyed by the internal id: one per (tenant, source, id).
    const firstById = new Map<string, Candidate>();
    const requestTraceparent = currentTraceparent();
    raws.forEach((raw, index) => {
      const checked = this.validate(raw, index, tenantId, nowMs, requestTraceparent);
      if (!('event' in checked)) {
        results[index] = checked;
        return;
      }
      const first = firstById.get(checked.event.id);
      if (first) {
        results[index] =
          first.hash === checked.hash
            ? { id: checked.ceId, index, status: 'duplicate', eventId: checked.event.id }
            : { id: checked.ceId, index, status: 'conflict', field: 'id', reason: 'id: repeated in this request (same source) with other content' };
        return;
      }
      firstById.set(checked.event.id, checked);
      candidates.push(checked);
    });

    if (candidates.length && !results.some((r) => r?.status === 'conflict')) {
      try {
        await this.db.transaction().execute(async (trx) => {
          // Columns travel as JSON arrays (JSON.stringify is native; pg's array literal escapes
          // element by element in JavaScript), zipped back into rows in order.
          const column = (get: (c: Candidate) => string) => JSON.stringify(candidates.map(get));
          const inserted = await sql<{ event_id: string }>`
            INSERT INTO metering_external_event_receipts (tenant_id, source, ce_id, event_id, payload_sha256, received_at)
            SELECT ${tenantId}, source, ce_id, event_id, hash, ${now.toISOString()}::timestamptz
            FROM ROWS FROM (json_array_elements_text(${column((c) => c.source)}::json), json_array_elements_text(${column((c) => c.ceId)}::json),
              json_array_elements_text(${column((c) => c.event.id)}::json), json_array_elements_text(${column((c) => c.hash)}::json)) AS r(source, ce_id, event_id, hash)
            ON CONFLICT DO NOTHING
            RETURNING event_id`.execute(trx);
          const fresh = new Set(inserted.rows.map((r) => r.event_id));
          const seen = candidates.filter((c) => !fresh.has(c.event.id));
          const previous = new Map<string, string>();
          if (seen.length) {
            // The internal id is a function of (tenant, source, id): looking it up within the tenant finds that receipt.
            const { rows } = await sql<{ event_id: string; payload_sha256: string }>`
              SELECT event_id, payload_sha256 FROM metering_external_event_receipts
              WHERE tenant_id = ${tenantId} AND event_id = ANY(${seen.map((c) => c.event.id)}::text[])`.execute(trx);
            for (const row of rows) previous.set(row.event_id, row.payload_sha256);
          }
          for (const c of candidates) {
            const base = { id: c.ceId, index: c.index, eventId: c.event.id };
            if (fresh.has(c.event.id)) results[c.index] = { ...base, status: c.late ? 'accepted-late' : 'accepted' };
            else if (previous.get(c.event.id) === c.hash) results[c.index] = { ...base, status: 'duplicate' };
            else results[c.index] = { id: c.ceId, index: c.index, status: 'conflict', field: 'id', reason: 'id: already received from this source with other content (type, subject or data)' };
          }
          if (results.some((r) => r?.status === 'conflict')) throw new ConflictRollback();
          // Published before the receipts commit: a receipt never stands for an event the log lacks.
          const toPublish = candidates.filter((c) => fresh.has(c.event.id)).map((c) => c.event);
          try {
            for (let i = 0; i < toPublish.length; i += PUBLISH_BATCH_MAX) await publishBatch(this.nc, toPublish.slice(i, i + PUBLISH_BATCH_MAX));
          } catch (error) {
            throw new LogUnavailableError(`the log did not store the events: ${(error as Error).message}`, { cause: error });
          }
        });
      } catch (error) {
        if (!(error instanceof ConflictRollback)) throw error;
      }
    }
    const conflicts = results.filter((r) => r.status === 'conflict').length;
    if (conflicts) {
      // Nothing was stored: say so for every event that would otherwise have gone through.
      for (let i = 0; i < results.length; i++) {
        const r = results[i]!;
        if (r.status === 'accepted' || r.status === 'accepted-late' || r.status === 'duplicate') results[i] = { id: r.id, index: r.index, status: 'rejected', reason: 'not applied: the request has a conflicting id' };
      }
    }
    const count = (status: IngestStatus) => results.filter((r) => r.status === status).length;
    return { results, accepted: count('accepted'), acceptedLate: count('accepted-late'), duplicates: count('duplicate'), rejected: count('rejected'), conflicts };
  }
}
