import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import { randomBytes } from 'node:crypto';
import { connectBus, deleteTopology, EventPublisher } from '@fastgpu/messaging';
import { SchedulerEngine } from '../apps/scheduler/src/scheduling/scheduler.engine';
import { leaderStreamName } from '../apps/scheduler/src/leadership/leader-lease';
import { nameId, type DomainEvent, type StoredEvent } from '@fastgpu/contracts';
import { fragmentation } from '../apps/scheduler/src/placement/metrics';
import { defaultPolicy, type CycleResult, type SchedulerPolicy } from '../apps/scheduler/src/placement/placement.types';
import { decide } from '../apps/scheduler/src/placement/scheduler.decider';
import { evolve } from '../apps/scheduler/src/placement/scheduler.evolve';
import { initialState, type SchedulerState } from '../apps/scheduler/src/placement/scheduler.state';

/**
 * `npm run bench -- scheduler [--large]`: the placement function on a seeded fleet
 * and workload. 8-GPU nodes of mixed models (one model per rack, NVLink domains of 4 nodes), 60%
 * of GPUs already busy, 10% of pending sub-tasks in gangs (half of them within one NVLink
 * domain), 20 tenants with weights, three priority classes.
 *
 * Two measurements per size:
 * - one full pass (no cycle cap) of the whole pending queue against the initial fleet, next to a
 *   naive first-fit pass over the same input (the baseline, measured in the same run);
 * - a sustained simulation: cycles of at most 1,000 placements, 30 simulated seconds apart, with
 *   sub-tasks ending at their declared runtimes, until the queue is empty. Cycle = decide + fold
 *   of the decided events. Prints placements/s, p99 cycle time, fragmentation, peak memory.
 * With `--e2e`, also placements/s end to end through JetStream with the real engine.
 * Checks: no GPU oversubscribed (the fold throws on a double assignment, and a final audit), no
 * partial gang in any cycle, and a rerun from the same seed gives byte-identical decisions (the
 * first run also warms the JIT up; the second is the one measured).
 */

const T0 = Date.UTC(2026, 10, 25, 0, 0, 0);
const GPUS_PER_NODE = 8;
const MODELS = ['a100', 'h100', 'l40s'] as const;
const TENANTS = 20;
/** Simulated time between cycles: a backlog burst (many ends per cycle) and a steady trickle. */
const BURST_SECONDS_PER_CYCLE = 300;
const STEADY_SECONDS_PER_CYCLE = 30;
const CYCLES_MAX = 100_000;
const BASELINE_SECONDS_MAX = 20;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Workload {
  events: StoredEvent[];
  gangMembers: Map<string, number>;
  pendingSubtasks: number;
  policy: SchedulerPolicy;
}

/** A fold-ready event (the bench skips envelope validation: the fold reads type, id and data). */
function stored(sequence: number, type: DomainEvent['type'], data: unknown, subject = 'bench', id = nameId('bench', String(sequence))): StoredEvent {
  return { sequence, subject, event: { type, id, data } as unknown as DomainEvent };
}

