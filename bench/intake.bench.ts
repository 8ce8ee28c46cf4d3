import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { loadConfig } from '@fastgpu/config';
import { connectBus, deleteTopology, EventPublisher } from '@fastgpu/messaging';
import { createRuntime, startServices } from '@fastgpu/platform';
import { deriveId, newEntityId } from '@fastgpu/contracts';
import pg from 'pg';
import { intakeService } from '../apps/intake/src/intake.service';

/**
 * `npm run bench -- intake [--jobs=N] [--clients=C] [--subtasks=S]`: job submissions accepted per second
 * through `POST /v1/jobs` (validation, auth, task division, idempotency key, JetStream publish
 * with msg-id, read-your-writes on the jobs read model) from concurrent HTTP clients on
 * keep-alive connections, with latency percentiles. The baseline, measured in the same run, is
 * publishing the same events straight to JetStream (1,000 in flight): the ratio says what the
 * HTTP edge and the read model cost on top of the log. Needs PostgreSQL and NATS on loopback;
 * uses a fresh database and its own streams, dropped at the end.
 *
 * The edge's per-key and per-tenant rate limits are configured far above what one machine can
 * send (they stay in the path, so their cost is measured, but never refuse), and the bench fails
 * when any submission is answered other than 202: a figure that includes refusals measures the
 * limiter, not intake.
 */
const ADMIN = `bench-admin-${randomBytes(8).toString('hex')}`;

/** Rate limits no load generator on one machine reaches (the config's upper bounds): the limiter is passed through, never refuses. */
const RATE_LIMITS_UNREACHABLE = {
  rateLimitKeyPerSecond: 1_000_000,
  rateLimitKeyBurst: 10_000_000,
  rateLimitTenantPerSecond: 1_000_000,
  rateLimitTenantBurst: 10_000_000,
} as const;

