/**
 * Proves that two billing processes (`apps/billing/src/main.ts`, as `npm run start:billing` runs
 * them) against the same NATS and PostgreSQL finalize each due invoice once: both run the
 * automatic finalizer every 100 ms with no grace, on usage and a running lease published after both
 * are up, so their ticks meet the same due drafts. In the log afterwards each invoice has one
 * InvoiceFinalized, the numbers are gapless from 1, and each tenant's period was closed (the cut of
 * running allocations, `BillingPeriodClosed`) once. The guard: finalizations and period closes hold
 * the issuer's PostgreSQL advisory lock and are decided again after catching up with the log; the
 * invoice's decider refuses a second InvoiceFinalized on its subject.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliverPolicy } from '@nats-io/jetstream';
import { decodeEvent, HOUR_MS, newEventId, type DomainEvent, type EventData, type EventType } from '@fastgpu/contracts';
import { EventPublisher, lastSequence } from '@fastgpu/messaging';
import { addPeriods, periodBounds, periodOf } from '@fastgpu/money';
import { createTestEnvironment, eventually, insertTestApiKey, logNow, type TestEnvironment } from '@fastgpu/testing';
import { invoiceIdFor } from '../../apps/billing/src/ledger/invoice-ids';
import { FLAT_PRICES, usageData } from '../../apps/billing/test/ledger/harness';

const ADMIN_KEY = 'fgk_billing_instances_admin_key_0123';
const FINANCE_KEY = 'fgk_billing_instances_finance_key_012';
const LEASE_TTL_MS = 2000;
const TENANTS = ['t1', 't2', 't3', 't4', 't5'];

let env: TestEnvironment;
const instances: Array<{ id: string; process: ChildProcess; url: string; output(): string }> = [];

async function startInstance(id: string): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/billing/src/main.ts'], {
    env: {
      ...process.env,
      NATS_URL: env.config.natsUrl,
      DATABASE_URL: env.config.databaseUrl,
      FASTGPU_PREFIX: env.config.subjectPrefix,
      PORT: '0',
      FASTGPU_GRPC_PORT: '0',
      FASTGPU_ADMIN_KEY: ADMIN_KEY,
      FASTGPU_INSTANCE_ID: id,
      FASTGPU_PROJECTION_LEASE_TTL_MS: String(LEASE_TTL_MS),
      FASTGPU_BILLING_AUTO_FINALIZE_INTERVAL_MS: '100',
      FASTGPU_BILLING_GRACE_HOURS: '0',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`billing ${id} did not start: ${output}`)), 90_000);
    child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      output = (output + chunk.toString()).slice(-4000);
      const match = /listening on (http:\/\/\S+)/.exec(seen);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`billing ${id} exited with ${code}: ${output}`)));
  });
  instances.push({ id, process: child, url, output: () => output });
  return url;
}

/** Every decodable event of these types in the log now. */
async function eventsOf<T extends EventType>(...types: T[]): Promise<Array<DomainEvent<T>>> {
  const consumer = await env.bus.js.consumers.get(env.bus.topology.streams.events, { deliver_policy: DeliverPolicy.All });
  const found: Array<DomainEvent<T>> = [];
  let pending = (await consumer.info(true)).num_pending;
  while (pending > 0) {
    const m = await consumer.next({ expires: 2000 });
    if (!m) break;
    const decoded = decodeEvent(m.data);
    if (decoded.ok && (types as string[]).includes(decoded.event.type)) found.push(decoded.event as DomainEvent<T>);
    pending = m.info.pending;
  }
  return found;
}

beforeAll(async () => {
  env = await createTestEnvironment();
  await insertTestApiKey(env.database.db, { keyId: 'key-finance', tenantId: null, role: 'finance', issuedAt: new Date(), secret: FINANCE_KEY });
  await Promise.all([startInstance('billing-a'), startInstance('billing-b')]);
}, 200_000);