function generate(nodes: number, pending: number, seed: number): Workload {
  const random = mulberry32(seed);
  const events: StoredEvent[] = [];
  let seq = 0;
  const iso = (ms: number) => new Date(ms).toISOString();
  const modelOfRack: string[] = [];
  for (let i = 0; i < nodes; i++) {
    const rack = Math.floor(i / 8);
    modelOfRack[rack] ??= MODELS[random() < 0.5 ? 0 : random() < 0.6 ? 1 : 2];
    events.push(stored(++seq, 'NodeRegistered', { nodeId: `n${i}`, gpuModel: modelOfRack[rack], gpuCount: GPUS_PER_NODE, gpuMemoryGb: 80, labels: { rack: `r${rack}`, nvlink: `nv${Math.floor(i / 4)}` }, agentEpoch: 1, registeredAt: iso(T0) }));
  }
  // 60% busy: each node gets 40–80% of its GPUs held by running background work.
  let epoch = 0;
  let background = 0;
  for (let i = 0; i < nodes; i++) {
    let busy = Math.round(GPUS_PER_NODE * (0.4 + random() * 0.4));
    let index = 0;
    while (busy > 0) {
      const size = [4, 2, 1].find((s) => s <= busy && random() < 0.6) ?? 1;
      const jobId = `bg${background++}`;
      const runtimeMs = (5 + Math.floor(random() * 55)) * 60_000;
      const startedAt = T0 - Math.floor(random() * runtimeMs);
      const tenantId = `t${Math.floor(random() * TENANTS)}`;
      events.push(stored(++seq, 'JobSubmitted', { jobId, tenantId, projectId: 'p', gpuModels: [modelOfRack[Math.floor(i / 8)]], gpusPerSubtask: size, subtaskCount: 1, runtimeMs, priorityClass: random() < 0.3 ? 'preemptible' : 'standard', priority: 0, preemptible: false, gang: false, capacityType: 'on-demand', dependsOn: [], submittedAt: iso(startedAt) }));
      events.push(stored(++seq, 'SubtaskCreated', { jobId, tenantId, subtaskId: `${jobId}-0`, index: 0, gpus: size, gpuModels: [modelOfRack[Math.floor(i / 8)]], runtimeMs }));
      events.push(stored(++seq, 'SubtaskPlaced', { jobId, tenantId, projectId: 'p', subtaskId: `${jobId}-0`, attempt: 1, nodeId: `n${i}`, gpuModel: modelOfRack[Math.floor(i / 8)], gpus: size, gpuIndices: Array.from({ length: size }, (_, k) => index + k), leaseEpoch: ++epoch, capacityType: 'on-demand', runtimeMs, placedAt: iso(startedAt) }, `x.n${i}`));
      events.push(stored(++seq, 'SubtaskStarted', { jobId, tenantId, subtaskId: `${jobId}-0`, attempt: 1, nodeId: `n${i}`, leaseEpoch: epoch, startedAt: iso(startedAt) }, `bench.evt.agent.node.n${i}`));
      index += size;
      busy -= size;
    }
  }
  // Pending work: jobs of 1–4 sub-tasks (1/2/4/8 GPUs), 10% of sub-tasks in gangs.
  const gangMembers = new Map<string, number>();
  let created = 0;
  let job = 0;
  while (created < pending) {
    const jobId = `j${job++}`;
    const tenantId = `t${Math.floor(random() ** 2 * TENANTS)}`;
    const gang = random() < 0.085;
    const count = Math.min(pending - created, gang ? 2 + Math.floor(random() * 3) : 1 + Math.floor(random() * 4));
    const r = random();
    const gpus = gang ? (random() < 0.5 ? 8 : 4) : r < 0.4 ? 1 : r < 0.65 ? 2 : r < 0.85 ? 4 : 8;
    const first = MODELS[Math.floor(random() * MODELS.length)]!;
    const gpuModels = random() < 0.4 ? [first, MODELS[(MODELS.indexOf(first) + 1) % MODELS.length]!] : [first];
    const c = random();
    const priorityClass = c < 0.1 ? 'high' : c < 0.8 ? 'standard' : 'preemptible';
    const runtimeMs = (5 + Math.floor(random() * 55)) * 60_000;
    const topology = gang && random() < 0.5 ? { gangTopologyKey: 'nvlink' } : {};
    events.push(stored(++seq, 'JobSubmitted', { jobId, tenantId, projectId: 'p', gpuModels, gpusPerSubtask: gpus, subtaskCount: count, runtimeMs, priorityClass, priority: Math.floor(random() * 10), preemptible: priorityClass === 'preemptible', gang, ...topology, capacityType: 'on-demand', dependsOn: [], submittedAt: iso(T0 + job) }));
    for (let index = 0; index < count; index++) events.push(stored(++seq, 'SubtaskCreated', { jobId, tenantId, subtaskId: `${jobId}-${index}`, index, gpus, gpuModels, runtimeMs }));
    if (gang) gangMembers.set(jobId, count);
    created += count;
  }
  const tenants: SchedulerPolicy['tenants'] = {};
  for (let t = 0; t < TENANTS; t++) tenants[`t${t}`] = { weight: 1 + (t % 3), quotas: {} };
  return { events, gangMembers, pendingSubtasks: created, policy: { ...defaultPolicy, tenants } };
}

function fold(workload: Workload): SchedulerState {
  const state = initialState();
  for (const e of workload.events) evolve(state, e);
  return state;
}

