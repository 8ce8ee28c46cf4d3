import { DeliverPolicy } from '@nats-io/jetstream';
import { decodeEvent, type DomainEvent, type EventType } from '@fastgpu/contracts';
import type { Bus } from '@fastgpu/messaging';
import { nodeReportsRejected } from '@fastgpu/observability';
import type { StartedApp } from '@fastgpu/platform';

/** Helpers shared by the fault tests: HTTP calls, reading the log, the refusal counter. */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface CallResult { status: number; headers: Headers; body: any }

export async function call(app: StartedApp, method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}): Promise<CallResult> {
  const response = await fetch(`${app.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

/** Every decodable event stored so far on subjects matching `filter`, in log order (bounded by what is stored now). */
export async function eventsOn(bus: Bus, filter: string): Promise<Array<{ sequence: number; subject: string; receivedAtMs: number; event: DomainEvent }>> {
  const consumer = await bus.js.consumers.get(bus.topology.streams.events, { deliver_policy: DeliverPolicy.All, filter_subjects: filter });
  const out: Array<{ sequence: number; subject: string; receivedAtMs: number; event: DomainEvent }> = [];
  let pending = (await consumer.info(true)).num_pending;
  while (pending > 0) {
    const m = await consumer.next({ expires: 2000 });
    if (!m) break;
    const decoded = decodeEvent(m.data);
    if (decoded.ok) out.push({ sequence: m.seq, subject: m.subject, receivedAtMs: m.time.getTime(), event: decoded.event });
    pending = m.info.pending;
  }
  return out;
}

export function ofType<T extends EventType>(events: Array<{ event: DomainEvent }>, type: T): Array<DomainEvent<T>> {
  return events.map((e) => e.event).filter((e) => e.type === type) as unknown as Array<DomainEvent<T>>;
}

/** Refused node reports counted so far in this process, per consumer. */
export async function rejectionsByConsumer(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const value of (await nodeReportsRejected.get()).values) {
    const consumer = String(value.labels.consumer);
    counts[consumer] = (counts[consumer] ?? 0) + value.value;
  }
  return counts;
}

/** An admin key, a tenant and its key. */
export async function tenantKey(app: StartedApp, adminKey: string, tenantId: string): Promise<string> {
  const created = await call(app, 'POST', '/v1/tenants', adminKey, { tenantId, name: tenantId });
  if (created.status !== 201) throw new Error(`tenant ${tenantId}: ${created.status} ${JSON.stringify(created.body)}`);
  const key = await call(app, 'POST', `/v1/tenants/${tenantId}/api-keys`, adminKey, {});
  return key.body.secret as string;
}
