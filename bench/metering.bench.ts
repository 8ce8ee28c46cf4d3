import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInbox, headers as natsHeaders } from '@nats-io/transport-node';
import { DeliverPolicy } from '@nats-io/jetstream';
import { compile } from '../scripts/compile.mjs';
import { hashSecret } from '@fastgpu/auth';
import { loadConfig } from '@fastgpu/config';
import { HOUR_MS, Headers, topology, type Topology } from '@fastgpu/contracts';
import { createDatabase, migrateToLatest, type MeteringUsageHourlyTable } from '@fastgpu/db';
import { connectBus, deleteTopology, EventPublisher, lastSequence, type Bus } from '@fastgpu/messaging';
import { createRuntime, startServices } from '@fastgpu/platform';
import { databaseUrl, testServices, withAdminClient } from '@fastgpu/testing';
import { meteringService } from '../apps/metering/src/metering.service';
import { publishBatch } from '../apps/metering/src/external/ack-counting-publisher';

/**
 * `npm run bench -- metering [--10m] [--events=N] [--ingest=N]`
 *
 * 1. Generates N job events (default 1,000,000; 10,000,000 with --10m) into a unique stream
 *    prefix: per job JobSubmitted, SubtaskCreated/Placed/Started/Completed per sub-task (some
 *    preempted and retried), JobCompleted, many jobs interleaved as on a busy cluster.
 * 2. Measures the raw rate of an ordered consumer reading that stream (JSON-parsing each body).
 * 3. Replays the whole stream into Postgres exactly as `npm run replay -- usage` does (a fresh
 *    database on 127.0.0.1:5432, dropped afterwards), and prints both rates, their ratio
 *    (target ≥ 0.5) and peak memory, sampled as the replay goes.
 * 4. Measures external ingestion: events accepted per second through `POST /v1/events` in
 *    batches of 500 against raw JetStream publishing of the same events in the same run
 *    (target ≥ 20,000/s).
 * Streams and the database are removed at the end, also when a step fails.
 */

/** Publishes awaiting their PubAck at once while generating. */
const GENERATE_IN_FLIGHT_MAX = 4000;
/** Jobs running at once in the generated history (their events interleave). */
const CONCURRENT_JOBS = 400;
const INGEST_BATCH = 500;
const INGEST_CONCURRENCY = 8;