/** Folds a cycle's decisions as the shell would after reading them back from the log. */
function commit(state: SchedulerState, result: CycleResult, nextSequence: () => number): void {
  for (const d of result.decisions) evolve(state, stored(nextSequence(), d.type, d.data, d.nodeId ? `x.${d.nodeId}` : 'x', d.id));
}

function assertNoPartialGang(result: CycleResult, gangMembers: Map<string, number>, state: SchedulerState): void {
  const counts = new Map<string, number>();
  for (const d of result.decisions) if (d.type === 'SubtaskPlaced' && gangMembers.has(d.data.jobId)) counts.set(d.data.jobId, (counts.get(d.data.jobId) ?? 0) + 1);
  for (const [jobId, placed] of counts) {
    const job = state.jobs.get(jobId);
    const open = job ? job.subtaskCount - job.succeeded - job.failed - job.cancelled : gangMembers.get(jobId)!;
    if (placed !== open) throw new Error(`partial gang ${jobId}: ${placed} of ${open} placed in one cycle`);
  }
}

function auditGpus(state: SchedulerState): void {
  for (const node of state.nodeList) {
    let held = 0;
    const seen = new Set<number>();
    for (const a of node.allocations) {
      held += a.gpus;
      for (const i of a.gpuIndices) {
        if (seen.has(i) || node.gpuOwner[i] !== a) throw new Error(`GPU ${node.nodeId}#${i} oversubscribed`);
        seen.add(i);
      }
    }
    if (held + node.freeGpus !== node.gpuCount) throw new Error(`node ${node.nodeId} books ${held} held + ${node.freeGpus} free of ${node.gpuCount}`);
  }
}

interface SimulationResult {
  placements: number;
  decideMs: number;
  foldMs: number;
  cycles: number;
  cycleMs: number[];
  fragmentationMean: number;
  heapPeakMb: number;
  digest: string;
}

function simulate(workload: Workload, secondsPerCycle: number): SimulationResult {
  const state = fold(workload);
  let sequence = workload.events.length;
  const next = () => ++sequence;
  const digest = createHash('sha256');
  const cycleMs: number[] = [];
  let decideMs = 0;
  let foldMs = 0;
  let placements = 0;
  let fragmentationSum = 0;
  let fragmentationSamples = 0;
  let heapPeak = process.memoryUsage().heapUsed;
  // Running work ends at its declared runtime: a bucket of ends per simulated cycle.
  const ends = new Map<number, Array<{ subtaskId: string; attempt: number; leaseEpoch: number }>>();
  const cycleOf = (ms: number) => Math.ceil((ms - T0) / (secondsPerCycle * 1000));
  for (const node of state.nodeList) {
    for (const a of node.allocations) {
      const c = cycleOf((a.startedAtMs ?? a.placedAtMs) + (a.runtimeMs ?? 0));
      const list = ends.get(c) ?? [];
      list.push({ subtaskId: a.key, attempt: a.attempt, leaseEpoch: a.leaseEpoch });
      ends.set(c, list);
    }
  }
  let cycle = 0;
  for (; cycle < CYCLES_MAX; cycle++) {
    const nowMs = T0 + cycle * secondsPerCycle * 1000;
    for (const end of ends.get(cycle) ?? []) {
      const subtask = state.subtasks.get(end.subtaskId);
      const a = subtask?.allocation;
      if (!a || a.attempt !== end.attempt || a.leaseEpoch !== end.leaseEpoch) continue;
      const seq = next();
      evolve(state, stored(seq, 'SubtaskCompleted', { jobId: subtask.job.jobId, tenantId: a.tenantId, subtaskId: end.subtaskId, attempt: a.attempt, nodeId: a.node.nodeId, leaseEpoch: a.leaseEpoch, exitCode: 0, endedAt: new Date(nowMs).toISOString() }, `x.evt.agent.node.${a.node.nodeId}`, `completed-${seq}`));
    }
    ends.delete(cycle);
    const started = performance.now();
    const result = decide(state, { now: new Date(nowMs).toISOString(), policy: workload.policy });
    const decided = performance.now();
    commit(state, result, next);
    const folded = performance.now();
    decideMs += decided - started;
    foldMs += folded - decided;
    cycleMs.push(folded - started);
    placements += result.placements;
    assertNoPartialGang(result, workload.gangMembers, state);
    for (const d of result.decisions) digest.update(d.type === 'SubtaskPlaced' ? `${d.id}:${d.data.nodeId}:${d.data.gpuIndices.join(',')}:${d.data.leaseEpoch}\n` : `${d.id}\n`);
    for (const d of result.decisions) {
      if (d.type !== 'SubtaskPlaced') continue;
      const c = cycleOf(nowMs + d.data.runtimeMs);
      const list = ends.get(c) ?? [];
      list.push({ subtaskId: d.data.subtaskId, attempt: d.data.attempt, leaseEpoch: d.data.leaseEpoch });
      ends.set(c, list);
    }
    if (cycle % 10 === 0) {
      fragmentationSum += fragmentation(state).ratio;
      fragmentationSamples++;
      heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
    }
    let queued = false;
    for (const job of state.jobs.values()) {
      if (job.pendingCount > 0 || job.subtasks.some((s) => s?.status === 'awaitingRequeue')) {
        queued = true;
        break;
      }
    }
    if (!queued && result.decisions.length === 0) break;
  }
  auditGpus(state);
  heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
  return { placements, decideMs, foldMs, cycles: cycle + 1, cycleMs, fragmentationMean: fragmentationSamples ? fragmentationSum / fragmentationSamples : 0, heapPeakMb: heapPeak / 2 ** 20, digest: digest.digest('hex') };
}

