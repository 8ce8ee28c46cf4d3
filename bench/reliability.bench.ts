import pg from 'pg';
import { decodeValue, Heartbeat, makeEvent, nameId, parseJson, subjectFor, type DomainEvent, type EventData, type EventType } from '@fastgpu/contracts';
import { createDatabase, migrateToLatest } from '@fastgpu/db';
import { connectBus, deleteTopology, EventPublisher, lastSequence, ProjectionRunner, StreamFollower } from '@fastgpu/messaging';
import { initialFencingState } from '../apps/reliability/src/fencing/fencing.decider';
import { decideHeartbeat, evolveLiveness, initialLivenessState, type LivenessPolicy } from '../apps/reliability/src/liveness/liveness.decider';
import { slaProjection } from '../apps/reliability/src/sla/sla.projection';

/**
 * `npm run bench -- reliability [--nodes=1000] [--beats=100000] [--jobs=2000]`: two figures, each
 * a ratio against a baseline measured in the same run on the same data.
 *  1. The liveness loop's judgement of heartbeats (validation, fencing of running work, health
 *     thresholds) against only parsing and schema-checking the same bytes.
 *  2. The SLA read model's replay of a log (5 events per job) into Postgres against only reading
 *     and decoding the same log. Uses NATS and Postgres on 127.0.0.1 and cleans up after itself.
 */
