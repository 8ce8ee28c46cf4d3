/**
 * Proves several instances of a projection host (issue 16): two metering processes started alone
 * (`apps/metering/src/main.ts`, as `npm run start:metering` runs them) against the same NATS and
 * PostgreSQL. One applies the usage projection (it holds the projection's lease), the other stands
 * by and still answers reads; external usage published meanwhile is metered once. The active
 * process is killed with SIGKILL: the standby takes over within the lease TTL and a few seconds,
 * without a restart, and usage published before and after is metered exactly once (rows, GPU-ms,
 * one UsageRecorded per allocation in the log).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliverPolicy } from '@nats-io/jetstream';
import { decodeEvent, newEventId, type DomainEvent } from '@fastgpu/contracts';
import { EventPublisher, lastSequence } from '@fastgpu/messaging';
import { createTestEnvironment, eventually, logNow, type TestEnvironment } from '@fastgpu/testing';

const ADMIN_KEY = 'fgk_instances_test_admin_key_0123456789';
const LEASE_TTL_MS = 2000;
const GPUS = 2;
const ALLOCATION_MS = 60_000;

interface Instance {
  id: string;
  process: ChildProcess;
  url: string;
}

let env: TestEnvironment;
const instances: Instance[] = [];

async function startInstance(id: string): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/metering/src/main.ts'], {
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
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`metering ${id} did not start: ${output}`)), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(seen);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`metering ${id} exited with ${code}: ${output}`)));
  });
  const instance = { id, process: child, url };
  instances.push(instance);
  return instance;
}

async function usageRole(instance: Instance): Promise<{ role?: string; lastSequence: number; leaseHolder?: string }> {
  const response = await fetch(`${instance.url}/v1/health`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  const body = (await response.json()) as { checks: Record<string, { detail: { role?: string; lastSequence: number; leaseHolder?: string } }> };
  return body.checks['projection:usage']!.detail;
}

async function checkpoint(): Promise<number> {
  const row = await env.database.db.selectFrom('projection_checkpoints').select('last_sequence').where('projection', '=', 'usage').executeTakeFirst();
  return Number(row?.last_sequence ?? 0);
}

beforeAll(async () => {
  env = await createTestEnvironment();
  await startInstance('meter-a');
  await startInstance('meter-b');
}, 120_000);

afterAll(async () => {
  for (const instance of instances) if (instance.process.exitCode === null) instance.process.kill('SIGKILL');
  await env?.cleanup();
});

describe('two instances of metering', () => {
  it('one applies the usage projection, the other stands by; the standby takes over when the active one is killed, and nothing is metered twice', async () => {
    const roles = await eventually(
      async () => {
        const found = await Promise.all(instances.map(usageRole));
        return found.filter((r) => r.role === 'active').length === 1 && found.filter((r) => r.role === 'standby').length === 1 ? found : undefined;
      },
      { timeoutMs: 20_000, message: 'not one active and one standby' },
    );
    const active = instances[roles.findIndex((r) => r.role === 'active')]!;
    const standby = instances.find((i) => i !== active)!;
    expect(roles.map((r) => r.leaseHolder)).toEqual([active.id, active.id]);

    const now = await logNow(env.bus);
    const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'instances-test');
    const allocation = (i: number): DomainEvent[] => {
      const startedAt = now - 2 * 3_600_000 + i * 1000;
      const meta = () => {
        const id = newEventId();
        return { id, time: new Date(now).toISOString(), tenantId: 'acme', correlationId: id };
      };
      return [
        publisher.build('ExternalAllocationStarted', { allocationId: `a-${i}`, tenantId: 'acme', projectId: 'p1', gpuModel: 'H100', gpus: GPUS, capacityType: 'on-demand', startedAt: new Date(startedAt).toISOString() }, meta()),
        publisher.build('ExternalAllocationStopped', { allocationId: `a-${i}`, tenantId: 'acme', stoppedAt: new Date(startedAt + ALLOCATION_MS).toISOString() }, meta()),
      ];
    };
    for (let i = 0; i < 20; i++) await publisher.publishAll(allocation(i));
    let last = await lastSequence(env.bus, env.bus.topology.streams.events);
    await eventually(async () => (await checkpoint()) >= last, { timeoutMs: 20_000, message: 'the active instance did not apply' });
    // The standby answers reads from the same tables and follows the checkpoint.
    await eventually(async () => (await usageRole(standby)).lastSequence >= last, { timeoutMs: 10_000, message: 'the standby did not follow the checkpoint' });

    active.process.kill('SIGKILL');
    for (let i = 20; i < 40; i++) await publisher.publishAll(allocation(i));
    const killedAt = Date.now();
    const takenOver = await eventually(async () => ((await usageRole(standby)).role === 'active' ? Date.now() : undefined), { timeoutMs: 30_000, message: 'the standby did not take over' });
    expect(takenOver - killedAt).toBeLessThan(LEASE_TTL_MS + 8000);
    last = await lastSequence(env.bus, env.bus.topology.streams.events);
    await eventually(async () => (await checkpoint()) >= last, { timeoutMs: 20_000, message: 'the new active instance did not apply' });

    const metered = await env.database.db
      .selectFrom('metering_allocations')
      .select((eb) => [eb.fn.countAll<string>().as('allocations'), eb.fn.sum<string>('gpu_ms').as('gpuMs')])
      .where('tenant_id', '=', 'acme')
      .executeTakeFirstOrThrow();
    expect({ allocations: Number(metered.allocations), gpuMs: Number(metered.gpuMs) }).toEqual({ allocations: 40, gpuMs: 40 * GPUS * ALLOCATION_MS });

    // One UsageRecorded per allocation in the log, however many instances published.
    await eventually(async () => (await checkpoint()) >= (await lastSequence(env.bus, env.bus.topology.streams.events)), { timeoutMs: 20_000 });
    const consumer = await env.bus.js.consumers.get(env.bus.topology.streams.events, { deliver_policy: DeliverPolicy.All, filter_subjects: env.bus.topology.subjects.usage('acme') });
    const perAllocation = new Map<string, number>();
    let pending = (await consumer.info(true)).num_pending;
    while (pending > 0) {
      const m = await consumer.next({ expires: 5000 });
      if (!m) break;
      const decoded = decodeEvent(m.data);
      if (decoded.ok && decoded.event.type === 'UsageRecorded') {
        const key = String((decoded.event.data as { allocationId?: string; usageId?: string }).usageId ?? decoded.event.id);
        perAllocation.set(key, (perAllocation.get(key) ?? 0) + 1);
      }
      pending = m.info.pending;
    }
    expect(perAllocation.size).toBe(40);
    expect([...perAllocation.values()].every((count) => count === 1)).toBe(true);
  }, 150_000);
});
