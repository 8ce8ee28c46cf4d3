import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import pg from 'pg';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { hashSecret } from '@fastgpu/auth';
import { loadConfig } from '@fastgpu/config';
import { deleteTopology } from '@fastgpu/messaging';
import { createRuntime, startServices, type StartedApp } from '@fastgpu/platform';
import { allServices } from '../apps/fastgpu/src/services';
import { DESKTOP, ensureConsoleBuilt, launchBrowser, signIn } from '../test/console/browser';
import { GPUS_PER_NODE, jobIdOf, loader } from './console-load';

/**
 * `npm run bench -- console [--jobs=100000] [--nodes=1000] [--repeats=3]`: the browser console's
 * jobs table and fleet view in Debian's Chromium (playwright-core), with `--jobs` jobs of one
 * tenant and `--nodes` nodes of 8 GPUs loaded, each figure as absolute milliseconds and as a
 * ratio against the same view of a platform loaded the same way with 1,000 jobs and 10 nodes,
 * measured first in the same run.
 *
 *  - first render: from navigating to the view (signed in) to its first rows on screen; for the
 *    jobs table also until every job is loaded (GET /v1/jobs pages of 500, the newest first);
 *  - filter: from choosing a state or typing a job or node id to the table and its count showing
 *    the match (typing includes the view's debounce: 200 ms jobs, 150 ms fleet).
 *
 * The load goes through the event log, as the services and node agents publish it: nodes
 * register (`NodeRegistered`) and jobs are submitted (`JobSubmitted` + `SubtaskCreated`),
 * published straight to JetStream before the services start; the platform's projections and
 * scheduler then fold the backlog (the jobs read model, the fleet, placements of as many
 * sub-tasks as there are GPUs). No node heartbeats: the heartbeat interval is set to an hour so
 * reliability loses none of them during the run. Needs PostgreSQL and NATS on loopback and
 * Chromium on PATH; a fresh database and streams, dropped at the end.
 */
const BASELINE_JOBS = 1_000;
const BASELINE_NODES = 10;
/** Catching up with the backlog is bounded; past it the run fails rather than measure a half-loaded view. */
const CATCH_UP_MS_MAX = 15 * 60_000;
/** Placements are settled when the running count has not changed for this long. */
const SETTLED_MS = 3_000;
const TENANT = 'bench';
/** Longest the jobs table may take to hold every job (200 sequential pages at 100,000; minutes on a loaded machine). */
const ALL_LOADED_MS_MAX = 15 * 60_000;