function flagValue(flags: string[], name: string): number | undefined {
  const flag = flags.find((f) => f.startsWith(`--${name}=`));
  return flag ? Number(flag.split('=')[1]!.replace(/_/g, '')) : undefined;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

let idCounter = 0;
const idPrefix = randomBytes(4).toString('hex');
function nextId(timeMs: number): string {
  const counter = (idCounter++).toString(16).padStart(12, '0');
  const t = timeMs.toString(16).padStart(12, '0');
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${idPrefix.slice(0, 3)}-8${idPrefix.slice(3, 6)}-${counter}`;
}

/** One generated event: its body and what its publisher puts in headers. */
interface BenchEvent {
  subject: string;
  body: string;
  type: string;
  id: string;
  tenantId: string;
}

/** A job's events, generated lazily so memory stays flat whatever N is. */
export function* jobEvents(topo: Topology, jobIndex: number, random: () => number): Generator<BenchEvent> {
  const tenantId = `t${jobIndex % 97}`;
  const projectId = `p${jobIndex % 13}`;
  const jobId = `j${jobIndex}`;
  const subtasks = 1 + Math.floor(random() * 6);
  const gpus = [1, 2, 4, 8][Math.floor(random() * 4)]!;
  const model = ['H100', 'A100', 'L40S'][jobIndex % 3]!;
  const capacityType = ['on-demand', 'preemptible', 'reserved'][jobIndex % 3]!;
  const submittedMs = Date.UTC(2026, 0, 1) + jobIndex * 7_000;
  const envelope = (type: string, subject: string, data: object, timeMs: number) => {
    const id = nextId(timeMs);
    return { subject, type, id, tenantId, body: JSON.stringify({ specversion: '1.0', id, source: 'bench', type, subject, time: new Date(timeMs).toISOString(), tenantid: tenantId, correlationid: jobId, schemaversion: 1, data }) };
  };
  const iso = (ms: number) => new Date(ms).toISOString();
  yield envelope('JobSubmitted', topo.subjects.job(jobId), { jobId, tenantId, projectId, gpuModels: [model], gpusPerSubtask: gpus, subtaskCount: subtasks, runtimeMs: HOUR_MS, priorityClass: 'standard', priority: 10, preemptible: false, gang: false, capacityType, dependsOn: [], submittedAt: iso(submittedMs) }, submittedMs);
  let gpuMsObserved = 0;
  for (let s = 0; s < subtasks; s++) {
    const subtaskId = `${jobId}s${s}`;
    yield envelope('SubtaskCreated', topo.subjects.job(jobId), { jobId, tenantId, subtaskId, index: s, gpus, gpuModels: [model], runtimeMs: HOUR_MS }, submittedMs);
    const attempts = random() < 0.05 ? 2 : 1;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const nodeId = `n${(jobIndex * 7 + s) % 512}`;
      const leaseEpoch = attempt;
      const placedMs = submittedMs + attempt * 60_000 + s * 1000;
      const startMs = placedMs + 1500 + Math.floor(random() * 1000);
      const runMs = 20 * 60_000 + Math.floor(random() * 3 * HOUR_MS);
      const report = { jobId, tenantId, subtaskId, attempt, nodeId, leaseEpoch };
      yield envelope('SubtaskPlaced', topo.subjects.schedulerNode(nodeId), { ...report, projectId, gpuModel: model, gpus, gpuIndices: [0], capacityType, runtimeMs: HOUR_MS, placedAt: iso(placedMs) }, placedMs);
      yield envelope('SubtaskStarted', topo.subjects.agentNode(nodeId), { ...report, startedAt: iso(startMs) }, startMs);
      if (attempt < attempts) {
        const preemptedMs = startMs + Math.floor(runMs / 3);
        gpuMsObserved += gpus * (preemptedMs - startMs);
        yield envelope('SubtaskPreempted', topo.subjects.schedulerNode(nodeId), { jobId, tenantId, subtaskId, attempt, nodeId, leaseEpoch, reason: 'bench', preemptedAt: iso(preemptedMs) }, preemptedMs);
      } else {
        gpuMsObserved += gpus * runMs;
        yield envelope('SubtaskCompleted', topo.subjects.agentNode(nodeId), { ...report, exitCode: 0, endedAt: iso(startMs + runMs) }, startMs + runMs);
      }
    }
  }
  yield envelope('JobCompleted', topo.subjects.schedulerJob(jobId), { jobId, tenantId, projectId, outcome: 'succeeded', subtasksSucceeded: subtasks, subtasksFailed: 0, subtasksCancelled: 0, gpuMsObserved, completedAt: iso(submittedMs + 4 * HOUR_MS) }, submittedMs + 4 * HOUR_MS);
}

/** N events from CONCURRENT_JOBS interleaved jobs, lazily. */
export function* history(topo: Topology, total: number): Generator<BenchEvent> {
  let seed = 42;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  let nextJob = 0;
  const active: Array<Generator<BenchEvent>> = [];
  for (let i = 0; i < CONCURRENT_JOBS; i++) active.push(jobEvents(topo, nextJob++, random));
  for (let emitted = 0, slot = 0; emitted < total; slot = (slot + 1) % CONCURRENT_JOBS) {
    const step = active[slot]!.next();
    if (step.done) {
      active[slot] = jobEvents(topo, nextJob++, random);
      continue;
    }
    emitted++;
    yield step.value;
  }
}

/** Publishes with a reply inbox counting PubAcks (bounded in flight): the fastest JetStream path. */
export async function generate(bus: Bus, total: number): Promise<{ seconds: number; bytes: number }> {
  const encoder = new TextEncoder();
  const inbox = createInbox();
  let acked = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const sub = bus.nc.subscribe(`${inbox}.*`, {
    callback: (_err, msg) => {
      acked++;
      if (msg.data.length > 0 && msg.data[2] === 0x65 /* {"error" */) failure ??= new Error(`publish failed: ${msg.string()}`);
      wake?.();
    },
  });
  const started = performance.now();
  let sent = 0;
  let bytes = 0;
  for (const { subject, body, type, id, tenantId } of history(bus.topology, total)) {
    while (sent - acked >= GENERATE_IN_FLIGHT_MAX) await new Promise<void>((resolve) => (wake = resolve));
    if (failure) throw failure;
    const data = encoder.encode(body);
    bytes += data.length;
    // The headers EventPublisher sets on every event (libs/messaging publisher.ts).
    const h = natsHeaders();
    h.set(Headers.messageId, id);
    h.set(Headers.eventType, type);
    h.set(Headers.schemaVersion, '1');
    h.set(Headers.tenantId, tenantId);
    bus.nc.publish(subject, data, { reply: `${inbox}.${sent}`, headers: h });
    sent++;
    if (sent % 200_000 === 0) process.stdout.write(`  generated ${fmt(sent)}\r`);
  }
  while (acked < sent) await new Promise<void>((resolve) => (wake = resolve));
  sub.unsubscribe();
  if (failure) throw failure;
  return { seconds: (performance.now() - started) / 1000, bytes };
}

const benchFolder = path.dirname(fileURLToPath(import.meta.url));

/**
 * The replay process runs compiled ahead of time, as `npm run replay` runs it (scripts/compile.mjs):
 * the tsx compiler held ~80 MB of the old 206 MB start.
 */
export function bundleReplayChild(): Promise<string> {
  return compile(path.join(benchFolder, 'metering-replay.child.ts'));
}

async function runReplayChild(script: string, natsUrl: string, prefix: string, url: string, target: number): Promise<{ sequence: number; seconds: number; peakRssMb: number; rssAt: string[] }> {
  // Node's default heap settings: a larger semi-space would apply to the reader thread's heap too
  // (V8 flags are per process), which cost ~90 MB of RSS for no gain once reading moved there.
  const child = spawn(process.execPath, [script, natsUrl, prefix, url, String(target)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`replay process exited with ${code}`);
  return JSON.parse(output.trim().split('\n').pop()!) as { sequence: number; seconds: number; peakRssMb: number; rssAt: string[] };
}

async function rawRead(bus: Bus, last: number): Promise<number> {
  const consumer = await bus.js.consumers.get(bus.topology.streams.events, { deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume({ max_messages: 5000 });
  const started = performance.now();
  let count = 0;
  for await (const m of messages) {
    // The client's own decoding (one shared TextDecoder, then JSON.parse).
    m.json();
    count++;
    if (m.seq >= last) break;
  }
  await messages.close();
  return count / ((performance.now() - started) / 1000);
}

/** Longest wait for the live usage projection to fold the baseline's events. */
const CATCH_UP_TIMEOUT_MS = 300_000;

async function projectionCaughtUp(runtime: Awaited<ReturnType<typeof createRuntime>>, sequence: number): Promise<void> {
  const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
  for (;;) {
    const row = await runtime.db.selectFrom('projection_checkpoints').select('last_sequence').where('projection', '=', 'usage').executeTakeFirst();
    if (Number(row?.last_sequence ?? 0) >= sequence) return;
    if (Date.now() > deadline) throw new Error(`the usage projection did not reach sequence ${sequence} within ${CATCH_UP_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * The load generator of the ingestion step: its own Node process, as a real producer is, posting
 * prepared bodies with node:http on keep-alive sockets (one per concurrent request). undici's
 * fetch in the server's process cost about as much CPU per request as the server's own work, on
 * a 2-core machine. It reads each answer (status and JSON outcome) as a producer must, and
 * reports its own CPU so both sides are printed.
 */
const INGEST_CLIENT = `
const http = require('node:http');
process.once('message', ({ url, secret, bodies, concurrency }) => {
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const buffers = bodies.map((b) => Buffer.from(b));
  const post = (body) => new Promise((resolve, reject) => {
    const req = http.request({ host: target.hostname, port: target.port, path: '/v1/events', method: 'POST', agent, headers: { authorization: 'Bearer ' + secret, 'content-type': 'application/cloudevents-batch+json', 'content-length': body.length } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
  process.send({ ready: true });
  process.once('message', async () => {
    const cpuBefore = process.cpuUsage();
    let accepted = 0;
    let next = 0;
    try {
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next < buffers.length) {
          const { status, text } = await post(buffers[next++]);
          if (status !== 200) throw new Error('POST /v1/events answered ' + status + ': ' + text.slice(0, 300));
          accepted += JSON.parse(text).accepted;
        }
      }));
      const cpu = process.cpuUsage(cpuBefore);
      process.send({ accepted, cpuUs: cpu.user + cpu.system }, () => process.exit(0));
    } catch (error) {
      process.send({ error: String(error && error.message || error) }, () => process.exit(1));
    }
    agent.destroy();
  });
});
`;

interface IngestClientReport {
  ready?: true;
  accepted?: number;
  cpuUs?: number;
  error?: string;
}

async function ingest(config: ReturnType<typeof loadConfig>, count: number): Promise<{ httpRate: number; rawRate: number; accepted: number; cpuUsPerEvent: number; clientCpuUsPerEvent: number }> {
  const runtime = await createRuntime(config, { migrate: false });
  const app = await startServices(runtime, [meteringService], { port: 0, logger: false });
  const client = spawn(process.execPath, ['-e', INGEST_CLIENT], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const secret = `fgk_bench_${randomBytes(16).toString('hex')}`;
    await runtime.db.insertInto('api_keys').values({ key_id: 'bench', tenant_id: 'bench-tenant', role: 'tenant', secret_hash: hashSecret(secret), issued_at: new Date().toISOString() }).execute();
    const now = Date.now();
    const eventsFor = (prefix: string) =>
      Array.from({ length: count }, (_, i) => {
        const allocationId = `${prefix}-${Math.floor(i / 2)}`;
        return i % 2 === 0
          ? { specversion: '1.0', id: `${prefix}-${i}`, source: 'urn:bench', type: 'ExternalAllocationStarted', data: { allocationId, projectId: 'p', gpuModel: 'L4', gpus: 1, capacityType: 'on-demand', startedAt: new Date(now - HOUR_MS + i).toISOString() } }
          : { specversion: '1.0', id: `${prefix}-${i}`, source: 'urn:bench', type: 'ExternalAllocationStopped', data: { allocationId, stoppedAt: new Date(now - HOUR_MS / 2 + i).toISOString() } };
      });

    // Baseline: the same events as envelopes, published straight to JetStream with msg ids.
    const publisher = new EventPublisher(runtime.bus.js, runtime.bus.topology, 'bench');
    const envelopes = eventsFor('raw').map((e) =>
      publisher.build(e.type as 'ExternalAllocationStarted', { ...(e.data as Record<string, unknown>), tenantId: 'bench-raw' } as never, { id: e.id, time: new Date(now).toISOString(), tenantId: 'bench-raw', correlationId: e.id }),
    );
    let started = performance.now();
    for (let i = 0; i < envelopes.length; i += 1000) await publishBatch(runtime.bus.nc, envelopes.slice(i, i + 1000));
    const rawRate = count / ((performance.now() - started) / 1000);
    // The service's live usage projection folds the baseline's events too: let it finish them
    // before the clock starts, so the HTTP phase is not charged with the baseline's backlog.
    await projectionCaughtUp(runtime, await lastSequence(runtime.bus, runtime.bus.topology.streams.events));

    const events = eventsFor('http');
    // Request bodies are serialised (and handed to the client process) before the clock starts,
    // as the raw baseline's envelopes are built before it.
    const bodies: string[] = [];
    for (let i = 0; i < events.length; i += INGEST_BATCH) bodies.push(JSON.stringify(events.slice(i, i + INGEST_BATCH)));
    const reports: IngestClientReport[] = [];
    let wake: (() => void) | undefined;
    client.on('message', (report: IngestClientReport) => {
      reports.push(report);
      wake?.();
    });
    client.on('exit', (code) => {
      if (code !== 0) reports.push({ error: `the client process exited with ${code}` });
      wake?.();
    });
    const nextReport = async (): Promise<IngestClientReport> => {
      while (!reports.length) await new Promise<void>((resolve) => (wake = resolve));
      const report = reports.shift()!;
      if (report.error) throw new Error(report.error);
      return report;
    };
    client.send({ url: app.url, secret, bodies, concurrency: INGEST_CONCURRENCY });
    await nextReport();
    started = performance.now();
    // CPU of this process (the server) per accepted event: steadier than the rate on a shared machine.
    const cpuBefore = process.cpuUsage();
    client.send({ go: true });
    const done = await nextReport();
    const httpRate = done.accepted! / ((performance.now() - started) / 1000);
    const cpu = process.cpuUsage(cpuBefore);
    return { httpRate, rawRate, accepted: done.accepted!, cpuUsPerEvent: (cpu.user + cpu.system) / done.accepted!, clientCpuUsPerEvent: done.cpuUs! / done.accepted! };
  } finally {
    if (client.exitCode === null) client.kill();
    await app.close();
    await runtime.close();
  }
}

export default async function run(flags: string[]): Promise<void> {
  const total = flagValue(flags, 'events') ?? (flags.includes('--10m') ? 10_000_000 : 1_000_000);
  const ingestCount = flagValue(flags, 'ingest') ?? 100_000;
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const prefix = `benchm${runId}`;
  const dbName = `fastgpu_bench_metering_${runId}`;
  const natsUrl = testServices.natsUrl;
  console.log(`metering benchmark: ${fmt(total)} job events, prefix ${prefix}, database ${dbName}`);

  await withAdminClient((c) => c.query(`CREATE DATABASE ${dbName}`));
  const database = createDatabase({ databaseUrl: databaseUrl(dbName), poolSize: 4 });
  let bus: Bus | undefined;
  const ingestTopology = topology(`${prefix}i`);
  try {
    await migrateToLatest(database.db);
    bus = await connectBus({ natsUrl, subjectPrefix: prefix, name: 'bench-metering' });

    const generated = await generate(bus, total);
    const last = await lastSequence(bus, bus.topology.streams.events);
    console.log(`generated ${fmt(last)} events (${fmt(generated.bytes / last)} bytes each on average) in ${generated.seconds.toFixed(1)} s: ${fmt(last / generated.seconds)}/s`);

    const rawRate = await rawRead(bus, last);
    console.log(`raw ordered-consumer read (JSON parse): ${fmt(rawRate)} events/s`);

    // The replay runs in its own process, as `npm run replay -- usage` does, so its peak memory is its own.
    const replay = await runReplayChild(await bundleReplayChild(), natsUrl, prefix, databaseUrl(dbName), last);
    const replayRate = last / replay.seconds;
    // The replay's copy of the hourly table, with the live table's columns.
    const [totals] = await database.db
      .withTables<{ metering_usage_hourly_rebuild: MeteringUsageHourlyTable }>()
      .selectFrom('metering_usage_hourly_rebuild')
      .select((eb) => [eb.fn.countAll().as('rows'), eb.fn.sum('gpu_ms').as('gpu_ms')])
      .execute();
    console.log(`replay into Postgres (npm run replay -- usage): ${fmt(replay.sequence)} events in ${replay.seconds.toFixed(1)} s: ${fmt(replayRate)} events/s`);
    console.log(`  hourly rows ${fmt(Number(totals!.rows))}, GPU-ms ${String(totals!.gpu_ms)}`);
    console.log(`  replay/raw ratio: ${(replayRate / rawRate).toFixed(2)} (target >= 0.5)`);
    console.log(`  peak RSS of the replay process: ${fmt(replay.peakRssMb)} MB (rss at ${replay.rssAt.join(', ')})`);

    const config = loadConfig({ natsUrl, subjectPrefix: ingestTopology.prefix, databaseUrl: databaseUrl(dbName), httpPort: 0, adminKey: `bench-admin-${randomBytes(12).toString('hex')}` });
    const ingested = await ingest(config, ingestCount);
    console.log(`external ingestion: POST /v1/events (batches of ${INGEST_BATCH}, ${INGEST_CONCURRENCY} concurrent, node:http client in its own process): ${fmt(ingested.httpRate)} events/s accepted (${fmt(ingested.accepted)}; CPU per event ${ingested.cpuUsPerEvent.toFixed(1)} µs server process + ${ingested.clientCpuUsPerEvent.toFixed(1)} µs client)`);
    console.log(`  raw JetStream publish of the same events (msg id, acked batches of 1,000): ${fmt(ingested.rawRate)} events/s; ratio ${(ingested.httpRate / ingested.rawRate).toFixed(2)} (target >= 20,000 events/s)`);
    console.log(`
| figure | value |
| --- | --- |
| events | ${fmt(last)} |
| raw ordered read | ${fmt(rawRate)} events/s |
| replay into Postgres | ${fmt(replayRate)} events/s |
| ratio | ${(replayRate / rawRate).toFixed(2)} |
| peak RSS (replay process) | ${fmt(replay.peakRssMb)} MB |
| POST /v1/events | ${fmt(ingested.httpRate)} events/s |
| raw JetStream publish | ${fmt(ingested.rawRate)} events/s |`);
  } finally {
    if (bus) {
      await deleteTopology(bus.jsm, bus.topology).catch(() => undefined);
      await deleteTopology(bus.jsm, ingestTopology).catch(() => undefined);
      await bus.close();
    }
    await database.close();
    await withAdminClient((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
    console.log('cleaned up: streams and database dropped');
  }
}
