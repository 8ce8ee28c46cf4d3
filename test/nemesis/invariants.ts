import { spawn } from 'node:child_process';
import { sql, type Kysely } from 'kysely';
import { DeliverPolicy } from '@nats-io/jetstream';
import { decodeEvent, type DomainEvent } from '@fastgpu/contracts';
import { lastSequence, type Bus } from '@fastgpu/messaging';
import type { Database } from '@fastgpu/db';
import type { HistoryEntry } from './nemesis';
import type { ServiceProcess } from './processes';

/** One named invariant and what it found. */
export interface InvariantResult {
  name: string;
  ok: boolean;
  detail: string;
}

export interface InvariantInput {
  bus: Bus;
  db: Kysely<Database>;
  history: HistoryEntry[];
  /** Checkpoint values sampled during the run, per projection, in order. */
  samples: Map<string, number[]>;
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

interface LogEntry {
  sequence: number;
  msgId: string;
  event?: DomainEvent;
}

async function readLog(bus: Bus): Promise<LogEntry[]> {
  const stream = bus.topology.streams.events;
  const last = await lastSequence(bus, stream);
  const out: LogEntry[] = [];
  if (last === 0) return out;
  const consumer = await bus.js.consumers.get(stream, { deliver_policy: DeliverPolicy.All });
  for (;;) {
    const m = await consumer.next({ expires: 5000 });
    if (!m) throw new Error(`the log stopped answering at sequence ${out.at(-1)?.sequence ?? 0} of ${last}`);
    const decoded = decodeEvent(m.data);
    out.push({ sequence: m.seq, msgId: m.headers?.get('Nats-Msg-Id') ?? '', ...(decoded.ok ? { event: decoded.event } : {}) });
    if (m.seq >= last) return out;
  }
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
  const deadline = Date.now() + input.convergeMs;
  let convergedAtMs: number | null = null;
  let waiting = '';
  while (Date.now() < deadline) {
    try {
      const last = await lastSequence(bus, bus.topology.streams.events);
      const checkpoints = await db.selectFrom('projection_checkpoints').select(['projection', 'last_sequence', 'status']).execute();
      const behind = checkpoints.filter((c) => !String(c.projection).includes('@') && Number(c.last_sequence) < last).map((c) => `${c.projection} at ${c.last_sequence}/${last} (${c.status})`);
      const jobs = acknowledgedJobs.length ? await db.selectFrom('jobs').select(['job_id', 'state']).where('job_id', 'in', acknowledgedJobs).execute() : [];
      const states = new Map(jobs.map((j) => [String(j.job_id), String(j.state)]));
      const open = acknowledgedJobs.filter((id) => !TERMINAL.has(states.get(id) ?? 'missing'));
      // Every lease was asked to be released when healing: converged once the scheduler released each (LeaseReleased folded).
      const held = await db.selectFrom('leases').select(['lease_id', 'state']).where('state', '!=', 'released').execute();
      waiting = `${behind.length} projection(s) behind [${behind.join(', ')}], ${open.length} job(s) not terminal [${open.slice(0, 5).map((id) => `${id}: ${states.get(id) ?? 'missing'}`).join(', ')}], ${held.length} lease(s) not released [${held.slice(0, 5).map((l) => `${l.lease_id}: ${l.state}`).join(', ')}]`;
      if (!behind.length && !open.length && !held.length) {
        convergedAtMs = Date.now();
        break;
      }
    } catch (error) {
      waiting = `not answering: ${(error as Error).message}`;
    }
    await sleep(1000);
  }
  add('all-jobs-terminal-and-projections-caught-up-within-bound', convergedAtMs !== null, convergedAtMs !== null ? `within ${input.convergeMs} ms` : `after ${input.convergeMs} ms: ${waiting}`);

  const log = await readLog(bus);
  const events = log.filter((l) => l.event).map((l) => l.event!);
  const ofType = (type: string) => events.filter((e) => e.type === type);

  // Every acknowledged write is in the log.
  const submitted = new Set(ofType('JobSubmitted').map((e) => (e.data as { jobId: string }).jobId));
  const leasesRequested = new Set(ofType('LeaseRequested').map((e) => (e.data as { leaseId: string }).leaseId));
  const externalStarted = new Set(ofType('ExternalAllocationStarted').map((e) => (e.data as { allocationId: string }).allocationId));
  const externalStopped = new Set(ofType('ExternalAllocationStopped').map((e) => (e.data as { allocationId: string }).allocationId));
  const missing: string[] = [];
  for (const h of history) {
    if (h.status < 200 || h.status >= 300 || !h.id) continue;
    if (h.op === 'job' && !submitted.has(h.id)) missing.push(`job ${h.id}`);
    if (h.op === 'lease' && !leasesRequested.has(h.id)) missing.push(`lease ${h.id}`);
    if (h.op === 'external' && (!externalStarted.has(h.id) || !externalStopped.has(h.id))) missing.push(`external ${h.id}`);
  }
  const acknowledged = history.filter((h) => h.status >= 200 && h.status < 300).length;
  add('every-acknowledged-write-in-the-log', missing.length === 0, missing.length ? `missing: ${missing.slice(0, 10).join(', ')}` : `${acknowledged} acknowledged operations, all in the log (${log.length} events)`);

  // Each event (by Nats-Msg-Id) stored once.
  const seen = new Map<string, number>();
  for (const l of log) seen.set(l.msgId, (seen.get(l.msgId) ?? 0) + 1);
  const repeated = [...seen].filter(([id, count]) => id === '' || count > 1);
  add('each-event-id-stored-once', repeated.length === 0, repeated.length ? `repeated: ${repeated.slice(0, 5).map(([id, c]) => `${id || '(no id)'}×${c}`).join(', ')}` : `${seen.size} ids`);

  // No GPU-ms counted twice: one UsageRecorded per allocation; billing holds each usage once and sums to the log's.
  // Late usage (external reports past the lateness horizon) is billed like usage: both count.
  const usage = [...ofType('UsageRecorded'), ...ofType('LateUsageRecorded')].map((e) => e.data as { usageId: string; tenantId: string; subtaskId?: string; attempt?: number; leaseId?: string; gpuMs: number });
  const perAllocation = new Map<string, number>();
  for (const u of usage) {
    const key = u.subtaskId ? `subtask ${u.subtaskId}#${u.attempt}` : u.leaseId ? `lease ${u.leaseId}` : `usage ${u.usageId}`;
    perAllocation.set(key, (perAllocation.get(key) ?? 0) + 1);
  }
  const twice = [...perAllocation].filter(([, count]) => count > 1);
  const billedRows = await db.selectFrom('billing_usage').select(['usage_id', 'tenant_id', 'gpu_ms']).execute();
  const billedByTenant = new Map<string, number>();
  for (const row of billedRows) billedByTenant.set(String(row.tenant_id), (billedByTenant.get(String(row.tenant_id)) ?? 0) + Number(row.gpu_ms));
  const loggedByTenant = new Map<string, number>();
  for (const u of usage) loggedByTenant.set(u.tenantId, (loggedByTenant.get(u.tenantId) ?? 0) + u.gpuMs);
  const distinctBilled = new Set(billedRows.map((r) => String(r.usage_id))).size;
  const sumsDiffer = [...new Set([...billedByTenant.keys(), ...loggedByTenant.keys()])].filter((t) => (billedByTenant.get(t) ?? 0) !== (loggedByTenant.get(t) ?? 0));
  add(
    'no-gpu-ms-counted-twice',
    twice.length === 0 && distinctBilled === billedRows.length && billedRows.length === new Set(usage.map((u) => u.usageId)).size && sumsDiffer.length === 0,
    `${usage.length} UsageRecorded/LateUsageRecorded for ${perAllocation.size} allocations${twice.length ? ` (twice: ${twice.slice(0, 5).map(([k]) => k).join(', ')})` : ''}; billing rows ${billedRows.length}, distinct ${distinctBilled}${sumsDiffer.length ? `; GPU-ms differ for ${sumsDiffer.join(', ')}` : ''}`,
  );

  // Billed GPU-ms per tenant and month equal the metered closed intervals.
  const metered = await sql<{ tenant_id: string; month: string; gpu_ms: string }>`SELECT tenant_id, to_char(to_timestamp(start_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM') AS month, sum(gpu_ms)::text AS gpu_ms FROM metering_allocations WHERE end_ms IS NOT NULL AND gpu_ms IS NOT NULL AND closed_event_id IS NOT NULL GROUP BY 1, 2`.execute(db);
  const billed = await sql<{ tenant_id: string; month: string; gpu_ms: string }>`SELECT tenant_id, to_char(to_timestamp(start_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM') AS month, sum(gpu_ms)::text AS gpu_ms FROM billing_usage GROUP BY 1, 2`.execute(db);
  const asMap = (rows: Array<{ tenant_id: string; month: string; gpu_ms: string }>) => new Map(rows.map((r) => [`${r.tenant_id} ${r.month}`, Number(r.gpu_ms)]));
  const meteredMap = asMap(metered.rows);
  const billedMap = asMap(billed.rows);
  const monthDiffs = [...new Set([...meteredMap.keys(), ...billedMap.keys()])].filter((k) => (meteredMap.get(k) ?? 0) !== (billedMap.get(k) ?? 0)).map((k) => `${k}: metered ${meteredMap.get(k) ?? 0}, billed ${billedMap.get(k) ?? 0}`);
  add('billed-gpu-ms-equal-metered-closed-intervals-per-tenant-and-month', monthDiffs.length === 0, monthDiffs.length ? monthDiffs.slice(0, 5).join('; ') : `${meteredMap.size} tenant-months`);

  // Intervals per GPU never overlap (subtask attempts and leases, from the placements in the log and metering's intervals).
  const gpusOf = new Map<string, { nodeId: string; gpuIndices: number[] }>();
  for (const e of ofType('SubtaskPlaced')) {
    const d = e.data as { subtaskId: string; attempt: number; nodeId: string; gpuIndices: number[] };
    gpusOf.set(`subtask ${d.subtaskId}#${d.attempt}`, { nodeId: d.nodeId, gpuIndices: d.gpuIndices });
  }
  for (const e of ofType('LeaseGranted')) {
    const d = e.data as { leaseId: string; nodeId: string; gpuIndices: number[] };
    gpusOf.set(`lease ${d.leaseId}`, { nodeId: d.nodeId, gpuIndices: d.gpuIndices });
  }
  const allocations = await db.selectFrom('metering_allocations').select(['kind', 'subtask_id', 'attempt', 'lease_id', 'start_ms', 'end_ms']).where('start_ms', 'is not', null).where('kind', '!=', 'external').execute();
  const perGpu = new Map<string, Array<{ key: string; start: number; end: number }>>();
  let placedIntervals = 0;
  for (const a of allocations) {
    const key = a.kind === 'lease' ? `lease ${a.lease_id}` : `subtask ${a.subtask_id}#${a.attempt}`;
    const placement = gpusOf.get(key);
    if (!placement) continue;
    placedIntervals++;
    const end = a.end_ms === null ? Number.POSITIVE_INFINITY : Number(a.end_ms);
    for (const gpu of placement.gpuIndices) {
      const id = `${placement.nodeId}/${gpu}`;
      perGpu.set(id, [...(perGpu.get(id) ?? []), { key, start: Number(a.start_ms), end }]);
    }
  }
  const overlaps: string[] = [];
  for (const [gpu, intervals] of perGpu) {
    intervals.sort((x, y) => x.start - y.start);
    const shown = (x: { key: string; start: number; end: number }) => `${x.key} [${new Date(x.start).toISOString()}, ${Number.isFinite(x.end) ? new Date(x.end).toISOString() : 'open'})`;
    for (let i = 1; i < intervals.length; i++) if (intervals[i]!.start < intervals[i - 1]!.end) overlaps.push(`${gpu}: ${shown(intervals[i - 1]!)} and ${shown(intervals[i]!)}`);
  }
  add('intervals-per-gpu-never-overlap', overlaps.length === 0, overlaps.length ? overlaps.slice(0, 5).join('; ') : `${placedIntervals} intervals on ${perGpu.size} GPUs`);

  // Once every job is terminal and every lease released, no allocation is still open (it would accrue GPU-ms for ever).
  const stillOpen = await db.selectFrom('metering_allocations').select(['allocation_key', 'kind', 'node_id', 'start_ms']).where('start_ms', 'is not', null).where('end_ms', 'is', null).execute();
  add('no-allocation-open-after-convergence', stillOpen.length === 0, stillOpen.length ? `${stillOpen.length} open: ${stillOpen.slice(0, 5).map((a) => `${a.allocation_key} on ${a.node_id} since ${new Date(Number(a.start_ms)).toISOString()}`).join('; ')}` : 'all closed');

  // Checkpoints never decrease.
  const decreased: string[] = [];
  for (const [projection, values] of input.samples) {
    for (let i = 1; i < values.length; i++) {
      if (values[i]! < values[i - 1]!) {
        decreased.push(`${projection}: ${values[i - 1]} then ${values[i]}`);
        break;
      }
    }
  }
  add('checkpoints-never-decrease', decreased.length === 0, decreased.length ? decreased.join('; ') : `${[...input.samples.values()].reduce((n, v) => n + v.length, 0)} samples of ${input.samples.size} checkpoints`);

  // No row crosses tenants: metering, billing and intake rows of a job carry the tenant that submitted it.
  const tenantOfJob = new Map(ofType('JobSubmitted').map((e) => [(e.data as { jobId: string }).jobId, (e.data as { tenantId: string }).tenantId]));
  const tenantOfLease = new Map(ofType('LeaseRequested').map((e) => [(e.data as { leaseId: string }).leaseId, (e.data as { tenantId: string }).tenantId]));
  const crossed: string[] = [];
  const meteringRows = await db.selectFrom('metering_allocations').select(['allocation_key', 'tenant_id', 'job_id', 'lease_id', 'kind']).execute();
  for (const r of meteringRows) {
    const owner = r.kind === 'subtask' ? tenantOfJob.get(String(r.job_id)) : r.kind === 'lease' ? tenantOfLease.get(String(r.lease_id)) : undefined;
    if (owner && owner !== r.tenant_id) crossed.push(`metering ${r.allocation_key}: ${r.tenant_id}, not ${owner}`);
  }
  for (const r of await db.selectFrom('billing_usage').select(['usage_id', 'tenant_id', 'job_id', 'lease_id']).execute()) {
    const owner = r.job_id ? tenantOfJob.get(String(r.job_id)) : r.lease_id ? tenantOfLease.get(String(r.lease_id)) : undefined;
    if (owner && owner !== r.tenant_id) crossed.push(`billing ${r.usage_id}: ${r.tenant_id}, not ${owner}`);
  }
  for (const r of await db.selectFrom('jobs').select(['job_id', 'tenant_id']).execute()) {
    const owner = tenantOfJob.get(String(r.job_id));
    if (owner && owner !== r.tenant_id) crossed.push(`jobs ${r.job_id}: ${r.tenant_id}, not ${owner}`);
  }
  add('no-row-crosses-tenants', crossed.length === 0, crossed.length ? crossed.slice(0, 5).join('; ') : `${meteringRows.length} metering rows, billing and jobs rows checked`);

  // Every projection rebuilt from the log equals the live one (rows; the billing ledger's invoices included).
  for (const projection of REBUILT) {
    const replay = await runReplay(input.replayBundle, projection, input.replayEnv);
    add(`rebuild-equals-live:${projection}`, replay.code === 0, replay.code === 0 ? 'identical' : `replay exited ${replay.code}: ${replay.output}`);
  }
  return { invariants: results, convergedAtMs };
}