function flag(flags: string[], name: string, fallback: number): number {
  const found = flags.find((f) => f.startsWith(`--${name}=`));
  return found ? Number(found.split('=')[1]) : fallback;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/**
 * The load generator runs in its own thread so the server keeps the main thread. It uses
 * node:http on keep-alive sockets (one per client) rather than fetch: undici's fetch costs
 * about as much CPU per request as the server does, and on a 2-core machine the client's CPU
 * is taken from the system under test.
 */
const loadWorker = `
const http = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
const { url, key, jobs, clients, subtasks } = workerData;
const target = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
const body = Buffer.from(JSON.stringify({ projectId: 'bench', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: subtasks, runtimeSeconds: 60 }));
let next = 0; const latencies = []; let failures = 0; const statuses = {};
function post(i) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: target.hostname, port: target.port, path: '/v1/jobs', method: 'POST', agent, headers: { authorization: 'Bearer ' + key, 'content-type': 'application/json', 'content-length': body.length, 'idempotency-key': 'bench-' + i } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}
async function client() {
  for (;;) {
    const i = next++;
    if (i >= jobs) return;
    const t0 = performance.now();
    const status = await post(i);
    if (status !== 202) {
      failures++;
      statuses[status] = (statuses[status] || 0) + 1;
    }
    latencies.push(performance.now() - t0);
  }
}
(async () => {
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, () => client()));
  parentPort.postMessage({ seconds: (performance.now() - t0) / 1000, latencies, failures, statuses });
  agent.destroy();
})();
`;

export default async function run(flags: string[]): Promise<void> {
  const jobs = flag(flags, 'jobs', 10_000);
  const clients = flag(flags, 'clients', 64);
  /** Sub-tasks per job: 1 by default; a big job (e.g. 100) appends one SubtaskCreated per sub-task. */
  const subtasks = flag(flags, 'subtasks', 1);
  const unique = randomBytes(4).toString('hex');
  const dbName = `fgintake_bench_${unique}`;
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const config = loadConfig({ databaseUrl: `postgres://postgres@127.0.0.1:5432/${dbName}`, subjectPrefix: `bench${unique}`, adminKey: ADMIN, httpPort: 0, grpcPort: 0, ...RATE_LIMITS_UNREACHABLE });
  const runtime = await createRuntime(config);
  const started = await startServices(runtime, [intakeService], { port: 0, logger: false });
  try {
    // Baseline: the same events (JobSubmitted + a SubtaskCreated per sub-task, per job) straight to JetStream.
    const baselineBus = await connectBus({ natsUrl: config.natsUrl, subjectPrefix: `bench${unique}b` });
    const publisher = new EventPublisher(baselineBus.js, baselineBus.topology, 'bench');
    const now = new Date().toISOString();
    const events = [];
    for (let i = 0; i < jobs; i++) {
      const jobId = newEntityId();
      const meta = (d: string) => ({ id: deriveId(jobId, d), time: now, tenantId: 'bench', correlationId: jobId });
      events.push(
        publisher.build('JobSubmitted', { jobId, tenantId: 'bench', projectId: 'bench', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: subtasks, runtimeMs: 60_000, priorityClass: 'standard', priority: 0, preemptible: false, gang: false, capacityType: 'on-demand', dependsOn: [], submittedAt: now }, meta('JobSubmitted')),
        ...Array.from({ length: subtasks }, (_, index) =>
          publisher.build('SubtaskCreated', { jobId, tenantId: 'bench', subtaskId: `${jobId}-${index}`, index, gpus: 1, gpuModels: ['a100'], runtimeMs: 60_000 }, meta(`SubtaskCreated:${index}`)),
        ),
      );
    }
    const b0 = performance.now();
    await publisher.publishAll(events);
    const baselineSeconds = (performance.now() - b0) / 1000;
    await deleteTopology(baselineBus.jsm, baselineBus.topology);
    await baselineBus.close();

    const tenant = await fetch(`${started.url}/v1/tenants`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ tenantId: 'bench', name: 'Bench' }) });
    if (tenant.status !== 201) throw new Error(`tenant: ${tenant.status}`);
    const key = (await (await fetch(`${started.url}/v1/tenants/bench/api-keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: '{}' })).json()) as { secret: string };

    const result = await new Promise<{ seconds: number; latencies: number[]; failures: number; statuses: Record<string, number> }>((resolve, reject) => {
      const worker = new Worker(loadWorker, { eval: true, workerData: { url: started.url, key: key.secret, jobs, clients, subtasks } });
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const latencies = result.latencies.sort((a, b) => a - b);
    const jobsPerSecond = jobs / result.seconds;
    const baselineJobsPerSecond = jobs / baselineSeconds;
    // The read model (GET /v1/jobs) follows the log on its own; say how far behind it ended.
    const caughtUp0 = performance.now();
    let stored = { n: 0 };
    while (performance.now() - caughtUp0 < 30_000) {
      stored = await runtime.db.selectFrom('jobs').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      if (Number(stored.n) >= jobs) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const catchUpMs = performance.now() - caughtUp0;
    const refusals = Object.entries(result.statuses).map(([status, n]) => `${n} × ${status}`).join(', ');
    console.log(`jobs submitted          ${jobs} of ${subtasks} sub-task(s) from ${clients} concurrent HTTP clients (${stored.n} in the read model ${catchUpMs.toFixed(0)} ms after the last answer)`);
    console.log(`answers other than 202  ${result.failures}${refusals ? ` (${refusals})` : ''}`);
    console.log(`POST /v1/jobs           ${jobsPerSecond.toFixed(0)} jobs/s   p50 ${percentile(latencies, 50).toFixed(1)} ms   p99 ${percentile(latencies, 99).toFixed(1)} ms   max ${latencies.at(-1)?.toFixed(1)} ms`);
    console.log(`baseline: raw JetStream ${baselineJobsPerSecond.toFixed(0)} jobs/s (${subtasks + 1} events each, 1,000 in flight)`);
    console.log(`ratio (HTTP / raw)      ${(jobsPerSecond / baselineJobsPerSecond).toFixed(3)}   target: ≥ 2,000 jobs/s accepted through HTTP`);
    console.log(`machine load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} cores (figures scale with what else runs)`);
    console.log(`peak RSS                ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
    // Figures that include refused submissions are not figures of intake: the run fails.
    if (result.failures > 0) throw new Error(`intake bench: ${result.failures} of ${jobs} submissions were not answered 202 (${refusals}); the figures above are not valid`);
  } finally {
    await started.close();
    await deleteTopology(runtime.bus.jsm, runtime.bus.topology).catch(() => undefined);
    await runtime.close();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName}`).catch(async () => {
      await new Promise((r) => setTimeout(r, 500));
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    });
    await admin.end();
  }
}
