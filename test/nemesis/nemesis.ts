import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createDatabase, migrateToLatest, type DatabaseHandle } from '@fastgpu/db';
import { connectBus, type Bus } from '@fastgpu/messaging';
import { freePort, startCluster, type Cluster } from '../../scripts/cluster/cluster';
import { compile } from '../../scripts/compile.mjs';
import { checkInvariants, type CheckpointSamples, type InvariantResult } from './invariants';
import { unreleasedLeases } from './log-summary';
import { startThrowawayPostgres, type ThrowawayPostgres } from './postgres';
import { parseFleetSpec } from '../../apps/node-simulator/src/simulated-node';
import { compileServices, killProcess, SERVICES, serviceProcess, type ServiceProcess } from './processes';

/**
 * The nemesis (issue 16): a seeded, bounded fault run against the whole platform as real
 * processes. It starts a 3-server JetStream cluster on loopback (streams at R3), a throwaway
 * PostgreSQL cluster of its own, N instances of each service (compiled ahead of time) and one
 * simulated fleet; drives jobs, GPU leases and external usage through the HTTP API as a client
 * that retries with the same Idempotency-Key / event ids, recording every answer; injects faults
 * (kill -9 and restart of any process, SIGSTOP/SIGCONT, kill of the domain stream's leader,
 * PostgreSQL immediate stop); heals; waits for the system to converge within a stated bound; and
 * checks the invariants (invariants.ts), each by name.
 *
 * The seed fixes the client's operations and the fault schedule (two PRNG streams); timing on a
 * loaded machine still varies, so a failing seed is rerun with `npm run nemesis -- --seed S`.
 */
export interface NemesisOptions {
  seed: number;
  /** How long clients and faults run before healing. */
  chaosMs: number;
  /** Instances of each service (the simulator always 1). */
  instances: number;
  /** Bound on convergence after healing: every job terminal, every projection at the end of the log. */
  convergeMs?: number;
  log?(line: string): void;
}

export interface HistoryEntry {
  atMs: number;
  op: 'job' | 'lease' | 'release' | 'external';
  key: string;
  tenant: string;
  status: number;
  attempts: number;
  id?: string;
}

export interface FaultEntry {
  atMs: number;
  kind: 'kill-9' | 'sigstop' | 'nats-leader-kill' | 'postgres-immediate-stop' | 'clock-skew';
  target: string;
  durationMs: number;
  /** clock-skew: how far the node's clock was ahead (negative: behind). */
  skewMs?: number;
}

/** One node's clock skewed from `fromMs` to `toMs` (machine time): what the skew invariant checks. */
export interface SkewWindow {
  nodeId: string;
  skewMs: number;
  fromMs: number;
  toMs: number;
}

/** The simulated fleet: enough GPUs of each model for what the client submits (a backlog would outlast the convergence bound). */
const FLEET = 'a100:4x2,h100:4x2';
const fleet = parseFleetSpec(FLEET);

/** Clock skews the nemesis gives a node: ten minutes and an hour, either way (issue 16's findings). */
const CLOCK_SKEWS_MS = [600_000, -600_000, 3_600_000, -3_600_000] as const;

export interface NemesisResult {
  seed: number;
  ok: boolean;
  invariants: InvariantResult[];
  history: { operations: number; acknowledged: Record<string, number>; refused: Record<string, number> };
  faults: FaultEntry[];
  convergedInMs: number | null;
  tails?: Record<string, string>;
}