function flag(flags: string[], name: string, fallback: number): number {
  const hit = flags.find((f) => f.startsWith(`--${name}=`));
  const value = hit ? Number(hit.split('=')[1]) : fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer`);
  return value;
}

const policy: LivenessPolicy = { heartbeatIntervalMs: 5_000, missedHeartbeatsBeforeLost: 3, clockSkewMs: 5_000, heartbeatRejectionIntervalMs: 60_000, eccErrorsMax: 8, xidErrorsMax: 4, temperatureCMax: 90 };

function heartbeatsBench(nodeCount: number, beatCount: number): void {
  const t0 = Date.UTC(2026, 10, 1);
  const state = initialLivenessState();
  const fencing = initialFencingState();
  for (let n = 0; n < nodeCount; n++) {
    const data: EventData<'NodeRegistered'> = { nodeId: `n${n}`, gpuModel: 'a100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: new Date(t0).toISOString() };
    evolveLiveness(state, makeEvent('NodeRegistered', data, { id: nameId('bench', String(n)), source: 'bench', time: data.registeredAt, tenantId: null, correlationId: 'bench' }, 'bench'), t0);
  }
  const bodies = Array.from({ length: nodeCount }, (_, n) =>
    new TextEncoder().encode(
      JSON.stringify({
        nodeId: `n${n}`,
        agentEpoch: 1,
        sentAt: new Date(t0).toISOString(),
        gpus: Array.from({ length: 8 }, (_, index) => ({ index, utilizationPercent: 90, memoryUsedMb: 70_000, temperatureC: 70, eccErrors: 0, xidErrors: 0 })),
        running: [{ subtaskId: `s${n}`, attempt: 1, leaseEpoch: 1 }],
      } satisfies Heartbeat),
    ),
  );
  const baselineStart = performance.now();
  for (let i = 0; i < beatCount; i++) {
    const parsed = parseJson(bodies[i % nodeCount]!);
    if (!parsed.ok || !Heartbeat.safeParse(parsed.value).success) throw new Error('baseline failed');
  }
  const baselineMs = performance.now() - baselineStart;
  const start = performance.now();
  for (let i = 0; i < beatCount; i++) {
    const parsed = parseJson(bodies[i % nodeCount]!);
    const verdict = decideHeartbeat(state, fencing, { subjectNodeId: `n${i % nodeCount}`, body: parsed.ok ? parsed.value : undefined, receivedAtMs: t0 + i }, policy);
    if (!verdict.accepted) throw new Error('heartbeat rejected');
  }
  const ms = performance.now() - start;
  console.log(`heartbeats judged: ${Math.round(beatCount / (ms / 1000)).toLocaleString('en-US')}/s (${nodeCount} nodes × 8 GPUs); parse+validate only: ${Math.round(beatCount / (baselineMs / 1000)).toLocaleString('en-US')}/s; ratio ${(ms / baselineMs).toFixed(2)}× the baseline`);
  console.log(`  a fleet of 10,000 nodes beating every 5 s sends 2,000 heartbeats/s: ${((beatCount / (ms / 1000)) / 2_000).toFixed(0)}× headroom`);
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function replayBench(jobs: number): Promise<void> {
  const dbName = `fastgpu_bench_reliability_${process.pid}`;
  const url = new URL(process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  url.pathname = `/${dbName}`;
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
  await admin((c) => c.query(`CREATE DATABASE ${dbName}`));
  const handle = createDatabase({ databaseUrl: url.toString(), poolSize: 4 });
  const bus = await connectBus({ natsUrl: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', subjectPrefix: `benchrel${process.pid}`, name: 'bench-reliability' });
  try {
    await migrateToLatest(handle.db);
    const publisher = new EventPublisher(bus.js, bus.topology, 'bench');
    const t0 = Date.UTC(2026, 9, 1);
    const events: DomainEvent[] = [];
    const add = <T extends EventType>(type: T, data: EventData<T>, atMs: number) => {
      const id = nameId('bench', type, String(events.length));
      events.push(makeEvent(type, data, { id, source: 'bench', time: new Date(atMs).toISOString(), tenantId: (data as { tenantId?: string }).tenantId ?? null, correlationId: id }, subjectFor(bus.topology, type, data)) as DomainEvent);
    };
    for (let j = 0; j < jobs; j++) {
      const at = t0 + j * 60_000;
      const jobId = `j${j}`;
      const tenantId = `t${j % 50}`;
      const iso = (ms: number) => new Date(ms).toISOString();
      add('JobSubmitted', { jobId, tenantId, projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 1, runtimeMs: 600_000, priorityClass: 'standard', priority: 0, preemptible: false, gang: false, capacityType: 'on-demand', dependsOn: [], submittedAt: iso(at) }, at);
      add('SubtaskPlaced', { jobId, tenantId, projectId: 'p', subtaskId: `s${j}`, attempt: 1, nodeId: `n${j % 100}`, gpuModel: 'a100', gpus: 2, gpuIndices: [0, 1], leaseEpoch: 1, capacityType: 'on-demand', runtimeMs: 600_000, placedAt: iso(at + 1_000) }, at + 1_000);
      add('SubtaskStarted', { jobId, tenantId, subtaskId: `s${j}`, attempt: 1, nodeId: `n${j % 100}`, leaseEpoch: 1, startedAt: iso(at + 2_000) }, at + 2_000);
      add('SubtaskCompleted', { jobId, tenantId, subtaskId: `s${j}`, attempt: 1, nodeId: `n${j % 100}`, leaseEpoch: 1, exitCode: 0, endedAt: iso(at + 602_000) }, at + 602_000);
      add('JobCompleted', { jobId, tenantId, projectId: 'p', outcome: 'succeeded', subtasksSucceeded: 1, subtasksFailed: 0, subtasksCancelled: 0, gpuMsObserved: 1_200_000, completedAt: iso(at + 602_001) }, at + 602_001);
    }
    await publisher.publishAll(events);
    const target = await lastSequence(bus, bus.topology.streams.events);

    const readStart = performance.now();
    let read = 0;
    await new Promise<void>((resolve, reject) => {
      const follower = new StreamFollower(bus, {
        stream: bus.topology.streams.events,
        fromSequence: 1,
        onBatch: async (messages) => {
          for (const m of messages) {
            const parsed = parseJson(m.data);
            if (parsed.ok && decodeValue(parsed.value).ok) read++;
          }
          if (messages[messages.length - 1]!.seq >= target) void follower.stop().then(resolve, reject);
        },
      });
      follower.start().catch(reject);
    });
    const readMs = performance.now() - readStart;

    const runner = new ProjectionRunner(bus, handle.db, slaProjection({ jobStartLatencyThresholdMs: 60_000, meteringFreshnessThresholdMs: 300_000 }));
    const applyStart = performance.now();
    await runner.start();
    if (!(await runner.waitFor(target, 600_000))) throw new Error(`the SLA projection did not reach ${target}`);
    const applyMs = performance.now() - applyStart;
    await runner.stop();
    console.log(`SLA read model replay: ${Math.round(events.length / (applyMs / 1000)).toLocaleString('en-US')} events/s (${events.length} events, ${jobs} jobs); read+decode only: ${Math.round(read / (readMs / 1000)).toLocaleString('en-US')} events/s; ratio ${(applyMs / readMs).toFixed(1)}× the baseline`);
  } finally {
    await deleteTopology(bus.jsm, bus.topology).catch(() => undefined);
    await bus.close();
    await handle.close();
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)).catch(() => undefined);
  }
}

export default async function reliabilityBench(flags: string[]): Promise<void> {
  heartbeatsBench(flag(flags, 'nodes', 1_000), flag(flags, 'beats', 100_000));
  await replayBench(flag(flags, 'jobs', 2_000));
}