afterAll(async () => {
  for (const instance of instances) if (instance.process.exitCode === null) instance.process.kill('SIGKILL');
  await env?.cleanup();
});

describe('two instances of billing with automatic finalization', () => {
  it('finalize each due invoice once, with gapless numbers, and close each period once', async () => {
    const priced = await fetch(`${instances[0]!.url}/v1/price-books`, { method: 'POST', headers: { authorization: `Bearer ${FINANCE_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(FLAT_PRICES) });
    expect(priced.status, await priced.text()).toBe(201);

    // Last month's usage for each tenant, and for the last one a lease running across the month's
    // end (only the close cuts it onto the invoice), published while both instances tick.
    const now = await logNow(env.bus);
    const period = addPeriods(periodOf(now, 'UTC'), -1);
    const { startMs, endMs } = periodBounds(period, 'UTC');
    const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'billing-instances-test');
    const publish = async <T extends EventType>(type: T, data: EventData<T>, tenantId: string) => {
      const id = newEventId();
      await publisher.publish(publisher.build(type, data, { id, time: new Date(now).toISOString(), tenantId, correlationId: id }) as DomainEvent);
    };
    for (const [i, tenantId] of TENANTS.entries()) {
      await publish('TenantCreated', { tenantId, name: `${tenantId} corp`, billingTimeZone: 'UTC', currency: 'USD', createdAt: new Date(startMs - HOUR_MS).toISOString() }, tenantId);
      const usageStart = startMs + (i + 1) * HOUR_MS;
      if (i < TENANTS.length - 1) await publish('UsageRecorded', usageData(tenantId, `u-${tenantId}`, new Date(usageStart).toISOString(), new Date(usageStart + HOUR_MS).toISOString()), tenantId);
      else await publish('LeaseGranted', { leaseId: `lease-${tenantId}`, tenantId, projectId: 'p1', nodeId: 'node-1', gpuModel: 'a100', gpus: 2, gpuIndices: [0, 1], leaseEpoch: 1, capacityType: 'on-demand', grantedAt: new Date(endMs - HOUR_MS).toISOString() }, tenantId);
    }

    const invoices = TENANTS.map((tenantId) => invoiceIdFor(tenantId, period));
    const finalized = await eventually(
      async () => {
        const found = await eventsOf('InvoiceFinalized');
        return invoices.every((invoiceId) => found.some((e) => e.data.invoiceId === invoiceId)) && found;
      },
      { timeoutMs: 60_000, intervalMs: 250, message: `not every due invoice was finalized:\n${instances.map((i) => `${i.id}: ${i.output()}`).join('\n')}` },
    );
    // Both instances have applied everything up to here and ticked on it (their ledgers caught up).
    const last = await lastSequence(env.bus, env.bus.topology.streams.events);
    for (const instance of instances) {
      await eventually(
        async () => {
          const health = (await (await fetch(`${instance.url}/v1/health`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { checks: Record<string, { detail: { lastSequence: number } }> };
          return health.checks['projection:billing-ledger']!.detail.lastSequence >= last;
        },
        { timeoutMs: 20_000, message: `${instance.id}'s ledger did not reach the log's end` },
      );
    }
    const after = await eventsOf('InvoiceFinalized', 'BillingPeriodClosed');
    const finals = after.filter((e): e is DomainEvent<'InvoiceFinalized'> => e.type === 'InvoiceFinalized');
    expect(finals.length).toBe(finalized.length);
    expect(finals.map((e) => e.data.invoiceId).sort()).toEqual([...invoices].sort());
    expect(finals.map((e) => e.data.number).sort()).toEqual(invoices.map((_, i) => `FGPU-${String(i + 1).padStart(6, '0')}`));
    const closes = after.filter((e): e is DomainEvent<'BillingPeriodClosed'> => e.type === 'BillingPeriodClosed').map((e) => `${e.data.tenantId} ${e.data.period}`);
    expect(closes).toEqual([`${TENANTS[TENANTS.length - 1]} ${period}`]);
  }, 120_000);
});
