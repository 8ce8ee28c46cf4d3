/**
 * Proves the replicated log (issue 16) on a 3-server JetStream cluster on loopback (free ports,
 * throwaway stores; scripts/cluster): the project's streams are scaled to R3 and asserted when
 * the services start; a burst of external usage is published through the project's publisher
 * and, a third of the way in, the leader of the domain stream is found (stream info's
 * cluster.leader) and its process killed with SIGKILL. Then:
 * - every event whose publish was acknowledged is in the log exactly once (publishes in flight
 *   during the election were retried with the same Nats-Msg-Id and stored once);
 * - metering and billing, started before the kill and never restarted, apply the whole log:
 *   every allocation is metered and billed exactly once, GPU-ms equal to what was published.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliverPolicy } from '@nats-io/jetstream';
import { newEventId, type DomainEvent } from '@fastgpu/contracts';
import { EventPublisher, lastSequence } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, logNow, type TestEnvironment } from '@fastgpu/testing';
import { billingService } from '../../apps/billing/src/billing.service';
import { meteringService } from '../../apps/metering/src/metering.service';
import { startCluster, type Cluster } from '../../scripts/cluster/cluster';

const ALLOCATIONS = 240;
const GPUS = 2;
const ALLOCATION_MS = 60_000;
const CONCURRENCY = 16;

let cluster: Cluster;
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;

beforeAll(async () => {
  cluster = await startCluster({ size: 3 });
  env = await createTestEnvironment({ natsUrl: cluster.natsUrl, streamReplicas: 3 });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [meteringService, billingService], { port: 0, logger: false });
}, 90_000);

/** Every message of a stream by its Nats-Msg-Id: the sequences it is stored at. */
async function storedIds(stream: string): Promise<Map<string, number[]>> {
  const stored = new Map<string, number[]>();
  const consumer = await env.bus.js.consumers.get(stream, { deliver_policy: DeliverPolicy.All });
  let pending = (await consumer.info(true)).num_pending;
  while (pending > 0) {
    const m = await consumer.next({ expires: 5000 });
    if (!m) throw new Error('the log stopped answering while being read');
    const id = m.headers?.get('Nats-Msg-Id') ?? '';
    stored.set(id, [...(stored.get(id) ?? []), m.seq]);
    pending = m.info.pending;
  }
  return stored;
}

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
  await cluster?.stop();
});