/** mulberry32: a small seeded PRNG, [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  attempts: number;
}

/** Calls one of `targets` (running instances, in turn); retries network errors and 5xx the same request, up to `attempts`. */
async function callAny(targets: () => ServiceProcess[], method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}, attempts = 12): Promise<Answer> {
  let last: Answer = { status: 0, body: undefined, attempts: 0 };
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const live = targets().filter((p) => p.running && !p.stopped);
    const target = live[attempt % Math.max(1, live.length)];
    if (!target) {
      await sleep(500);
      continue;
    }
    try {
      const response = await fetch(`${target.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await response.text();
      last = { status: response.status, body: text ? safeJson(text) : undefined, attempts: attempt };
      if (response.status < 500 && response.status !== 429) return last;
    } catch {
      last = { status: 0, body: undefined, attempts: attempt };
    }
    await sleep(Math.min(300 * attempt, 2000));
  }
  return last;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function runNemesis(options: NemesisOptions): Promise<NemesisResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const seed = options.seed;
  const opsRandom = prng(seed);
  const faultRandom = prng(seed ^ 0x5eed);
  const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const convergeMs = options.convergeMs ?? 120_000;
  const adminKey = `fgk_nemesis_admin_${randomBytes(12).toString('hex')}`;
  const prefix = `nem${seed}`;

  let cluster: Cluster | undefined;
  let postgres: ThrowawayPostgres | undefined;
  let database: DatabaseHandle | undefined;
  let bus: Bus | undefined;
  let sampler: pg.Pool | undefined;
  const processes: Array<ServiceProcess & { start(): Promise<void> }> = [];
  const skewDir = mkdtempSync(path.join(tmpdir(), 'fastgpu-nemesis-skew-'));
  const skewFile = path.join(skewDir, 'clock-skew.json');
  const skews: SkewWindow[] = [];
  const started = Date.now();
  const at = () => Date.now() - started;
  try {
    log(`nemesis seed ${seed}: ${options.chaosMs} ms of faults, ${options.instances} instance(s) of each service`);
    cluster = await startCluster({ size: 3 });
    postgres = startThrowawayPostgres(await freePort());
    const admin = new pg.Client({ connectionString: postgres.url() });
    await admin.connect();
    await admin.query('CREATE DATABASE fastgpu');
    await admin.end();
    const databaseUrl = postgres.url('fastgpu');
    database = createDatabase({ databaseUrl, poolSize: 3 });
    await migrateToLatest(database.db);
    bus = await connectBus({ natsUrl: cluster.natsUrl, subjectPrefix: prefix, name: 'nemesis', replicas: 3 });
    const bundles = await compileServices();
    const replayBundle = await compile('apps/fastgpu/src/cli/replay.cli.ts');
    const env: Record<string, string> = {
      NATS_URL: cluster.natsUrl,
      DATABASE_URL: databaseUrl,
      FASTGPU_PREFIX: prefix,
      FASTGPU_STREAM_REPLICAS: '3',
      FASTGPU_ADMIN_KEY: adminKey,
      FASTGPU_HEARTBEAT_INTERVAL_MS: '1000',
      FASTGPU_MISSED_HEARTBEATS: '6',
      FASTGPU_SIMULATED_NODES: FLEET,
      FASTGPU_SIMULATOR_SPEED: '0.05',
      FASTGPU_SIMULATOR_CLOCK_SKEW_FILE: skewFile,
      FASTGPU_PROJECTION_LEASE_TTL_MS: '2000',
      FASTGPU_SCHEDULER_LEASE_TTL_MS: '2000',
      FASTGPU_RATE_LIMIT_KEY_PER_SECOND: '0',
      FASTGPU_RATE_LIMIT_TENANT_PER_SECOND: '0',
      LOG_LEVEL: 'warn',
    };
    for (const kind of SERVICES) {
      for (let i = 1; i <= options.instances; i++) {
        processes.push(serviceProcess({ name: `${kind}-${i}`, kind, bundle: bundles[kind], port: await freePort(), grpcPort: await freePort(), env }));
      }
    }
    processes.push(serviceProcess({ name: 'node-simulator-1', kind: 'node-simulator', bundle: bundles['node-simulator'], port: await freePort(), grpcPort: await freePort(), env }));
    // All at once: the streams and the schema exist already, lease streams tolerate a race.
    await Promise.all(processes.map((proc) => proc.start()));
    log(`nemesis seed ${seed}: ${processes.length} processes up at ${at()} ms`);
    const of = (kind: string) => () => processes.filter((p) => p.kind === kind);

    // Tenants and their keys.
    const tenants = ['acme', 'globex'];
    const keys: Record<string, string> = {};
    for (const tenantId of tenants) {
      const created = await callAny(of('intake'), 'POST', '/v1/tenants', adminKey, { tenantId, name: tenantId }, { 'idempotency-key': `tenant-${tenantId}` });
      if (created.status !== 201 && created.status !== 200) throw new Error(`tenant ${tenantId}: ${created.status} ${JSON.stringify(created.body)}`);
      const key = await callAny(of('intake'), 'POST', `/v1/tenants/${tenantId}/api-keys`, adminKey, {});
      if (key.status !== 201) throw new Error(`key for ${tenantId}: ${key.status} ${JSON.stringify(key.body)}`);
      keys[tenantId] = key.body.secret as string;
    }

    // Checkpoints sampled all along: none may ever decrease.
    sampler = new pg.Pool({ connectionString: databaseUrl, max: 1, connectionTimeoutMillis: 2000 });
    sampler.on('error', () => undefined);
    const samples = new Map<string, CheckpointSamples>();
    let sampling = true;
    const sampleLoop = (async () => {
      while (sampling) {
        try {
          const { rows } = await sampler.query<{ projection: string; last_sequence: string }>('SELECT projection, last_sequence FROM projection_checkpoints');
          for (const row of rows) {
            const value = Number(row.last_sequence);
            const sampled = samples.get(row.projection);
            if (!sampled) samples.set(row.projection, { count: 1, last: value });
            else {
              if (value < sampled.last) sampled.decreased ??= `${sampled.last} then ${value}`;
              sampled.count++;
              sampled.last = value;
            }
          }
        } catch {
          // PostgreSQL is down (a fault): sample again later.
        }
        await sleep(1000);
      }
    })();

    // The client: jobs, leases and external usage, retried with the same keys, every answer recorded.
    const history: HistoryEntry[] = [];
    const openLeases: Array<{ id: string; tenant: string }> = [];
    let chaos = true;
    let n = 0;
    const clientLoop = async (worker: number) => {
      while (chaos) {
        const i = n++;
        const tenant = pick(opsRandom, tenants);
        const roll = opsRandom();
        const entryAt = at();
        if (roll < 0.55) {
          const key = `${seed}-job-${i}`;
          const body = { projectId: 'nemesis', gpuModels: [pick(opsRandom, ['a100', 'h100'])], gpusPerSubtask: 1 + Math.floor(opsRandom() * 2), subtaskCount: 1 + Math.floor(opsRandom() * 2), runtimeSeconds: 20 + Math.floor(opsRandom() * 20) };
          const answer = await callAny(of('intake'), 'POST', '/v1/jobs', keys[tenant]!, body, { 'idempotency-key': key });
          history.push({ atMs: entryAt, op: 'job', key, tenant, status: answer.status, attempts: answer.attempts, id: answer.body?.jobId });
        } else if (roll < 0.7) {
          const key = `${seed}-lease-${i}`;
          const answer = await callAny(of('intake'), 'POST', '/v1/leases', keys[tenant]!, { projectId: 'nemesis', gpuModels: ['a100'], gpus: 1 }, { 'idempotency-key': key });
          history.push({ atMs: entryAt, op: 'lease', key, tenant, status: answer.status, attempts: answer.attempts, id: answer.body?.leaseId });
          if ((answer.status === 201 || answer.status === 202 || answer.status === 200) && answer.body?.leaseId) openLeases.push({ id: answer.body.leaseId, tenant });
        } else if (roll < 0.8 && openLeases.length) {
          const lease = openLeases.shift()!;
          const answer = await callAny(of('intake'), 'DELETE', `/v1/leases/${lease.id}`, keys[lease.tenant]!);
          history.push({ atMs: entryAt, op: 'release', key: lease.id, tenant: lease.tenant, status: answer.status, attempts: answer.attempts, id: lease.id });
          if (answer.status >= 300) openLeases.push(lease);
        } else {
          const key = `${seed}-ext-${i}`;
          const startedAt = Date.now() - 30 * 60_000 + Math.floor(opsRandom() * 20 * 60_000);
          const event = (suffix: string, type: string, data: Record<string, unknown>) => ({ specversion: '1.0', id: `${key}-${suffix}`, source: 'urn:nemesis', type, datacontenttype: 'application/json', data });
          const batch = [
            event('s', 'ExternalAllocationStarted', { allocationId: key, projectId: 'ext', gpuModel: 'L40S', gpus: 1 + Math.floor(opsRandom() * 4), capacityType: 'on-demand', startedAt: new Date(startedAt).toISOString() }),
            event('e', 'ExternalAllocationStopped', { allocationId: key, stoppedAt: new Date(startedAt + 60_000 + Math.floor(opsRandom() * 600_000)).toISOString() }),
          ];
          const answer = await callAny(of('metering'), 'POST', '/v1/events', keys[tenant]!, batch);
          history.push({ atMs: entryAt, op: 'external', key, tenant, status: answer.status, attempts: answer.attempts, id: key });
        }
        await sleep(150 + Math.floor(opsRandom() * 250) + worker * 10);
      }
    };

    // The faults: one at a time, each healed before the next.
    const faults: FaultEntry[] = [];
    // Every fault is also logged as it starts, with the machine's time, so a failing check can be laid against it.
    const recordFault = (fault: FaultEntry) => {
      faults.push(fault);
      log(`${new Date().toISOString()} fault ${fault.kind} ${fault.target} ${fault.durationMs} ms${fault.skewMs === undefined ? '' : ` skew ${fault.skewMs} ms`}`);
    };
    const faultLoop = async () => {
      await sleep(1500);
      while (chaos) {
        const roll = faultRandom();
        const durationMs = 1000 + Math.floor(faultRandom() * 3000);
        const target = pick(faultRandom, processes);
        if (roll < 0.3) {
          recordFault({ atMs: at(), kind: 'kill-9', target: target.name, durationMs });
          await killProcess(target, 'SIGKILL');
          await sleep(durationMs);
          await target.start().catch((error: Error) => log(`restart of ${target.name} failed: ${error.message}`));
        } else if (roll < 0.5) {
          recordFault({ atMs: at(), kind: 'sigstop', target: target.name, durationMs });
          target.child?.kill('SIGSTOP');
          target.stopped = true;
          await sleep(durationMs);
          target.child?.kill('SIGCONT');
          target.stopped = false;
        } else if (roll < 0.72) {
          const leader = await cluster!.streamLeader(bus!.topology.streams.events);
          if (leader) {
            recordFault({ atMs: at(), kind: 'nats-leader-kill', target: leader, durationMs });
            await cluster!.kill(leader);
            await sleep(durationMs);
            await cluster!.restart(leader).catch((error: Error) => log(`restart of ${leader} failed: ${error.message}`));
          }
        } else if (roll < 0.86) {
          recordFault({ atMs: at(), kind: 'postgres-immediate-stop', target: 'postgres', durationMs });
          postgres!.stopImmediate();
          await sleep(durationMs);
          postgres!.start();
        } else {
          // One node reports with a skewed clock for 3–12 s (longer than a run at the fleet's speed
          // and than the loss timeout), then with the machine's again.
          const nodeId = pick(faultRandom, fleet).nodeId;
          const skewMs = pick(faultRandom, CLOCK_SKEWS_MS);
          const window = { nodeId, skewMs, fromMs: Date.now(), toMs: 0 };
          recordFault({ atMs: at(), kind: 'clock-skew', target: nodeId, durationMs: durationMs * 3, skewMs });
          writeFileSync(skewFile, JSON.stringify({ [nodeId]: skewMs }));
          await sleep(durationMs * 3);
          writeFileSync(skewFile, '{}');
          skews.push({ ...window, toMs: Date.now() });
        }
        await sleep(1000 + Math.floor(faultRandom() * 2500));
      }
    };

    const clients = Array.from({ length: 3 }, (_, worker) => clientLoop(worker));
    const faulting = faultLoop();
    await sleep(options.chaosMs);
    chaos = false;
    await faulting;
    await Promise.all(clients);

    // Heal: everything running again, every clock the machine's.
    writeFileSync(skewFile, '{}');
    if (!postgres.running) postgres.start();
    for (const server of cluster.servers) if (!server.running) await cluster.restart(server.name);
    for (const proc of processes) {
      if (proc.stopped) {
        proc.child?.kill('SIGCONT');
        proc.stopped = false;
      }
      if (!proc.running) await proc.start();
    }
    log(`nemesis seed ${seed}: healed at ${at()} ms after ${faults.length} faults and ${history.length} operations`);
    for (const lease of openLeases.splice(0)) {
      const answer = await callAny(of('intake'), 'DELETE', `/v1/leases/${lease.id}`, keys[lease.tenant]!);
      history.push({ atMs: at(), op: 'release', key: lease.id, tenant: lease.tenant, status: answer.status, attempts: answer.attempts, id: lease.id });
    }
    // Leases whose request was stored but whose answer the client never got (no answer, or a
    // refusal after its retries), and releases that were refused after their retries: released
    // too, found in the log, as an operator would, again until the log holds a release for every
    // lease it holds (bounded by a minute; what is left then fails the open-allocation invariant).
    const releaseDeadline = Date.now() + 60_000;
    for (;;) {
      const unreleased = (await unreleasedLeases(bus)).filter(({ tenantId }) => keys[tenantId]);
      if (!unreleased.length || Date.now() >= releaseDeadline) break;
      for (const { leaseId, tenantId } of unreleased) {
        const answer = await callAny(of('intake'), 'DELETE', `/v1/leases/${leaseId}`, keys[tenantId]!);
        history.push({ atMs: at(), op: 'release', key: leaseId, tenant: tenantId, status: answer.status, attempts: answer.attempts, id: leaseId });
      }
      await sleep(500);
    }

    const healedAt = Date.now();
    const result = await checkInvariants({ bus, db: database.db, history, samples, skews, lossTimeoutMs: Number(env.FASTGPU_HEARTBEAT_INTERVAL_MS) * Number(env.FASTGPU_MISSED_HEARTBEATS), keys, intake: of('intake'), call: callAny, convergeMs, replayBundle, replayEnv: { ...process.env, NATS_URL: cluster.natsUrl, DATABASE_URL: databaseUrl, FASTGPU_PREFIX: prefix } });
    sampling = false;
    await sampleLoop;
    const count = (filter: (h: HistoryEntry) => boolean, key: (h: HistoryEntry) => string) => {
      const counts: Record<string, number> = {};
      for (const h of history) if (filter(h)) counts[key(h)] = (counts[key(h)] ?? 0) + 1;
      return counts;
    };
    const ok = result.invariants.every((i) => i.ok);
    return {
      seed,
      ok,
      invariants: result.invariants,
      // Refusals by operation and status (0: no answer after every retry).
      history: { operations: history.length, acknowledged: count((h) => h.status >= 200 && h.status < 300, (h) => h.op), refused: count((h) => h.status < 200 || h.status >= 300, (h) => `${h.op} ${h.status}`) },
      faults,
      convergedInMs: result.convergedAtMs === null ? null : result.convergedAtMs - healedAt,
      ...(ok ? {} : { tails: Object.fromEntries(processes.map((p) => [p.name, p.tail()])) }),
    };
  } finally {
    for (const proc of processes) await killProcess(proc, 'SIGTERM').catch(() => undefined);
    await sampler?.end().catch(() => undefined);
    await bus?.close().catch(() => undefined);
    await database?.close().catch(() => undefined);
    await cluster?.stop();
    postgres?.destroy();
    rmSync(skewDir, { recursive: true, force: true });
  }
}
