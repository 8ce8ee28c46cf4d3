import { decodeEvent, type StoredEvent } from '@fastgpu/contracts';
import type { JsMsg } from '@nats-io/jetstream';

/** Scalar data fields shown on a readable line, in this order first. */
const KEY_FIELDS = ['tenantId', 'jobId', 'subtaskId', 'leaseId', 'nodeId', 'attempt', 'leaseEpoch', 'gpuModel', 'gpus', 'gpuMs', 'outcome', 'reason'];
const LINE_CHARS_MAX = 240;

export type Decoded = { ok: true; stored: StoredEvent } | { ok: false; sequence: number; subject: string; reason: string };

export function decodeMessage(m: Pick<JsMsg, 'seq' | 'subject' | 'data'>): Decoded {
  const result = decodeEvent(m.data);
  return result.ok ? { ok: true, stored: { sequence: m.seq, subject: m.subject, event: result.event } } : { ok: false, sequence: m.seq, subject: m.subject, reason: result.reason };
}

export function stripPrefix(subject: string, prefix: string): string {
  return subject.startsWith(`${prefix}.evt.`) ? subject.slice(prefix.length + 5) : subject;
}

/** `#42 2026-11-01T10:00:00.000Z SubtaskPlaced scheduler.node.n1 jobId=… nodeId=…` */
export function formatEvent(decoded: Decoded, prefix: string): string {
  if (!decoded.ok) return `#${decoded.sequence} ${stripPrefix(decoded.subject, prefix)} <undecodable: ${decoded.reason}>`;
  const { sequence, subject, event } = decoded.stored;
  const data = event.data as Record<string, unknown>;
  const keys = [...KEY_FIELDS.filter((k) => k in data), ...Object.keys(data).filter((k) => !KEY_FIELDS.includes(k))];
  const fields = keys
    .filter((k) => ['string', 'number', 'boolean'].includes(typeof data[k]))
    .map((k) => `${k}=${String(data[k])}`)
    .join(' ');
  const line = `#${sequence} ${event.time} ${event.type} ${stripPrefix(subject, prefix)} ${fields}`;
  return line.length > LINE_CHARS_MAX ? `${line.slice(0, LINE_CHARS_MAX - 1)}…` : line;
}

export function eventJson(decoded: Decoded): string {
  return decoded.ok ? JSON.stringify({ sequence: decoded.stored.sequence, subject: decoded.stored.subject, event: decoded.stored.event }) : JSON.stringify({ sequence: decoded.sequence, subject: decoded.subject, undecodable: decoded.reason });
}

export interface EventFilter {
  tenant?: string;
  job?: string;
  node?: string;
  types?: ReadonlySet<string>;
}

export function matches(decoded: Decoded, filter: EventFilter): boolean {
  if (!decoded.ok) return !filter.tenant && !filter.job && !filter.node && !filter.types;
  const { event } = decoded.stored;
  const data = event.data as Record<string, unknown>;
  if (filter.types && !filter.types.has(event.type)) return false;
  if (filter.tenant && event.tenantid !== filter.tenant && data.tenantId !== filter.tenant) return false;
  if (filter.job && data.jobId !== filter.job) return false;
  if (filter.node && data.nodeId !== filter.node) return false;
  return true;
}
