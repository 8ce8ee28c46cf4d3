import { hash as digest } from 'node:crypto';
import { sql } from 'kysely';
import { z } from 'zod';
import type { NatsConnection } from '@nats-io/transport-node';
import { compiledReject, compileRaw, makeEvent, subjectFor, type DomainEvent } from '@fastgpu/contracts';
import type { AnyDatabase } from '@fastgpu/db';
import type { EventPublisher } from '@fastgpu/messaging';
import { currentTraceparent } from '@fastgpu/telemetry';
import { publishBatch } from './ack-counting-publisher';
import { DEFAULT_LATENESS_HORIZON, EXTERNAL_ALLOCATION_GPUS_MAX, type LatenessHorizon } from '../usage/usage.fold';

/** Events one `POST /v1/events` request may carry. */
export const EXTERNAL_EVENTS_PER_REQUEST_MAX = 1000;

/** Events published per acknowledged batch. */
const PUBLISH_BATCH_MAX = 1000;

export const externalEventTypes = ['ExternalAllocationStarted', 'ExternalAllocationStopped'] as const;
type ExternalType = (typeof externalEventTypes)[number];

/** A structured-mode CloudEvent as producers send it; tenant comes from the API key. */
const instantWithOffset = z.iso.datetime({ offset: true });
export const externalCloudEventSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1).max(128),
  source: z.string().min(1).max(256),
  type: z.enum(externalEventTypes),
  time: instantWithOffset.optional(),
  subject: z.string().max(256).optional(),
  datacontenttype: z.literal('application/json').optional(),
  tenantid: z.string().max(128).optional(),
  traceparent: z.string().max(128).optional(),
  data: z.record(z.string(), z.unknown()),
});

type ExternalCloudEvent = z.infer<typeof externalCloudEventSchema>;

/**
 * The envelope schema compiled (libs/contracts compiled-schema.ts): it accepts exactly what zod
 * accepts, with zod's output, several times cheaper. It only says accepted or rejected; for a
 * rejection zod runs again and gives the verdict and the reason text, so 4xx answers are zod's.
 */
const compiledCloudEvent = compileRaw(externalCloudEventSchema);

function parseCloudEvent(raw: unknown): { ok: true; event: ExternalCloudEvent } | { ok: false; reason: string } {
  const fast = compiledCloudEvent(raw);
  if (fast !== compiledReject) return { ok: true, event: fast as ExternalCloudEvent };
  const parsed = externalCloudEventSchema.safeParse(raw);
  return parsed.success ? { ok: true, event: parsed.data } : { ok: false, reason: describe(parsed.error) };
}

/**
 * SHA-256 (hex) of the canonical JSON of what an id stands for: `canonicalJson({ type, source,
 * time, subject: subject ?? null, data })`, written with its five keys already in sorted order
 * (data, source, subject, time, type) and none of them ever undefined, so only `data` goes
 * through canonicalJson. Receipts store this hash: it must not change (tested against the
 * general form).
 */
export function payloadHash(type: string, source: string, time: string, subject: string | undefined, data: unknown): string {
  const text = `{"data":${canonicalJson(data)},"source":${JSON.stringify(source)},"subject":${subject === undefined ? 'null' : JSON.stringify(subject)},"time":${JSON.stringify(time)},"type":${JSON.stringify(type)}}`;
  return digest('sha256', text, 'hex');
}

export type IngestStatus = 'accepted' | 'duplicate' | 'rejected' | 'conflict';
export interface IngestResult {
  id: string | null;
  index: number;
  status: IngestStatus;
  reason?: string;
}

export interface IngestOutcome {
  results: IngestResult[];
  accepted: number;
  duplicates: number;
  rejected: number;
  conflicts: number;
}

interface Candidate {
  index: number;
  event: DomainEvent<ExternalType>;
  hash: string;
}