function flag(flags: string[], name: string, fallback: number): number {
  const hit = flags.find((f) => f.startsWith(`--${name}=`));
  const value = hit ? Number(hit.split('=')[1]) : fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer`);
  return value;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
/** "1,234" as the console prints counts (en-US). */
const count = (n: number) => n.toLocaleString('en-US');

async function timed(action: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await action();
  return performance.now() - started;
}

interface Figures {
  firstRenderMs: number;
  allLoadedMs?: number;
  filterMs: number;
  searchMs: number;
  /** Fleet: how the first render divides (medians): GET /v1/fleet timed from Node, and in the page when its request started and its answer ended. */
  fleetAnswer?: { serverMs: number; bytes: number; requestStartMs: number; answerEndMs: number };
}

/** In the page just navigated: when the last GET /v1/fleet started and its answer ended, ms after the navigation began. */
async function fleetRequestTiming(page: Page): Promise<{ startMs: number; endMs: number }> {
  return page.evaluate(() => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the page's Performance API (this project's types have no DOM)
    const entries = (globalThis as any).performance.getEntriesByType('resource').filter((e: any) => /\/v1\/fleet$/.test(e.name));
    const last = entries[entries.length - 1];
    return { startMs: last?.startTime ?? NaN, endMs: last?.responseEnd ?? NaN };
  });
}

/** The jobs table of a tenant with `jobs` jobs: first render, all loaded, the state filter and a job id typed. */
async function measureJobs(page: Page, origin: string, tenantId: string, jobs: number, repeats: number): Promise<Figures> {
  const shown = page.getByTestId('jobs-count');
  const renders: number[] = [];
  const loads: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    await page.goto(`${origin}/console/jobs`);
    await page.getByRole('region', { name: 'Jobs table, scrollable' }).getByRole('link').first().waitFor({ timeout: 60_000 });
    renders.push(performance.now() - started);
    // Every page in: the count without "(loading more…)" (at exactly JOBS_LOADED_MAX the view adds that the newest are loaded).
    await shown.filter({ hasText: new RegExp(`^${count(jobs)} of ${count(jobs)} jobs shown(?! \\(loading)`) }).waitFor({ timeout: ALL_LOADED_MS_MAX });
    loads.push(performance.now() - started);
  }
  const filters: number[] = [];
  const searches: number[] = [];
  const job = jobIdOf(tenantId, jobs - 1);
  for (let i = 0; i < repeats; i++) {
    filters.push(
      await timed(async () => {
        await page.getByLabel('State').selectOption('running');
        // Running: the jobs placed on the fleet's GPUs, fewer than all.
        await shown.filter({ hasText: new RegExp(`^(?!${count(jobs)} of)[0-9,]+ of ${count(jobs)} jobs shown`) }).waitFor();
      }),
    );
    await page.getByLabel('State').selectOption('');
    await shown.filter({ hasText: new RegExp(`^${count(jobs)} of`) }).waitFor();
    searches.push(
      await timed(async () => {
        await page.getByLabel('Filter', { exact: true }).fill(job);
        await shown.filter({ hasText: new RegExp(`^1 of ${count(jobs)} jobs shown`) }).waitFor();
        await page.getByRole('link', { name: job, exact: true }).waitFor();
      }),
    );
    await page.getByLabel('Filter', { exact: true }).fill('');
    await shown.filter({ hasText: new RegExp(`^${count(jobs)} of`) }).waitFor();
  }
  return { firstRenderMs: median(renders), allLoadedMs: median(loads), filterMs: median(filters), searchMs: median(searches) };
}

/** The fleet view with `nodes` nodes: first render, the state filter (drained: none) and a node id typed. */
async function measureFleet(page: Page, origin: string, key: string, nodes: number, repeats: number): Promise<Figures> {
  const summary = page.getByTestId('fleet-summary');
  const all = new RegExp(`^${count(nodes)} of ${count(nodes)} nodes shown`);
  const renders: number[] = [];
  const serverMs: number[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  let bytes = 0;
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    bytes = (await (await fetch(`${origin}/v1/fleet`, { headers: { authorization: `Bearer ${key}` } })).arrayBuffer()).byteLength;
    serverMs.push(performance.now() - started);
  }
  for (let i = 0; i < repeats; i++) {
    renders.push(
      await timed(async () => {
        await page.goto(`${origin}/console/fleet`);
        await summary.filter({ hasText: all }).waitFor({ timeout: 60_000 });
        await page.getByTestId('node-n0').waitFor();
      }),
    );
    const timing = await fleetRequestTiming(page);
    starts.push(timing.startMs);
    ends.push(timing.endMs);
  }
  const filters: number[] = [];
  const searches: number[] = [];
  const last = `n${nodes - 1}`;
  for (let i = 0; i < repeats; i++) {
    filters.push(
      await timed(async () => {
        await page.getByLabel('State').selectOption('drained');
        await summary.filter({ hasText: new RegExp(`^0 of ${count(nodes)} nodes shown`) }).waitFor();
      }),
    );
    await page.getByLabel('State').selectOption('');
    await summary.filter({ hasText: all }).waitFor();
    searches.push(
      await timed(async () => {
        await page.getByLabel('Node or model').fill(last);
        await summary.filter({ hasText: new RegExp(`^1 of ${count(nodes)} nodes shown`) }).waitFor();
        await page.getByTestId(`node-${last}`).waitFor();
      }),
    );
    await page.getByLabel('Node or model').fill('');
    await summary.filter({ hasText: all }).waitFor();
  }
  return { firstRenderMs: median(renders), filterMs: median(filters), searchMs: median(searches), fleetAnswer: { serverMs: median(serverMs), bytes, requestStartMs: median(starts), answerEndMs: median(ends) } };
}

function report(view: string, large: Figures, baseline: Figures, sizes: { large: string; baseline: string }): void {
  const row = (what: string, l: number | undefined, b: number | undefined, criterion: boolean) =>
    l === undefined || b === undefined
      ? ''
      : `${view.padEnd(6)} ${what.padEnd(22)} ${fmt(l).padStart(7)} ms with ${sizes.large}   ${fmt(b).padStart(6)} ms with ${sizes.baseline}   ratio ${(l / b).toFixed(2)}${criterion ? `   ${l < 1000 ? 'under' : 'OVER'} a second` : ''}`;
  for (const line of [
    row('first render', large.firstRenderMs, baseline.firstRenderMs, true),
    row('all rows loaded', large.allLoadedMs, baseline.allLoadedMs, false),
    row('filter (state)', large.filterMs, baseline.filterMs, true),
    row('filter (id typed)', large.searchMs, baseline.searchMs, true),
  ]) {
    if (line) console.log(line);
  }
  for (const [size, figures] of [[sizes.large, large], [sizes.baseline, baseline]] as const) {
    const answer = figures.fleetAnswer;
    if (answer) {
      console.log(
        `${view.padEnd(6)} first render with ${size}: GET /v1/fleet answers ${fmt(answer.bytes / 1024)} KiB in ${fmt(answer.serverMs)} ms (from Node); in the page it starts ${fmt(answer.requestStartMs)} ms and ends ${fmt(answer.answerEndMs)} ms after the navigation`,
      );
    }
  }
}

async function caughtUp(what: string, check: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > CATCH_UP_MS_MAX) throw new Error(`console bench: ${what} not caught up after ${CATCH_UP_MS_MAX} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return performance.now() - started;
}

/**
 * One platform on a fresh database and streams with `jobs` jobs of one tenant and `nodes` nodes in
 * its log (published before the services start, as a backlog), the jobs table and fleet view
 * measured in `browser` once the read model holds every job and the scheduler's placements settle.
 */
async function measureSystem(browser: Browser, jobs: number, nodes: number, repeats: number): Promise<{ jobs: Figures; fleet: Figures }> {
  const unique = randomBytes(4).toString('hex');
  const dbName = `fgconsole_bench_${unique}`;
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const config = loadConfig({
    databaseUrl: `postgres://postgres@127.0.0.1:5432/${dbName}`,
    subjectPrefix: `bench${unique}`,
    adminKey: `bench-admin-${unique}-0123456789abcdef`,
    httpPort: 0,
    grpcPort: 0,
    heartbeatIntervalMs: 3_600_000,
    rateLimitKeyPerSecond: 1_000_000,
    rateLimitKeyBurst: 10_000_000,
    rateLimitTenantPerSecond: 1_000_000,
    rateLimitTenantBurst: 10_000_000,
  });
  const runtime = await createRuntime(config);
  let started: StartedApp | undefined;
  const contexts: BrowserContext[] = [];
  try {
    const load = loader(runtime);
    let t0 = performance.now();
    await load.nodes(0, nodes);
    await load.jobs(TENANT, 0, jobs);
    console.log(`${count(nodes)} nodes and ${count(jobs)} jobs (${count(nodes + 2 * jobs)} events) published in ${fmt(performance.now() - t0)} ms`);

    t0 = performance.now();
    started = await startServices(runtime, allServices, { port: 0, logger: false });
    const keys = { tenant: `fgk_bench_${randomBytes(16).toString('hex')}`, sre: `fgk_bench_${randomBytes(16).toString('hex')}` };
    await runtime.db
      .insertInto('api_keys')
      .values([
        { key_id: 'bench-tenant', tenant_id: TENANT, role: 'tenant', secret_hash: hashSecret(keys.tenant), issued_at: new Date() },
        { key_id: 'bench-sre', tenant_id: null, role: 'sre', secret_hash: hashSecret(keys.sre), issued_at: new Date() },
      ])
      .execute();
    const countJobs = async (state?: string) => {
      let query = runtime.db.selectFrom('jobs').where('tenant_id', '=', TENANT);
      if (state) query = query.where('state', '=', state);
      return Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    };
    const url = started.url;
    const fleetSize = async () => ((await (await fetch(`${url}/v1/nodes`, { headers: { authorization: `Bearer ${keys.sre}` } })).json()) as { nodes: unknown[] }).nodes.length;
    await caughtUp('the jobs read model', async () => (await countJobs()) === jobs);
    await caughtUp('the fleet', async () => (await fleetSize()) === nodes);
    // Placements settle (no change for SETTLED_MS) before the views are timed, so no burst of live updates lands in a figure.
    let last = { running: -1, at: performance.now() };
    await caughtUp('placements', async () => {
      const running = await countJobs('running');
      if (running !== last.running) last = { running, at: performance.now() };
      return running > 0 && performance.now() - last.at >= SETTLED_MS;
    });
    const fleetRoute = (await fetch(`${url}/v1/fleet`, { headers: { authorization: `Bearer ${keys.sre}` } })).status;
    console.log(
      `caught up ${fmt(performance.now() - t0)} ms after the start: ${count(jobs)} jobs in the read model, ${count(last.running)} placed; the fleet view reads ${fleetRoute === 200 ? 'GET /v1/fleet' : `GET /v1/nodes (GET /v1/fleet answered ${fleetRoute})`}`,
    );

    const pageOf = async (key: string, path: string) => {
      const context = await browser.newContext({ viewport: DESKTOP });
      contexts.push(context);
      const page = await context.newPage();
      await signIn(page, url, key, path);
      return page;
    };
    const fleet = await measureFleet(await pageOf(keys.sre, '/fleet'), url, keys.sre, nodes, repeats);
    console.log(`fleet ${JSON.stringify(fleet)}`);
    const jobsFigures = await measureJobs(await pageOf(keys.tenant, '/jobs'), url, TENANT, jobs, repeats);
    console.log(`jobs ${JSON.stringify(jobsFigures)}`);
    return { jobs: jobsFigures, fleet };
  } finally {
    for (const context of contexts) await context.close();
    await started?.close();
    await deleteTopology(runtime.bus.jsm, runtime.bus.topology).catch(() => undefined);
    await runtime.close();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

export default async function run(flags: string[]): Promise<void> {
  const jobs = flag(flags, 'jobs', 100_000);
  const nodes = flag(flags, 'nodes', 1_000);
  const repeats = flag(flags, 'repeats', 3);
  if (jobs <= BASELINE_JOBS || nodes <= BASELINE_NODES) throw new Error(`--jobs must exceed ${BASELINE_JOBS} and --nodes ${BASELINE_NODES} (the baseline)`);
  ensureConsoleBuilt();
  const browser = await launchBrowser();
  try {
    console.log(`baseline: ${count(BASELINE_JOBS)} jobs, ${count(BASELINE_NODES)} nodes`);
    const baseline = await measureSystem(browser, BASELINE_JOBS, BASELINE_NODES, repeats);
    console.log(`measured: ${count(jobs)} jobs, ${count(nodes)} nodes`);
    const large = await measureSystem(browser, jobs, nodes, repeats);
    console.log(`\nChromium ${browser.version()}, ${DESKTOP.width}×${DESKTOP.height}, median of ${repeats}; baseline in the same run`);
    report('jobs', large.jobs, baseline.jobs, { large: `${count(jobs)} jobs`, baseline: `${count(BASELINE_JOBS)} jobs` });
    report('fleet', large.fleet, baseline.fleet, { large: `${count(nodes)} nodes × ${GPUS_PER_NODE} GPUs`, baseline: `${count(BASELINE_NODES)} nodes` });
    console.log(`machine load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} cores (figures scale with what else runs)`);
  } finally {
    await browser.close();
  }
}
