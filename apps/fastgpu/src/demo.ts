import { nameId } from '@fastgpu/contracts';
import { isStreamVersionConflict } from '@fastgpu/eventsourcing';
import { EventPublisher } from '@fastgpu/messaging';
import type { Runtime } from '@fastgpu/runtime';

/** The demo price book `npm start` publishes once (USD per GPU-hour). */
export const demoPrices = [
  { gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.40', incrementMs: 1000, minimumMs: 60_000 },
  { gpuModel: 'a100', capacityType: 'preemptible', pricePerGpuHour: '0.96', incrementMs: 1000, minimumMs: 60_000 },
  { gpuModel: 'h100', capacityType: 'on-demand', pricePerGpuHour: '3.90', incrementMs: 1000, minimumMs: 60_000 },
  { gpuModel: 'h100', capacityType: 'preemptible', pricePerGpuHour: '1.56', incrementMs: 1000, minimumMs: 60_000 },
] as const;

async function api(url: string, key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/**
 * Seeds what a newcomer needs to see the pipeline: a default price book (published once: the
 * subject's expected sequence 0 makes a second publish fail), a demo tenant, and fresh keys.
 */
export async function seedDemo(runtime: Runtime, url: string, adminKey: string): Promise<{ tenantKey: string; financeKey: string }> {
  const publisher = new EventPublisher(runtime.bus.js, runtime.bus.topology, 'fastgpu/demo');
  const now = runtime.clock.now().toISOString();
  const priceBook = publisher.build(
    'PriceBookPublished',
    { priceBookId: 'default', version: 1, currency: 'USD', effectiveFrom: '2026-01-01T00:00:00.000Z', prices: demoPrices.map((p) => ({ ...p })), publishedBy: 'demo-seed', publishedAt: now },
    { id: nameId('demo', 'price-book', 'default', '1'), time: now, tenantId: null, correlationId: 'demo-seed' },
  );
  await publisher.publish(priceBook, { expectedLastSubjectSequence: 0 }).catch((error) => {
    if (!isStreamVersionConflict(error)) throw error;
  });
  const tenant = await api(url, adminKey, 'POST', '/v1/tenants', { tenantId: 'demo', name: 'Demo Labs', billingTimeZone: 'UTC', currency: 'USD' });
  if (tenant.status !== 201 && tenant.status !== 409) throw new Error(`demo tenant: ${JSON.stringify(tenant.body)}`);
  const tenantKey = await api(url, adminKey, 'POST', '/v1/tenants/demo/api-keys', { label: 'demo' });
  const financeKey = await api(url, adminKey, 'POST', '/v1/api-keys', { role: 'finance', label: 'demo finance' });
  return { tenantKey: (tenantKey.body as { secret: string }).secret, financeKey: (financeKey.body as { secret: string }).secret };
}