function describe(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/**
 * JSON with sorted keys, so the same content always hashes the same. Receipts store hashes of
 * this exact text: any rewrite must produce it byte for byte (tested against the first version).
 * Plain loops and concatenation, primitives written in place: it runs once per ingested event.
 * (`JSON.stringify(object, sortedKeys)` writes the same text for a flat object, but a replacer
 * list takes V8's slow path: it cost twice this loop.)
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += `${i > 0 ? ',' : ''}${canonicalJson(value[i]) ?? ''}`;
    return `${out}]`;
  }
  const object = value as Record<string, unknown>;
  // Default sort: UTF-16 code units, the order `<` gives.
  const keys = Object.keys(object).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const item = object[key];
    if (item === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(key)}:${item === null || typeof item !== 'object' ? JSON.stringify(item) : canonicalJson(item)}`;
    first = false;
  }
  return `${out}}`;
}

const idOf = (value: unknown): string | null => (typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string' ? (value as { id: string }).id : null);
const rejected = (raw: unknown, index: number, reason: string): IngestResult => ({ id: idOf(raw), index, status: 'rejected', reason });

class ConflictRollback extends Error {}

/**
 * External usage ingestion: validates each CloudEvent (schema, tenant, lateness horizon against
 * the receipt clock), records a receipt per id with a hash of its canonical payload, and
 * publishes accepted events with `Nats-Msg-Id` = id. A retried request is accepted idempotently
 * (and republished: a crash between receipt and publish loses nothing). An id already received
 * with another payload is a conflict: the whole request changes nothing.
 */
export class ExternalIngest {
  constructor(
    private readonly db: AnyDatabase,
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
    if (!parsed.ok) return rejected(raw, index, parsed.reason);
    const ce = parsed.event;
    if (ce.tenantid !== undefined && ce.tenantid !== tenantId) return rejected(raw, index, 'tenantid: does not match the API key');
    if (ce.data.tenantId !== undefined && ce.data.tenantId !== tenantId) return rejected(raw, index, 'data.tenantId: does not match the API key');
    let event: DomainEvent<ExternalType>;
    const atField = ce.type === 'ExternalAllocationStarted' ? 'startedAt' : 'stoppedAt';
    const atValue = ce.data[atField];
    const atMs = typeof atValue === 'string' ? Date.parse(atValue) : Number.NaN;
    try {
      // What EventPublisher.build does, with the trace context read once per request: makeEvent
      // validates the payload against the catalogue (one validation per event).
      const data = { ...ce.data, tenantId } as never;
      event = makeEvent<ExternalType>(
        ce.type,
        data,
        {
          id: ce.id,
          source: ce.source,
          time: ce.time ? new Date(Date.parse(ce.time)).toISOString() : typeof atValue === 'string' ? atValue : new Date(nowMs).toISOString(),
          tenantId,
          correlationId: ce.id,
          traceparent: ce.traceparent || requestTraceparent,
        },
        subjectFor(this.publisher.topology, ce.type, data),
      );
    } catch (error) {
      return rejected(raw, index, (error as Error).message);
    }
    if (event.type === 'ExternalAllocationStarted' && event.data.gpus > EXTERNAL_ALLOCATION_GPUS_MAX) return rejected(raw, index, `data.gpus: at most ${EXTERNAL_ALLOCATION_GPUS_MAX}`);
    const field = `data.${atField}`;
    if (atMs < nowMs - this.horizon.backMs) return rejected(raw, index, `${field}: older than the lateness horizon (${this.horizon.backMs / 86_400_000} days before receipt)`);
    if (atMs > nowMs + this.horizon.aheadMs) return rejected(raw, index, `${field}: more than ${this.horizon.aheadMs / 60_000} minutes ahead of receipt`);
    const { data, time } = event;
    return { index, event, hash: payloadHash(ce.type, ce.source, time, ce.subject, data) };
  }

  async ingest(raws: readonly unknown[], tenantId: string, now: Date): Promise<IngestOutcome> {
    if (raws.length > EXTERNAL_EVENTS_PER_REQUEST_MAX) throw new RangeError(`at most ${EXTERNAL_EVENTS_PER_REQUEST_MAX} events per request`);
    const nowMs = now.getTime();
    const results: IngestResult[] = new Array(raws.length);
    const candidates: Candidate[] = [];
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
        results[index] = first.hash === checked.hash ? { id: checked.event.id, index, status: 'duplicate' } : { id: checked.event.id, index, status: 'conflict', reason: 'id repeated in this request with another payload' };
        return;
      }
      firstById.set(checked.event.id, checked);
      candidates.push(checked);
    });

    const toPublish: Candidate[] = [];
    if (candidates.length && !results.some((r) => r?.status === 'conflict')) {
      try {
        await this.db.transaction().execute(async (trx) => {
          // Ids and hashes travel as two JSON arrays (JSON.stringify is native; pg's array literal
          // escapes element by element in JavaScript), zipped back into rows in order.
          const ids = JSON.stringify(candidates.map((c) => c.event.id));
          const hashes = JSON.stringify(candidates.map((c) => c.hash));
          const inserted = await sql<{ event_id: string }>`
            INSERT INTO metering_external_receipts (event_id, tenant_id, payload_sha256, received_at)
            SELECT id, ${tenantId}, hash, ${now.toISOString()}::timestamptz FROM ROWS FROM (json_array_elements_text(${ids}::json), json_array_elements_text(${hashes}::json)) AS r(id, hash)
            ON CONFLICT (event_id) DO NOTHING
            RETURNING event_id`.execute(trx);
          const fresh = new Set(inserted.rows.map((r) => r.event_id));
          const seen = candidates.filter((c) => !fresh.has(c.event.id));
          const previous = new Map<string, { tenant_id: string; payload_sha256: string }>();
          if (seen.length) {
            const { rows } = await sql<{ event_id: string; tenant_id: string; payload_sha256: string }>`
              SELECT event_id, tenant_id, payload_sha256 FROM metering_external_receipts WHERE event_id = ANY(${seen.map((c) => c.event.id)}::text[])`.execute(trx);
            for (const row of rows) previous.set(row.event_id, row);
          }
          for (const c of candidates) {
            const before = previous.get(c.event.id);
            if (fresh.has(c.event.id)) results[c.index] = { id: c.event.id, index: c.index, status: 'accepted' };
            else if (before && before.tenant_id === tenantId && before.payload_sha256 === c.hash) results[c.index] = { id: c.event.id, index: c.index, status: 'duplicate' };
            else results[c.index] = { id: c.event.id, index: c.index, status: 'conflict', reason: 'id already received with another payload' };
          }
          if (results.some((r) => r?.status === 'conflict')) throw new ConflictRollback();
        });
        toPublish.push(...candidates);
      } catch (error) {
        if (!(error instanceof ConflictRollback)) throw error;
      }
    }
    const conflicts = results.filter((r) => r?.status === 'conflict').length;
    if (conflicts) {
      // Nothing was stored: say so for every event that would otherwise have gone through.
      for (const c of candidates) {
        if (results[c.index]?.status !== 'conflict') results[c.index] = { id: c.event.id, index: c.index, status: 'rejected', reason: 'not applied: the request has a conflicting id' };
      }
      for (let i = 0; i < results.length; i++) {
        if (results[i]?.status === 'duplicate') results[i] = { ...results[i]!, status: 'rejected', reason: 'not applied: the request has a conflicting id' };
      }
    } else if (toPublish.length) {
      for (let i = 0; i < toPublish.length; i += PUBLISH_BATCH_MAX) await publishBatch(this.nc, toPublish.slice(i, i + PUBLISH_BATCH_MAX).map((c) => c.event));
    }
    const count = (status: IngestStatus) => results.filter((r) => r.status === status).length;
    return { results, accepted: count('accepted'), duplicates: count('duplicate'), rejected: count('rejected'), conflicts };
  }
}
