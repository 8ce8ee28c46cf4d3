import { decodeValue, Headers, parseJson, peekType, type DomainEvent } from '@fastgpu/contracts';

/**
 * What a consumer reading some event types does with one message. A rejected message carries
 * what could be read of it: the type its header or body names (absent when neither names one)
 * and its event id (absent when the body has none), for the dead-letter reason and for operators.
 */
export type MessageVerdict = { kind: 'skip' } | { kind: 'event'; event: DomainEvent } | { kind: 'reject'; reason: string; type?: string; eventId?: string };

const SKIP: MessageVerdict = { kind: 'skip' };

/** The event type a message's `Ce-Type` header names (every FastGPU publisher sets it), if any. */
export function headerType(headers: { get(name: string): string } | undefined): string | undefined {
  const value = headers?.get(Headers.eventType);
  return value ? value : undefined;
}

/**
 * The one rule by which projections (live runner and replay alike, so both fold the same events)
 * judge a message, cheapest test first:
 * - its `Ce-Type` header names a type the consumer does not read: skipped, the body unread;
 * - the body is not JSON: rejected (dead-letter);
 * - the header names a type and the body another: rejected;
 * - the body's type is not read by the consumer: skipped;
 * - the envelope or payload is invalid: rejected; otherwise the decoded event.
 */
export function judgeMessage(data: Uint8Array, type: string | undefined, wanted: ReadonlySet<string>): MessageVerdict {
  if (type !== undefined && !wanted.has(type)) return SKIP;
  const parsed = parseJson(data);
  if (!parsed.ok) return { kind: 'reject', reason: parsed.reason, ...(type !== undefined ? { type } : {}) };
  const bodyType = peekType(parsed.value);
  const eventId = peekId(parsed.value);
  const read = { ...((type ?? bodyType) !== undefined ? { type: type ?? bodyType } : {}), ...(eventId !== undefined ? { eventId } : {}) };
  if (type !== undefined && bodyType !== type) return { kind: 'reject', reason: `the ${Headers.eventType} header names ${type} but the body's type is ${bodyType === undefined ? 'missing' : `"${bodyType}"`}`, ...read };
  if (bodyType !== undefined && !wanted.has(bodyType)) return SKIP;
  const decoded = decodeValue(parsed.value);
  return decoded.ok ? { kind: 'event', event: decoded.event } : { kind: 'reject', reason: decoded.reason, ...read };
}

/** The `id` a parsed body names, if it is a short string (for naming a rejected message). */
function peekId(raw: unknown): string | undefined {
  const id = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id.length <= 128 ? id : undefined;
}

/**
 * Whether a consumer that stops on undecodable events (money) must stop at this rejected
 * message: when it names a type the consumer reads, or names none at all (it cannot be shown
 * not to be one). A message that names another type is only dead-lettered.
 */
export function mustStopAt(verdict: { type?: string }, wanted: ReadonlySet<string>): boolean {
  return verdict.type === undefined || wanted.has(verdict.type);
}