/** The baseline: one naive first-fit pass (scan nodes in order for each sub-task), gangs all-or-nothing. */
function naiveFirstFit(state: SchedulerState): { placements: number; ms: number; examined: number; free: number; stranded: number; truncated: boolean } {
  const nodes = state.nodeList.filter((n) => n.status === 'ready');
  const free = nodes.map((n) => n.freeGpus);
  const jobs = [...state.jobs.values()].filter((j) => j.pendingCount > 0).sort((a, b) => a.classRank - b.classRank || b.priority - a.priority || a.submittedAtMs - b.submittedAtMs);
  const started = performance.now();
  const deadline = started + BASELINE_SECONDS_MAX * 1000;
  let placements = 0;
  let examined = 0;
  let truncated = false;
  const firstFit = (gpus: number, models: string[]): number => {
    for (const model of models) for (let i = 0; i < nodes.length; i++) if (nodes[i]!.gpuModel === model && free[i]! >= gpus) return i;
    return -1;
  };
  for (const job of jobs) {
    if (performance.now() > deadline) {
      truncated = true;
      break;
    }
    examined += job.pendingCount;
    if (job.gang) {
      const taken: number[] = [];
      for (let m = 0; m < job.pendingCount; m++) {
        const i = firstFit(job.gpusPerSubtask, job.gpuModels);
        if (i < 0) break;
        free[i]! -= job.gpusPerSubtask;
        taken.push(i);
      }
      if (taken.length === job.pendingCount) placements += taken.length;
      else for (const i of taken) free[i]! += job.gpusPerSubtask;
      continue;
    }
    for (let m = 0; m < job.pendingCount; m++) {
      const i = firstFit(job.gpusPerSubtask, job.gpuModels);
      if (i < 0) break;
      free[i]! -= job.gpusPerSubtask;
      placements++;
    }
  }
  const ms = performance.now() - started;
  let freeTotal = 0;
  let stranded = 0;
  nodes.forEach((n, i) => {
    freeTotal += free[i]!;
    if (free[i]! > 0 && free[i]! < n.gpuCount) stranded += free[i]!;
  });
  return { placements, ms, examined, free: freeTotal, stranded, truncated };
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function runSize(label: string, nodes: number, pending: number, target: number): boolean {
  const seed = 20261125;
  console.log(`\n--- ${label}: ${fmt(nodes)} nodes × ${GPUS_PER_NODE} GPUs, ${fmt(pending)} pending sub-tasks (seed ${seed})`);
  const setupStarted = performance.now();
  const workload = generate(nodes, pending, seed);
  let initial: SchedulerState | undefined = fold(workload);
  const setupMs = performance.now() - setupStarted;
  const busy = initial.nodeList.reduce((n, node) => n + node.gpuCount - node.freeGpus, 0) / (nodes * GPUS_PER_NODE);
  const gangSubtasks = [...workload.gangMembers.values()].reduce((a, b) => a + b, 0);
  console.log(`setup: ${fmt(workload.events.length)} events folded in ${fmt(setupMs)} ms; ${fmt(busy * 100, 1)}% GPUs busy; ${fmt((gangSubtasks / workload.pendingSubtasks) * 100, 1)}% of pending sub-tasks in gangs`);

  // One full pass, ours against the naive first-fit baseline, on the same initial state.
  const passStarted = performance.now();
  const pass = decide(initial, { now: new Date(T0).toISOString(), policy: workload.policy, placementsMax: Number.MAX_SAFE_INTEGER });
  const passMs = performance.now() - passStarted;
  let sequence = workload.events.length;
  commit(initial, pass, () => ++sequence);
  const passFragmentation = fragmentation(initial);
  initial = undefined;
  const baseline = naiveFirstFit(fold(workload));
  const oursRate = pass.placements / (passMs / 1000);
  const baseRate = baseline.placements / (baseline.ms / 1000);
  console.log(`one full pass   : ours ${fmt(pass.placements)} placements (${fmt(pass.preemptions)} preemptions) in ${fmt(passMs, 1)} ms = ${fmt(oursRate)}/s; after it ${fmt(passFragmentation.strandedGpus)} of ${fmt(passFragmentation.freeGpus)} free GPUs are on partly used nodes`);
  console.log(`baseline        : naive first-fit ${fmt(baseline.placements)} placements (no preemption) in ${fmt(baseline.ms, 1)} ms = ${fmt(baseRate)}/s${baseline.truncated ? ` (stopped after ${BASELINE_SECONDS_MAX} s, ${fmt(baseline.examined)} sub-tasks examined)` : ''}; after it ${fmt(baseline.stranded)} of ${fmt(baseline.free)} free GPUs are on partly used nodes`);
  console.log(`ratio           : ${fmt(oursRate / baseRate, 2)}× the baseline's placements/s`);

  // The first run warms the JIT up and is the reference for the determinism check.
  const warmUp = simulate(workload, BURST_SECONDS_PER_CYCLE);
  const sim = simulate(workload, BURST_SECONDS_PER_CYCLE);
  const rate = sim.placements / ((sim.decideMs + sim.foldMs) / 1000);
  console.log(`sustained       : ${fmt(sim.placements)} placements in ${fmt(sim.cycles)} cycles (${BURST_SECONDS_PER_CYCLE} simulated s apart, ≤ 1,000 each); decide ${fmt(sim.decideMs)} ms + fold ${fmt(sim.foldMs)} ms`);
  console.log(`placements/s    : ${fmt(rate)} (target ≥ ${fmt(target)}: ${rate >= target ? 'met' : 'NOT met'}); ${fmt(rate / baseRate, 2)}× the baseline's one-pass rate`);
  console.log(`cycle time      : p50 ${fmt(percentile(sim.cycleMs, 50), 2)} ms, p99 ${fmt(percentile(sim.cycleMs, 99), 2)} ms, max ${fmt(Math.max(...sim.cycleMs), 2)} ms`);
  console.log(`fragmentation   : ${fmt(sim.fragmentationMean * 100, 1)}% of free GPUs stranded on partly used nodes (mean over cycles)`);
  const steady = simulate(workload, STEADY_SECONDS_PER_CYCLE);
  const steadyRate = steady.placements / ((steady.decideMs + steady.foldMs) / 1000);
  console.log(`steady trickle  : ${STEADY_SECONDS_PER_CYCLE} simulated s apart: ${fmt(steady.placements / steady.cycles)} placements per cycle, ${fmt(steadyRate)} placements/s, cycle p50 ${fmt(percentile(steady.cycleMs, 50), 2)} ms, p99 ${fmt(percentile(steady.cycleMs, 99), 2)} ms`);
  console.log(`peak memory     : heap ${fmt(Math.max(sim.heapPeakMb, steady.heapPeakMb))} MB, rss ${fmt(process.memoryUsage().rss / 2 ** 20)} MB`);
  console.log(`checks          : no GPU oversubscribed ✓, no partial gang ✓`);
  const identical = warmUp.digest === sim.digest;
  console.log(`rerun           : ${identical ? 'identical decisions ✓' : 'DIFFERENT decisions ✗'} (sha256 ${sim.digest.slice(0, 16)}…)`);
  return identical;
}

/** Warms the JIT on a small workload so that no measured figure pays for compilation. */
function warmUp(): void {
  const workload = generate(200, 2_000, 1);
  for (let i = 0; i < 3; i++) {
    decide(fold(workload), { now: new Date(T0).toISOString(), policy: workload.policy, placementsMax: Number.MAX_SAFE_INTEGER });
    naiveFirstFit(fold(workload));
  }
  simulate(workload, BURST_SECONDS_PER_CYCLE);
}

/**
 * End to end through JetStream (`--e2e`, needs NATS at NATS_URL): the real engine folds the
 * stream, decides, publishes each placement with node-subject concurrency control plus its
 * RunSubtask command, and reads its own events back before the next cycle.
 */
async function endToEnd(nodes: number, jobs: number): Promise<void> {
  const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
  const bus = await connectBus({ natsUrl, subjectPrefix: `bench${randomBytes(3).toString('hex')}`, name: 'scheduler-bench' });
  const engine = new SchedulerEngine({ bus, policy: defaultPolicy, clock: { now: () => new Date() }, instanceId: 'bench' });
  try {
    console.log(`\n--- end to end through JetStream: ${fmt(nodes)} nodes × ${GPUS_PER_NODE} GPUs, ${fmt(jobs)} one-GPU jobs`);
    const publisher = new EventPublisher(bus.js, bus.topology, 'bench');
    const time = new Date().toISOString();
    const build = <T extends Parameters<EventPublisher['build']>[0]>(type: T, data: Parameters<EventPublisher['build']>[1] & object, key: string) => {
      const id = nameId('e2e', bus.topology.prefix, key);
      return publisher.build(type, data as never, { id, time, tenantId: (data as { tenantId?: string }).tenantId ?? null, correlationId: id });
    };
    await publisher.publishAll(Array.from({ length: nodes }, (_, i) => build('NodeRegistered', { nodeId: `n${i}`, gpuModel: 'a100', gpuCount: GPUS_PER_NODE, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: time }, `node-${i}`)));
    const events = [];
    for (let j = 0; j < jobs; j++) {
      const jobId = `j${j}`;
      const tenantId = `t${j % TENANTS}`;
      events.push(build('JobSubmitted', { jobId, tenantId, projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeMs: 3_600_000, priorityClass: 'standard', priority: 0, preemptible: false, gang: false, capacityType: 'on-demand', dependsOn: [], submittedAt: time }, `job-${j}`));
      events.push(build('SubtaskCreated', { jobId, tenantId, subtaskId: `${jobId}-0`, index: 0, gpus: 1, gpuModels: ['a100'], runtimeMs: 3_600_000 }, `subtask-${j}`));
    }
    const publishStarted = performance.now();
    await publisher.publishAll(events);
    console.log(`submissions     : ${fmt(jobs * 2)} events published in ${fmt(performance.now() - publishStarted)} ms (a backlog for the scheduler)`);
    // The scheduler starts on the backlog: fold, take the lead, place, publish, send commands, read back.
    const started = performance.now();
    await engine.start();
    const deadline = started + 120_000;
    while (engine.status().placements < jobs && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const done = performance.now();
    const placed = engine.status().placements;
    console.log(`placements/s    : ${fmt(placed / ((done - started) / 1000))} end to end (${fmt(placed)} placed: SubtaskPlaced stored with node-subject checks, RunSubtask sent, read back; ${fmt(done - started)} ms from start; target ≥ 1,000)`);
    console.log(`engine          : ${fmt(engine.status().cycles)} cycles, ${fmt(engine.status().conflicts)} concurrency conflicts`);
  } finally {
    await engine.stop();
    await deleteTopology(bus.jsm, bus.topology);
    await bus.jsm.streams.delete(leaderStreamName(bus)).catch(() => false);
    await bus.close();
  }
}

export default async function run(flags: string[]): Promise<void> {
  const [load1] = loadavg();
  console.log(`machine: ${fmt(load1 ?? 0, 1)} load average (1 min) at start; figures scale with other work on the cores`);
  warmUp();
  let ok = runSize('1k × 10k', 1_000, 10_000, 20_000);
  if (flags.includes('--large')) ok = runSize('10k × 100k', 10_000, 100_000, 10_000) && ok;
  else console.log('\n(10k nodes × 100k pending: npm run bench -- scheduler --large)');
  if (flags.includes('--e2e')) await endToEnd(500, 4_000);
  else console.log('(end to end through JetStream: npm run bench -- scheduler --e2e)');
  if (!ok) process.exitCode = 1;
}
