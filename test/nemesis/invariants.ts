import { spawn } from 'node:child_process';
import { sql, type Kysely } from 'kysely';
import type { Database } from '@fastgpu/db';
import { REPORT_TIME_TOLERANCE_MS } from '@fastgpu/contracts';
import { lastSequence, type Bus } from '@fastgpu/messaging';
import { summarizeLog } from './log-summary';
import type { HistoryEntry, SkewWindow } from './nemesis';
import type { ServiceProcess } from './processes';

/** One named invariant and what it found; `ms` is how long checking it took. */
export interface InvariantResult {
  name: string;
  ok: boolean;
  detail: string;
  ms?: number;
}

/** A projection's checkpoint as sampled during the run: how many samples, and the first decrease seen ("a then b"). */
export interface CheckpointSamples {
  count: number;
  last: number;
  decreased?: string;
}

export interface InvariantInput {
  bus: Bus;
  db: Kysely<Database>;
  history: HistoryEntry[];
  /** Checkpoint values sampled during the run, per projection. */
  samples: Map<string, CheckpointSamples>;
  /** The clock-skew faults: which node, how far, when. */
  skews: SkewWindow[];
  /** A node silent this long is declared lost (heartbeat interval × missed beats). */
  lossTimeoutMs: number;
  keys: Record<string, string>;
  intake: () => ServiceProcess[];
  call: unknown;
  convergeMs: number;
  replayBundle: string;
  replayEnv: NodeJS.ProcessEnv;
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
/** Projections rebuilt from the log and compared with the live tables (`npm run replay -- <name>`). */
const REBUILT = ['usage', 'billing-ledger', 'intake-jobs'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs one step of the check and records how long it took on the results it added (or as its own line when it adds none). */
async function timed<T>(results: InvariantResult[], step: string, run: () => Promise<T>): Promise<T> {
  const before = results.length;
  const startedAt = Date.now();
  const value = await run();
  const ms = Date.now() - startedAt;
  if (results.length === before) process.stderr.write(`nemesis: ${step} in ${ms} ms\n`);
  for (const result of results.slice(before)) result.ms = ms;
  return value;
}

function runReplay(bundle: string, projection: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bundle, projection], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('exit', (code) => resolve({ code, output: output.slice(-1500) }));
  });
}

/**
 * Waits (up to `convergeMs`) for every acknowledged job to be terminal, every lease released and
 * every projection to be at the end of the log, then checks each invariant against the log, the tables and the history.
 */
