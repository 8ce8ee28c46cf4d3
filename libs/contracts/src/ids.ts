import { hash, randomBytes } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

/** A new UUIDv7 (time-ordered). Only the imperative shell calls this; deciders receive ids. */
export function newEventId(): string {
  return uuidv7();
}

/** Random opaque id for entities (jobs without an idempotency key, leases, keys). */
export function newEntityId(): string {
  return uuidv7();
}

/**
 * An id derived from a cause and a discriminator, shaped as a UUIDv7 that keeps the cause's
 * millisecond timestamp. The same cause and discriminator always give the same id, so a
 * retried handler publishes the same `Nats-Msg-Id` and the bus drops the duplicate.
 */
export function deriveId(causeId: string, discriminator: string): string {
  // One-shot hash: deriveId sits on the scheduler's hot path (one per decision).
  const digest = hash('sha256', `${causeId}\u0000${discriminator}`, 'buffer') as unknown as Buffer;
  const bytes = Buffer.allocUnsafe(16);
  const causeTime = causeId.length === 36 && causeId[14] === '7' ? causeId.slice(0, 8) + causeId.slice(9, 13) : '';
  if (causeTime && /^[0-9a-f]{12}$/i.test(causeTime)) bytes.write(causeTime, 0, 'hex');
  else digest.copy(bytes, 0, 16, 22);
  digest.copy(bytes, 6, 0, 10);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70; // version 7
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A stable id for a name (e.g. tenant + idempotency key), shaped as UUIDv7 with a zero clock. */
export function nameId(...parts: string[]): string {
  return deriveId('00000000-0000-7000-8000-000000000000', parts.join('\u0000'));
}

export function randomToken(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}
