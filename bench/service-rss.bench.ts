import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDatabase, migrateToLatest } from '@fastgpu/db';
import { connectBus, deleteTopology } from '@fastgpu/messaging';
import { databaseUrl, testServices, withAdminClient } from '@fastgpu/testing';
import { buildAll } from '../scripts/build.mjs';

/**
 * `npm run bench -- service-rss [--idle-ms=5000] [--runs=1]`: the resident memory of each
 * service started idle from the production build (`npm run build`, `node dist/apps/<svc>/main.mjs`,
 * with the Node options the images and `start:prod` use) against the same service run from its
 * TypeScript under tsx's loader (`node --import tsx apps/<svc>/src/main.ts`, what `npm run
 * start:<svc>` runs), measured in the same run on the same database and NATS. Each process starts,
 * answers `/healthz`, idles `--idle-ms`, and its RSS is read from /proc (VmRSS; also RssAnon, the
 * process's own pages, and RssFile, mostly the node binary's code shared by every node process on
 * the host). Prints, per service, RSS from dist, from tsx (medians, and each run in brackets when
 * there are several), the ratio dist/tsx and the 100 MB target of issue 16, judged on the largest
 * run. Uses its own database and stream prefix, dropped afterwards.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SERVICES = ['intake', 'scheduler', 'metering', 'billing', 'reliability'] as const;
const RSS_TARGET_MB = 100;
/** Longest wait for a process to print that it listens. */
const START_TIMEOUT_MS = 60_000;

/** The Node options `start:prod` and the images give the services (package.json, deploy/Dockerfile). */
export function productionNodeOptions(): string[] {
  const scripts = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const words = (scripts['start:prod:intake'] ?? '').split(' ');
  return words.slice(1, words.findIndex((w) => w.startsWith('dist/')));
}

function flagValue(flags: string[], name: string, fallback: number): number {
  const hit = flags.find((f) => f.startsWith(`--${name}=`));
  const value = hit ? Number(hit.split('=')[1]) : fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer`);
  return value;
}

interface Memory {
  rssMb: number;
  anonMb: number;
  fileMb: number;
}

function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, anonMb: kb('RssAnon') / 1024, fileMb: kb('RssFile') / 1024 };
}

/** Starts `args` with node, waits until it listens and answers /healthz, idles, reads its memory, stops it. */
async function idleMemory(args: string[], env: NodeJS.ProcessEnv, idleMs: number): Promise<Memory> {
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let url: string | undefined;
    while (!(url = /listening on (http:\/\/\S+)/.exec(output)?.[1])) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${args.join(' ')} did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const health = await fetch(`${url}/healthz`);
    if (health.status !== 200) throw new Error(`${args.join(' ')}: /healthz answered ${health.status}`);
    await new Promise((r) => setTimeout(r, idleMs));
    return memoryOf(child.pid!);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** Node itself, idle with nothing loaded: the floor under every service (mostly the binary's own pages). */
async function bareNodeMemory(idleMs: number): Promise<Memory> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await new Promise((r) => setTimeout(r, Math.min(idleMs, 2_000)));
    return memoryOf(child.pid!);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const mb = (n: number) => `${Math.round(n)} MB`;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export default async function serviceRss(flags: string[]): Promise<void> {
  const idleMs = flagValue(flags, 'idle-ms', 5_000);
  const runs = flagValue(flags, 'runs', 1);
  await buildAll();
  const nodeOptions = productionNodeOptions();
  const unique = randomBytes(4).toString('hex');
  const dbName = `fgbench_rss_${unique}`;
  const prefix = `bench${unique}`;
  await withAdminClient((c) => c.query(`CREATE DATABASE ${dbName}`));
  const handle = createDatabase({ databaseUrl: databaseUrl(dbName), poolSize: 2 });
  await migrateToLatest(handle.db);
  await handle.close();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    NATS_URL: testServices.natsUrl,
    DATABASE_URL: databaseUrl(dbName),
    FASTGPU_PREFIX: prefix,
    FASTGPU_ADMIN_KEY: `fgk_${'r'.repeat(32)}`,
    HOST: '127.0.0.1',
    PORT: '0',
    FASTGPU_GRPC_PORT: '0',
    LOG_LEVEL: 'warn',
  };
  console.log(`node ${process.version}; production Node options: ${nodeOptions.join(' ') || '(none)'}; idle ${idleMs} ms; ${runs} run(s), medians`);
  const bare = await bareNodeMemory(idleMs);
  console.log(`node alone, idle: ${mb(bare.rssMb)} (${mb(bare.anonMb)} + ${mb(bare.fileMb)})`);
  console.log('service      | dist RSS (anon + file) [each run] | tsx RSS (anon + file) [each run] | dist/tsx | target ≤ 100 MB');
  try {
    for (const service of SERVICES) {
      const dist: Memory[] = [];
      const tsx: Memory[] = [];
      // alternate, so load on the machine moves both alike
      for (let run = 0; run < runs; run++) {
        dist.push(await idleMemory([...nodeOptions, `dist/apps/${service}/main.mjs`], env, idleMs));
        tsx.push(await idleMemory(['--import', 'tsx', `apps/${service}/src/main.ts`], env, idleMs));
      }
      const pick = (list: Memory[], key: keyof Memory) => median(list.map((m) => m[key]));
      const distRss = pick(dist, 'rssMb');
      const tsxRss = pick(tsx, 'rssMb');
      const everyRun = (list: Memory[]) => (list.length > 1 ? ` [${list.map((m) => Math.round(m.rssMb)).join(', ')}]` : '');
      const worst = Math.max(...dist.map((m) => m.rssMb));
      console.log(
        `${service.padEnd(12)} | ${mb(distRss)} (${mb(pick(dist, 'anonMb'))} + ${mb(pick(dist, 'fileMb'))})${everyRun(dist)} | ${mb(tsxRss)} (${mb(pick(tsx, 'anonMb'))} + ${mb(pick(tsx, 'fileMb'))})${everyRun(tsx)} | ${(distRss / tsxRss).toFixed(2)} | ${worst <= RSS_TARGET_MB ? 'met' : `over by ${mb(worst - RSS_TARGET_MB)} (largest run)`}`,
      );
    }
  } finally {
    const bus = await connectBus({ natsUrl: testServices.natsUrl, subjectPrefix: prefix, name: 'bench-rss-cleanup' });
    await deleteTopology(bus.jsm, bus.topology).catch(() => undefined);
    await bus.close();
    await withAdminClient((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)).catch(() => undefined);
  }
}
