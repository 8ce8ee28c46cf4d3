import type { z } from 'zod';
import { compiledReject, compileRaw } from './compiled-schema';
import { envelopeSchema, type Envelope, type EnvelopeBase } from './envelope';
import { eventCatalogue, isEventType, storedEventSchemas, type EventData, type EventType } from './events';
import { applyEventFixUp, upcast } from './upcasters';

export type DomainEvent<T extends EventType = EventType> = { [K in T]: Envelope<K, EventData<K>> }[T];

/** An event as read from the stream: the decoded envelope plus where it sits in the log. */
export interface StoredEvent<T extends EventType = EventType> {
  sequence: number;
  subject: string;
  event: DomainEvent<T>;
  /** When the stream stored the message (server time): bounds how far a node's clock may be trusted. */
  receivedAtMs?: number;
}

export type DecodeResult = { ok: true; event: DomainEvent } | { ok: false; reason: string };

const decoder = new TextDecoder();

export function encodeEvent(event: DomainEvent): Uint8Array {
  // The same UTF-8 bytes as TextEncoder (lone surrogates become U+FFFD in both), ~0.7 µs cheaper per event.
  return Buffer.from(JSON.stringify(event), 'utf8');
}

export function describeIssues(error: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> }): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}

/**
 * Decodes and validates a message body: JSON, a CloudEvents envelope, a known type, and a
 * payload that matches its schema after upcasting to the current version. Anything else is a
 * reason for the dead-letter stream.
 */
export function decodeEvent(bytes: Uint8Array): DecodeResult {
  const parsed = parseJson(bytes);
  return parsed.ok ? decodeValue(parsed.value) : parsed;
}

export function parseJson(bytes: Uint8Array): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(decoder.decode(bytes)) };
  } catch (error) {
    return { ok: false, reason: `body is not JSON: ${(error as Error).message}` };
  }
}

/** The event type named by a parsed body, without validating the rest (for cheap filtering). */
export function peekType(raw: unknown): string | undefined {
  return typeof raw === 'object' && raw !== null && typeof (raw as { type?: unknown }).type === 'string' ? (raw as { type: string }).type : undefined;
}

/**
 * Compiled validators (compiled-schema.ts): the same accepted outputs as zod's `safeParse`,
 * several times cheaper. They only decide acceptance; whenever one rejects, the zod schema runs
 * instead and gives the verdict and the reason text, so dead-letter reasons are zod's.
 */
let compiledEnvelope: ((value: unknown) => unknown) | undefined;
const compiledData: Partial<Record<EventType, (value: unknown) => unknown>> = {};
const compiledStoredData: Partial<Record<EventType, (value: unknown) => unknown>> = {};

function parseEnvelope(raw: unknown): { ok: true; envelope: EnvelopeBase } | { ok: false; reason: string } {
  const fast = (compiledEnvelope ??= compileRaw(envelopeSchema))(raw);
  if (fast !== compiledReject) return { ok: true, envelope: fast as EnvelopeBase };
  const envelope = envelopeSchema.safeParse(raw);
  if (!envelope.success) return { ok: false, reason: `invalid envelope: ${describeIssues(envelope.error)}` };
  return { ok: true, envelope: envelope.data };
}

/**
 * Validates a payload: with the rule events are built with (`written`: eventCatalogue) or the
 * rule stored events are read with (`stored`: storedEventSchemas, events.ts says why they differ).
 */
function parseData(type: EventType, data: unknown, rule: 'written' | 'stored'): { ok: true; data: unknown } | { ok: false; reason: string } {
  const schema: z.ZodType = rule === 'written' ? eventCatalogue[type].schema : storedEventSchemas[type];
  const cache = rule === 'written' ? compiledData : compiledStoredData;
  const fast = (cache[type] ??= compileRaw(schema))(data);
  if (fast !== compiledReject) return { ok: true, data: fast };
  const result = schema.safeParse(data);
  if (!result.success) return { ok: false, reason: `invalid ${type} data: ${describeIssues(result.error)}` };
  return { ok: true, data: result.data };
}

/** Validates an already-parsed body: a fix-up rule if one names it, envelope, known type, payload after upcasting. */
export function decodeValue(raw: unknown): DecodeResult {
  const parsed = parseEnvelope(applyEventFixUp(raw));
  if (!parsed.ok) return parsed;
  const { envelope } = parsed;
  const { type, schemaversion } = envelope;
  if (!isEventType(type)) return { ok: false, reason: `unknown event type "${type}"` };
  const entry = eventCatalogue[type];
  if (schemaversion > entry.version) return { ok: false, reason: `${type} schema version ${schemaversion} is newer than ${entry.version}` };
  const upcasted = upcast(type, schemaversion, envelope.data);
  if (!upcasted.ok) return { ok: false, reason: upcasted.reason };
  const data = parseData(type, upcasted.data, 'stored');
  if (!data.ok) return data;
  // The envelope is this call's own object (the validator's output, never the caller's input):
  // completed in place rather than copied once more per event. Keys keep their order.
  const event = envelope as Record<string, unknown>;
  event.schemaversion = entry.version;
  event.data = data.data;
  return { ok: true, event: event as unknown as DomainEvent };
}

/**
 * The zod-only decoder `decodeValue` replaced: kept as the reference its results are compared
 * with (compiled-schema.spec.ts) and as the plain statement of what decoding means.
 */
export function decodeValueWithZod(raw: unknown): DecodeResult {
  const envelope = envelopeSchema.safeParse(applyEventFixUp(raw));
  if (!envelope.success) return { ok: false, reason: `invalid envelope: ${describeIssues(envelope.error)}` };
  const { type, schemaversion } = envelope.data;
  if (!isEventType(type)) return { ok: false, reason: `unknown event type "${type}"` };
  const entry = eventCatalogue[type];
  if (schemaversion > entry.version) return { ok: false, reason: `${type} schema version ${schemaversion} is newer than ${entry.version}` };
  const upcasted = upcast(type, schemaversion, envelope.data.data);
  if (!upcasted.ok) return { ok: false, reason: upcasted.reason };
  const data = storedEventSchemas[type].safeParse(upcasted.data);
  if (!data.success) return { ok: false, reason: `invalid ${type} data: ${describeIssues(data.error)}` };
  return { ok: true, event: { ...envelope.data, type, schemaversion: entry.version, data: data.data } as DomainEvent };
}

/** Validates a payload against its schema before it is published; throws with the field and reason. */
export function validateEventData<T extends EventType>(type: T, data: unknown): EventData<T> {
  const result = parseData(type, data, 'written');
  if (!result.ok) throw new Error(result.reason);
  return result.data as EventData<T>;
}

export interface EventMeta {
  id: string;
  source: string;
  time: string;
  tenantId: string | null;
  correlationId: string;
  causationId?: string;
  traceparent?: string;
}

/** Builds a validated envelope. Ids and times arrive from the caller (the shell), never read here. */
export function makeEvent<T extends EventType>(type: T, data: EventData<T>, meta: EventMeta, subject: string): DomainEvent<T> {
  const validated = validateEventData(type, data);
  const event = {
    specversion: '1.0',
    id: meta.id,
    source: meta.source,
    type,
    subject,
    time: meta.time,
    datacontenttype: 'application/json',
    tenantid: meta.tenantId,
    correlationid: meta.correlationId,
    schemaversion: eventCatalogue[type].version,
    data: validated,
    ...(meta.causationId ? { causationid: meta.causationId } : {}),
    ...(meta.traceparent ? { traceparent: meta.traceparent } : {}),
  };
  return event as unknown as DomainEvent<T>;
}