describe('a 3-server JetStream cluster', () => {
  it('has every stream at three replicas, asserted when the services started', async () => {
    for (const name of Object.values(env.bus.topology.streams)) {
      const info = await env.bus.jsm.streams.info(name);
      expect({ name, replicas: info.config.num_replicas }).toEqual({ name, replicas: 3 });
      await eventually(async () => (await env.bus.jsm.streams.info(name)).cluster?.leader, { message: `${name} has no leader` });
    }
  });

  it('keeps every acknowledged event, once, when the stream leader is killed mid-burst, and metering and billing catch up without a restart', async () => {
    const stream = env.bus.topology.streams.events;
    const now = await logNow(env.bus);
    const publisher = new EventPublisher(runtime.bus.js, runtime.bus.topology, 'cluster-test', { retryMs: 30_000 });
    const meta = (id: string) => ({ id, time: new Date(now).toISOString(), tenantId: 'acme', correlationId: id });
    const events: DomainEvent[] = [];
    for (let i = 0; i < ALLOCATIONS; i++) {
      const allocationId = `burst-${i}`;
      const startedAt = now - 2 * 3_600_000 + i * 1000;
      events.push(publisher.build('ExternalAllocationStarted', { allocationId, tenantId: 'acme', projectId: 'p1', gpuModel: 'H100', gpus: GPUS, capacityType: 'on-demand', startedAt: new Date(startedAt).toISOString() }, meta(newEventId())));
      events.push(publisher.build('ExternalAllocationStopped', { allocationId, tenantId: 'acme', stoppedAt: new Date(startedAt + ALLOCATION_MS).toISOString() }, meta(newEventId())));
    }

    const acknowledged = new Map<string, number>();
    const failed: string[] = [];
    let next = 0;
    let killed: string | undefined;
    const killAt = Math.floor(events.length / 3);
    const killLeader = async () => {
      const leader = await cluster.streamLeader(stream);
      expect(leader).toBeTruthy();
      killed = leader;
      await cluster.kill(leader!);
    };
    let killing: Promise<void> | undefined;
    // Each worker publishes the events in order of its own pulls; starts precede stops per allocation.
    const worker = async () => {
      while (next < events.length) {
        const index = next++;
        if (index === killAt) killing = killLeader();
        const event = events[index]!;
        if (event.type === 'ExternalAllocationStopped') {
          // Its start was pulled first; wait until it is acknowledged (or gave up).
          const start = events[index - 1]!;
          await eventually(() => acknowledged.has(start.id) || failed.includes(start.id), { timeoutMs: 40_000, intervalMs: 5 });
        }
        try {
          const ack = await publisher.publish(event);
          acknowledged.set(event.id, ack.sequence);
        } catch {
          failed.push(event.id);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await killing;
    expect(killed).toBeTruthy();
    expect(failed).toEqual([]);
    expect(acknowledged.size).toBe(events.length);

    // A new leader among the two left, holding everything acknowledged, each event once.
    const leaderAfter = await eventually(() => cluster.streamLeader(stream), { timeoutMs: 20_000 });
    expect(leaderAfter).not.toBe(killed);
    // Reads right after an election may time out once: each is retried until it answers.
    const last = await eventually(() => lastSequence(env.bus, stream), { timeoutMs: 30_000 });
    const stored = await eventually(() => storedIds(stream), { timeoutMs: 30_000 });
    for (const [id, sequence] of acknowledged) expect({ id, sequences: stored.get(id) }).toEqual({ id, sequences: [sequence] });

    // Metering and billing, running all along, reach the end of the log and count each allocation once.
    for (const projection of ['usage', 'billing-ledger']) {
      await eventually(
        async () => {
          const row = await env.database.db.selectFrom('projection_checkpoints').select('last_sequence').where('projection', '=', projection).executeTakeFirst();
          return Number(row?.last_sequence ?? 0) >= last;
        },
        { timeoutMs: 30_000, message: `${projection} did not reach sequence ${last}` },
      ).catch(async (error: Error) => {
        throw new Error(`${error.message}; health: ${JSON.stringify(await runtime.health.report())}`);
      });
    }
    const metered = await env.database.db
      .selectFrom('metering_allocations')
      .select((eb) => [eb.fn.countAll<string>().as('allocations'), eb.fn.sum<string>('gpu_ms').as('gpuMs')])
      .where('tenant_id', '=', 'acme')
      .executeTakeFirstOrThrow();
    expect({ allocations: Number(metered.allocations), gpuMs: Number(metered.gpuMs) }).toEqual({ allocations: ALLOCATIONS, gpuMs: ALLOCATIONS * GPUS * ALLOCATION_MS });
    const billed = await eventually(
      async () => {
        const row = await env.database.db
          .selectFrom('billing_usage')
          .select((eb) => [eb.fn.countAll<string>().as('rows'), eb.fn.count<string>('usage_id').distinct().as('usages'), eb.fn.sum<string>('gpu_ms').as('gpuMs')])
          .where('tenant_id', '=', 'acme')
          .executeTakeFirstOrThrow();
        return Number(row.rows) >= ALLOCATIONS ? row : undefined;
      },
      { timeoutMs: 30_000, message: 'billing did not record every allocation' },
    );
    expect({ rows: Number(billed.rows), usages: Number(billed.usages), gpuMs: Number(billed.gpuMs) }).toEqual({ rows: ALLOCATIONS, usages: ALLOCATIONS, gpuMs: ALLOCATIONS * GPUS * ALLOCATION_MS });

    const health = await fetch(`${app.url}/healthz`);
    expect(health.status).toBe(200);
  }, 120_000);
});