export async function checkInvariants(input: InvariantInput): Promise<{ invariants: InvariantResult[]; convergedAtMs: number | null }> {
  const { bus, db, history } = input;
  const results: InvariantResult[] = [];
  const add = (name: string, ok: boolean, detail: string) => results.push({ name, ok, detail });
  const acknowledgedJobs = history.filter((h) => h.op === 'job' && h.status >= 200 && h.status < 300 && h.id).map((h) => h.id!);

  // Convergence: all jobs terminal, all leases released, all projections caught up, within the bound.
  const from = Date.now();
  const deadline = from + input.convergeMs;
  let convergedAtMs: number | null = null;
  let waiting = '';
  let caughtUpTo = 0;
  while (Date.now() < deadline) {
    try {
      const last = await lastSequence(bus, bus.topology.streams.events);
      const checkpoints = await db.selectFrom('projection_checkpoints').select(['projection', 'last_sequence', 'status']).execute();
      const behind = checkpoints.filter((c) => !c.projection.includes('@') && Number(c.last_sequence) < last).map((c) => `${c.projection} at ${c.last_sequence}/${last} (${c.status})`);
      // Set-based: the acknowledged jobs as one array parameter, only those found and not terminal come back.
      const ids = sql`${acknowledgedJobs}::text[]`;
      const { rows: counted } = await sql<{ found: string; open: string }>`SELECT count(*)::text AS found, count(*) FILTER (WHERE state NOT IN ('succeeded', 'failed', 'cancelled'))::text AS open FROM jobs WHERE job_id = ANY(${ids})`.execute(db);
      const openCount = Number(counted[0]!.open) + acknowledgedJobs.length - Number(counted[0]!.found);
      const open = openCount ? await db.selectFrom('jobs').select(['job_id', 'state']).where(sql<boolean>`job_id = ANY(${ids})`).where('state', 'not in', [...TERMINAL]).limit(5).execute() : [];
      // Every lease was asked to be released when healing: converged once the scheduler released each (LeaseReleased folded).
      const held = await db.selectFrom('leases').select(['lease_id', 'state']).where('state', '!=', 'released').limit(5).execute();
      waiting = `${behind.length} projection(s) behind [${behind.join(', ')}], ${openCount} job(s) not terminal or missing [${open.map((j) => `${j.job_id}: ${j.state}`).join(', ')}], ${held.length}${held.length === 5 ? '+' : ''} lease(s) not released [${held.map((l) => `${l.lease_id}: ${l.state}`).join(', ')}]`;
      if (!behind.length && !openCount && !held.length) {
        convergedAtMs = Date.now();
        caughtUpTo = last;
        break;
      }
    } catch (error) {
      waiting = `not answering: ${(error as Error).message}`;
    }
    await sleep(1000);
  }
  add(
    'all-jobs-terminal-and-projections-caught-up-within-bound',
    convergedAtMs !== null,
    convergedAtMs !== null
      ? `${acknowledgedJobs.length} acknowledged jobs terminal, every lease released, every projection at the log's last sequence ${caughtUpTo}: ${convergedAtMs - from} ms after healing (bound ${input.convergeMs} ms)`
      : `not within the bound of ${input.convergeMs} ms after healing: ${waiting}`,
  );
  results.at(-1)!.ms = Date.now() - from;

  const log = await timed(results, 'read the log', () => summarizeLog(bus));

  // Every acknowledged write is in the log.
  const missing: string[] = [];
  for (const h of history) {
    if (h.status < 200 || h.status >= 300 || !h.id) continue;
    if (h.op === 'job' && !log.jobs.has(h.id)) missing.push(`job ${h.id}`);
    if (h.op === 'lease' && !log.leases.has(h.id)) missing.push(`lease ${h.id}`);
    if (h.op === 'external' && (!log.externalStarted.has(h.id) || !log.externalStopped.has(h.id))) missing.push(`external ${h.id}`);
  }
  const acknowledged = history.filter((h) => h.status >= 200 && h.status < 300).length;
  add('every-acknowledged-write-in-the-log', missing.length === 0, missing.length ? `missing: ${missing.slice(0, 10).join(', ')}` : `${acknowledged} acknowledged operations, all in the log (${log.messages} events)`);

  // Each event (by Nats-Msg-Id) stored once.
  add('each-event-id-stored-once', log.repeatedIds.length === 0, log.repeatedIds.length ? `repeated: ${log.repeatedIds.slice(0, 5).map(([id, c]) => `${id || '(no id)'}×${c}`).join(', ')}` : `${log.distinctIds} ids`);

  await timed(results, 'no-gpu-ms-counted-twice', async () => {
    // No GPU-ms counted twice: one UsageRecorded per allocation; billing holds each usage once and sums to the log's.
    // Late usage (external reports past the lateness horizon) is billed like usage: both count.
    const twice = [...log.usagePerAllocation].filter(([, count]) => count > 1);
    const billing = await sql<{ tenant_id: string; rows: string; distinct_ids: string; gpu_ms: string }>`SELECT tenant_id, count(*)::text AS rows, count(DISTINCT usage_id)::text AS distinct_ids, sum(gpu_ms)::text AS gpu_ms FROM billing_usage GROUP BY tenant_id`.execute(db);
    const billedRows = billing.rows.reduce((n, r) => n + Number(r.rows), 0);
    const distinctBilled = billing.rows.reduce((n, r) => n + Number(r.distinct_ids), 0);
    const billedByTenant = new Map(billing.rows.map((r) => [r.tenant_id, Number(r.gpu_ms)]));
    const sumsDiffer = [...new Set([...billedByTenant.keys(), ...log.usageGpuMsByTenant.keys()])].filter((t) => (billedByTenant.get(t) ?? 0) !== (log.usageGpuMsByTenant.get(t) ?? 0));
    add(
      'no-gpu-ms-counted-twice',
      twice.length === 0 && distinctBilled === billedRows && billedRows === log.usageIds.size && sumsDiffer.length === 0,
      `${log.usageRecords} UsageRecorded/LateUsageRecorded for ${log.usagePerAllocation.size} allocations${twice.length ? ` (twice: ${twice.slice(0, 5).map(([k]) => k).join(', ')})` : ''}; billing rows ${billedRows}, distinct ${distinctBilled}${sumsDiffer.length ? `; GPU-ms differ for ${sumsDiffer.join(', ')}` : ''}`,
    );
  });

  await timed(results, 'billed-gpu-ms-equal-closed-intervals-minus-credits-per-tenant-and-month', async () => {
    // Billed GPU-ms per tenant and month = metering's closed intervals − the GPU-ms credited back
    // (an interruption on capacity that is not preemptible, docs/billing.md), both sides and their
    // difference in one statement; a row comes back only where they differ.
    const month = (column: string) => sql.raw(`to_char(to_timestamp(${column} / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM')`);
    const credited = sql.raw(`interrupted AND capacity_type IS DISTINCT FROM 'preemptible'`);
    const { rows } = await sql<{ tenant_id: string; month: string; metered: string; metered_credit: string; billed: string; billed_credit: string }>`
      WITH metered AS (
        SELECT tenant_id, ${month('start_ms')} AS month, sum(gpu_ms) AS gpu_ms, coalesce(sum(gpu_ms) FILTER (WHERE ${credited}), 0) AS credit
        FROM metering_allocations WHERE end_ms IS NOT NULL AND gpu_ms IS NOT NULL AND closed_event_id IS NOT NULL GROUP BY 1, 2),
      billed AS (
        SELECT tenant_id, ${month('start_ms')} AS month, sum(gpu_ms) AS gpu_ms, coalesce(sum(gpu_ms) FILTER (WHERE ${credited}), 0) AS credit
        FROM billing_usage GROUP BY 1, 2)
      SELECT coalesce(m.tenant_id, b.tenant_id) AS tenant_id, coalesce(m.month, b.month) AS month,
        coalesce(m.gpu_ms, 0)::text AS metered, coalesce(m.credit, 0)::text AS metered_credit, coalesce(b.gpu_ms, 0)::text AS billed, coalesce(b.credit, 0)::text AS billed_credit
      FROM metered m FULL OUTER JOIN billed b ON b.tenant_id = m.tenant_id AND b.month = m.month
      ORDER BY 1, 2`.execute(db);
    const net = (gross: string, credit: string) => Number(gross) - Number(credit);
    const differ = rows.filter((r) => net(r.metered, r.metered_credit) !== net(r.billed, r.billed_credit) || r.metered_credit !== r.billed_credit);
    const total = (pick: (r: (typeof rows)[number]) => string) => rows.reduce((n, r) => n + Number(pick(r)), 0);
    add(
      'billed-gpu-ms-equal-closed-intervals-minus-credits-per-tenant-and-month',
      differ.length === 0,
      differ.length
        ? differ.slice(0, 5).map((r) => `${r.tenant_id} ${r.month}: closed ${r.metered} − credited ${r.metered_credit}, billed ${r.billed} − credited ${r.billed_credit}`).join('; ')
        : `${rows.length} tenant-months: closed ${total((r) => r.metered)} GPU-ms − credited ${total((r) => r.metered_credit)} = billed net ${total((r) => r.billed) - total((r) => r.billed_credit)}`,
    );
  });

  await timed(results, 'intervals-per-gpu-never-overlap', async () => {
    // Intervals per GPU never overlap (subtask attempts and leases, from the placements in the log and metering's intervals).
    const allocations = await db.selectFrom('metering_allocations').select(['kind', 'subtask_id', 'attempt', 'lease_id', 'start_ms', 'end_ms']).where('start_ms', 'is not', null).where('kind', '!=', 'external').execute();
    const perGpu = new Map<string, Array<{ key: string; start: number; end: number }>>();
    let placedIntervals = 0;
    for (const a of allocations) {
      const key = a.kind === 'lease' ? `lease ${a.lease_id}` : `subtask ${a.subtask_id}#${a.attempt}`;
      const placement = log.placements.get(key);
      if (!placement) continue;
      placedIntervals++;
      const interval = { key, start: Number(a.start_ms), end: a.end_ms === null ? Number.POSITIVE_INFINITY : Number(a.end_ms) };
      for (const gpu of placement.gpuIndices) {
        const id = `${placement.nodeId}/${gpu}`;
        const list = perGpu.get(id);
        if (list) list.push(interval);
        else perGpu.set(id, [interval]);
      }
    }
    const overlaps: string[] = [];
    // A run whose start or end was reported with a clock more than a minute off is marked: the
    // server-time rule bills such a run within REPORT_TIME_TOLERANCE_MS of what it ran, not exactly.
    const skewedReport = (key: string) => {
      const run = log.runs.get(key);
      const off = (reported?: number, received?: number) => reported !== undefined && received !== undefined && Math.abs(reported - received) > 60_000;
      return run !== undefined && (off(run.startedAtMs, run.startReceivedMs) || off(run.endedAtMs, run.endReceivedMs));
    };
    const shown = (x: { key: string; start: number; end: number }) => `${x.key}${skewedReport(x.key) ? ' (skewed report)' : ''} [${new Date(x.start).toISOString()}, ${Number.isFinite(x.end) ? new Date(x.end).toISOString() : 'open'})`;
    for (const [gpu, intervals] of perGpu) {
      intervals.sort((x, y) => x.start - y.start);
      // Against the latest end so far, not only the previous interval: one long interval may cover several after it.
      let reach = intervals[0]!;
      for (const interval of intervals.slice(1)) {
        if (interval.start < reach.end) overlaps.push(`${gpu}: ${shown(reach)} and ${shown(interval)}`);
        if (interval.end > reach.end) reach = interval;
      }
    }
    add('intervals-per-gpu-never-overlap', overlaps.length === 0, overlaps.length ? `${overlaps.length}: ${overlaps.slice(0, 5).join('; ')}` : `${placedIntervals} intervals on ${perGpu.size} GPUs`);
  });

  // Once every job is terminal and every lease released, no allocation is still open (it would accrue GPU-ms for ever).
  const stillOpen = await db.selectFrom('metering_allocations').select(['allocation_key', 'kind', 'node_id', 'start_ms']).where('start_ms', 'is not', null).where('end_ms', 'is', null).execute();
  add('no-allocation-open-after-convergence', stillOpen.length === 0, stillOpen.length ? `${stillOpen.length} open: ${stillOpen.slice(0, 5).map((a) => `${a.allocation_key} on ${a.node_id} since ${new Date(Number(a.start_ms)).toISOString()}`).join('; ')}` : 'all closed');

  // Checkpoints never decrease (each sample against the one before it, as the run kept them).
  const decreased = [...input.samples].filter(([, s]) => s.decreased).map(([projection, s]) => `${projection}: ${s.decreased}`);
  add('checkpoints-never-decrease', decreased.length === 0, decreased.length ? decreased.join('; ') : `${[...input.samples.values()].reduce((n, s) => n + s.count, 0)} samples of ${input.samples.size} checkpoints`);

  await timed(results, 'no-row-crosses-tenants', async () => {
    // No row crosses tenants: intake's jobs carry the tenant of their JobSubmitted (the log), and
    // metering's and billing's rows of a job or a lease carry its intake row's tenant (one join each).
    const crossed: string[] = [];
    const jobs = await db.selectFrom('jobs').select(['job_id', 'tenant_id']).execute();
    for (const r of jobs) {
      const owner = log.jobs.get(r.job_id);
      if (owner && owner !== r.tenant_id) crossed.push(`jobs ${r.job_id}: ${r.tenant_id}, not ${owner}`);
    }
    const leases = await db.selectFrom('leases').select(['lease_id', 'tenant_id']).execute();
    for (const r of leases) {
      const owner = log.leases.get(r.lease_id);
      if (owner && owner !== r.tenant_id) crossed.push(`leases ${r.lease_id}: ${r.tenant_id}, not ${owner}`);
    }
    const { rows } = await sql<{ row: string; tenant_id: string; owner: string }>`
      SELECT 'metering ' || a.allocation_key AS row, a.tenant_id, coalesce(j.tenant_id, l.tenant_id) AS owner
      FROM metering_allocations a LEFT JOIN jobs j ON a.kind = 'subtask' AND j.job_id = a.job_id LEFT JOIN leases l ON a.kind = 'lease' AND l.lease_id = a.lease_id
      WHERE a.tenant_id IS DISTINCT FROM coalesce(j.tenant_id, l.tenant_id) AND (j.job_id IS NOT NULL OR l.lease_id IS NOT NULL)
      UNION ALL
      SELECT 'billing ' || u.usage_id, u.tenant_id, coalesce(j.tenant_id, l.tenant_id)
      FROM billing_usage u LEFT JOIN jobs j ON j.job_id = u.job_id LEFT JOIN leases l ON u.job_id IS NULL AND l.lease_id = u.lease_id
      WHERE u.tenant_id IS DISTINCT FROM coalesce(j.tenant_id, l.tenant_id) AND (j.job_id IS NOT NULL OR l.lease_id IS NOT NULL)
      LIMIT 20`.execute(db);
    for (const r of rows) crossed.push(`${r.row}: ${r.tenant_id}, not ${r.owner}`);
    add('no-row-crosses-tenants', crossed.length === 0, crossed.length ? crossed.slice(0, 5).join('; ') : `${jobs.length} jobs and ${leases.length} leases against the log; metering and billing rows against them`);
  });

  await timed(results, 'skewed-clock-billed-what-ran-and-no-node-lost', async () => {
    // A node whose clock is skewed is billed what it ran (within one heartbeat of the protocol,
    // REPORT_TIME_TOLERANCE_MS) and never declared lost for it. What ran: the agent's own end minus
    // start, for runs whose start and end reports both carry the same skew (reported time minus
    // the log's receipt, beyond a minute: the skews are ten minutes or more); what was billed:
    // billing's usage rows of that attempt, end minus start.
    const SKEWED_MS = 60_000;
    const offset = (reportedMs?: number, receivedMs?: number) => (reportedMs === undefined || receivedMs === undefined ? undefined : reportedMs - receivedMs);
    const skewed = [...log.runs.values()].filter((r) => {
      const start = offset(r.startedAtMs, r.startReceivedMs);
      const end = offset(r.endedAtMs, r.endReceivedMs);
      return start !== undefined && end !== undefined && Math.abs(start) > SKEWED_MS && Math.abs(end) > SKEWED_MS && Math.abs(start - end) < SKEWED_MS;
    });
    const subtaskIds = sql`${skewed.map((r) => r.subtaskId)}::text[]`;
    const billed = skewed.length
      ? (await sql<{ subtask_id: string; attempt: number; ms: string }>`SELECT subtask_id, attempt, sum(end_ms - start_ms)::text AS ms FROM billing_usage WHERE subtask_id = ANY(${subtaskIds}) GROUP BY 1, 2`.execute(db)).rows
      : [];
    const billedMs = new Map(billed.map((b) => [`${b.subtask_id}#${b.attempt}`, Number(b.ms)]));
    const off = skewed
      .map((r) => ({ r, ran: r.endedAtMs! - r.startedAtMs!, billed: billedMs.get(`${r.subtaskId}#${r.attempt}`) }))
      .filter(({ ran, billed }) => billed === undefined || Math.abs(billed - ran) > REPORT_TIME_TOLERANCE_MS)
      .map(({ r, ran, billed }) => `${r.subtaskId}#${r.attempt} on ${r.nodeId}: ran ${ran} ms, billed ${billed ?? 'nothing'}`);
    // A loss the skew could have caused is the skewed node's alone: when a node whose clock was
    // not skewed was lost within a second of it, the cause was shared (the simulator or
    // reliability paused or restarted by an earlier fault), and it is shown but not counted.
    const SHARED_LOSS_MS = 1000;
    const inSkew = log.nodesLost.filter((l) => input.skews.some((w) => w.nodeId === l.nodeId && l.detectedAtMs >= w.fromMs && l.detectedAtMs <= w.toMs + input.lossTimeoutMs));
    const shared = (l: (typeof inSkew)[number]) => log.nodesLost.some((o) => o.nodeId !== l.nodeId && Math.abs(o.detectedAtMs - l.detectedAtMs) <= SHARED_LOSS_MS && !input.skews.some((w) => w.nodeId === o.nodeId && o.detectedAtMs >= w.fromMs && o.detectedAtMs <= w.toMs + input.lossTimeoutMs));
    const describe = (l: (typeof inSkew)[number]) => `${l.nodeId} lost at ${new Date(l.detectedAtMs).toISOString()} (last heartbeat ${l.lastHeartbeatAt}: ${l.reason})`;
    const lost = inSkew.filter((l) => !shared(l)).map(describe);
    const sharedLosses = inSkew.filter(shared).map(describe);
    add(
      'skewed-clock-billed-what-ran-and-no-node-lost',
      off.length === 0 && lost.length === 0,
      off.length || lost.length
        ? [...off.slice(0, 5), ...lost.slice(0, 5)].join('; ')
        : `${input.skews.length} skews (${input.skews.map((w) => `${w.nodeId} ${w.skewMs > 0 ? '+' : ''}${w.skewMs / 60_000} min for ${w.toMs - w.fromMs} ms`).join(', ') || 'none'}): ${skewed.length} runs reported wholly skewed, each billed within ${REPORT_TIME_TOLERANCE_MS} ms of what it ran; no skewed node lost alone${sharedLosses.length ? ` (${sharedLosses.length} lost with unskewed nodes, not counted: ${sharedLosses.slice(0, 3).join('; ')})` : ''}`,
    );
  });

  // Every projection rebuilt from the log equals the live one (rows; the billing ledger's invoices
  // included). The three replays run side by side (each its own process, its own shadow tables).
  const replays = await Promise.all(
    REBUILT.map(async (projection) => {
      const startedAt = Date.now();
      return { projection, ...(await runReplay(input.replayBundle, projection, input.replayEnv)), ms: Date.now() - startedAt };
    }),
  );
  for (const replay of replays) results.push({ name: `rebuild-equals-live:${replay.projection}`, ok: replay.code === 0, detail: replay.code === 0 ? 'identical' : `replay exited ${replay.code}: ${replay.output}`, ms: replay.ms });
  return { invariants: results, convergedAtMs };
}
