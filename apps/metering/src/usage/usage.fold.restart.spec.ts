/**
 * Proves how the usage fold ends an attempt the node did not end itself: a new agent epoch
 * (NodeRegistered after a restart) ends everything placed on the node before it, at the
 * registration's time bounded by its receipt; the scheduler's SubtaskRequeued ends an attempt
 * still open at the requeue. So a requeued attempt is never billed past the event that ended it,
 * a late report of the lost run changes nothing, and intervals on one GPU never overlap (also
 * checked over random restart/requeue histories of one node, folded in random batches). Only a
 * registration that raises the node's agent epoch ends anything (libs/contracts
 * `registrationEndsRuns`, the scheduler's rule): an older epoch (a zombie or forged registration),
 * or the current one again, changes nothing, in the same batch or a later one.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { makeEvent, subjectFor, topology, type DomainEvent, type EventData, type EventType, type StoredEvent } from '@fastgpu/contracts';
import { foldUsage } from './usage.fold';
import { leaseKey, subtaskKey, type Allocation, type Closure } from './usage.model';

const topo = topology('unit');
let counter = 0;
/** One stored event; `receivedAtMs` is when the log stored it (server time). */
function stored<T extends EventType>(type: T, data: EventData<T>, receivedAtMs?: number, sequence = ++counter, id = `00000000-0000-7000-8000-${String(sequence).padStart(12, '0')}`): StoredEvent {
  const event = makeEvent(type, data, { id, source: 'test', time: '2026-01-01T00:00:00.000Z', tenantId: (data as { tenantId?: string }).tenantId ?? null, correlationId: id }, subjectFor(topo, type, data));
  return { sequence, subject: event.subject, event: event as DomainEvent, ...(receivedAtMs === undefined ? {} : { receivedAtMs }) };
}
const iso = (ms: number) => new Date(ms).toISOString();
const T0 = Date.UTC(2026, 5, 1, 12);

const placed = (subtaskId: string, attempt: number, atMs: number, gpuIndices = [0, 1], nodeId = 'n1') =>
  stored('SubtaskPlaced', { jobId: 'job1', tenantId: 'acme', projectId: 'p1', subtaskId, attempt, nodeId, gpuModel: 'H100', gpus: gpuIndices.length, gpuIndices, leaseEpoch: attempt, capacityType: 'on-demand', runtimeMs: 600_000, placedAt: iso(atMs) });
const report = (subtaskId: string, attempt: number, nodeId = 'n1') => ({ jobId: 'job1', tenantId: 'acme', subtaskId, attempt, nodeId, leaseEpoch: attempt });
const started = (subtaskId: string, attempt: number, atMs: number, receivedAtMs = atMs) => stored('SubtaskStarted', { ...report(subtaskId, attempt), startedAt: iso(atMs) }, receivedAtMs);
const completed = (subtaskId: string, attempt: number, atMs: number, receivedAtMs = atMs) => stored('SubtaskCompleted', { ...report(subtaskId, attempt), exitCode: 0, endedAt: iso(atMs) }, receivedAtMs);
const registered = (agentEpoch: number, atMs: number, receivedAtMs = atMs, nodeId = 'n1') =>
  stored('NodeRegistered', { nodeId, gpuModel: 'H100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch, registeredAt: iso(atMs) }, receivedAtMs, ++counter, `00000000-0000-7000-9000-${String(agentEpoch).padStart(12, '0')}`);
const requeued = (subtaskId: string, previousAttempt: number, atMs: number) => stored('SubtaskRequeued', { jobId: 'job1', tenantId: 'acme', subtaskId, previousAttempt, reason: 'node n1 agent restarted', requeuedAt: iso(atMs) });

function fold(batches: StoredEvent[][]) {
  const allocations = new Map<string, Allocation>();
  const applied = new Set<string>();
  // What the table keeps between batches: each node's agent epoch.
  const nodeEpochs = new Map<string, number>();
  const closures: Closure[] = [];
  const rejectedReports: string[] = [];
  for (const batch of batches) {
    const out = foldUsage(batch, { allocations, appliedNodeEvents: applied, nodeEpochs, streamTimeMs: new Map() });
    for (const n of out.nodeEventsApplied) applied.add(n.eventId);
    closures.push(...out.closures);
    rejectedReports.push(...out.reportRejections.map((r) => `${r.eventId} ${r.code}`));
  }
  return { allocations, closures, rejectedReports };
}

/** Closed intervals per GPU of a node (indices from the placements), checked pairwise for overlap. */
function overlaps(allocations: Map<string, Allocation>, gpusOf: Map<string, number[]>): string[] {
  const perGpu = new Map<number, Array<{ key: string; startMs: number; endMs: number }>>();
  for (const [key, indices] of gpusOf) {
    const a = allocations.get(key);
    if (!a || a.gpuMs === null || a.gpuMs === 0) continue;
    for (const gpu of indices) {
      const list = perGpu.get(gpu) ?? [];
      list.push({ key, startMs: a.startMs!, endMs: Math.max(a.endMs!, a.startMs!) });
      perGpu.set(gpu, list);
    }
  }
  const found: string[] = [];
  for (const [gpu, list] of perGpu) {
    list.sort((x, y) => x.startMs - y.startMs);
    for (let i = 1; i < list.length; i++) if (list[i]!.startMs < list[i - 1]!.endMs) found.push(`gpu ${gpu}: ${list[i - 1]!.key} [${iso(list[i - 1]!.startMs)}, ${iso(list[i - 1]!.endMs)}) overlaps ${list[i]!.key} from ${iso(list[i]!.startMs)}`);
  }
  return found;
}

describe('usage fold: a restarted agent and a requeued attempt', () => {
  it('given an open attempt, when the agent registers a new epoch and the attempt is placed again on the same GPUs, then the first ends at the registration and the intervals do not overlap', () => {
    // Given attempt 1 running on GPUs 0–1 of n1.
    const history = [registered(1, T0 - 60_000), placed('s', 1, T0), started('s', 1, T0 + 500)];
    // When the agent restarts (registration received at T0 + 60 s), the scheduler requeues and
    // places attempt 2 on the same GPUs, which runs a minute; the lost run's end arrives later.
    const restart = registered(2, T0 + 59_900, T0 + 60_000);
    const then = [restart, requeued('s', 1, T0 + 60_100), placed('s', 2, T0 + 60_200), started('s', 2, T0 + 61_000), completed('s', 2, T0 + 121_000), completed('s', 1, T0 + 180_000)];
    const { allocations } = fold([history, then]);
    // Then attempt 1 ends at the registration, interrupted (credited back), and no later.
    const first = allocations.get(subtaskKey('s', 1))!;
    expect(first).toMatchObject({ endMs: T0 + 59_900, endEventId: restart.event.id, endReason: 'agent-restarted', interrupted: true, gpuMs: 2 * 59_400 });
    expect(allocations.get(subtaskKey('s', 2))).toMatchObject({ startMs: T0 + 61_000, endMs: T0 + 121_000, gpuMs: 2 * 60_000, interrupted: false });
    expect(overlaps(allocations, new Map([[subtaskKey('s', 1), [0, 1]], [subtaskKey('s', 2), [0, 1]]]))).toEqual([]);
  });

  it("bounds the registration's time by its receipt: an agent clock ahead does not extend the lost run", () => {
    const { allocations } = fold([[registered(1, T0 - 60_000), placed('s', 1, T0), started('s', 1, T0)], [registered(2, T0 + 90_000, T0 + 60_000)]]);
    expect(allocations.get(subtaskKey('s', 1))).toMatchObject({ endMs: T0 + 60_000, gpuMs: 2 * 60_000 });
  });

  it('given an open attempt, when the scheduler requeues it without a registration, then it ends at the requeue', () => {
    const requeue = requeued('s', 1, T0 + 30_000);
    const { allocations } = fold([[placed('s', 1, T0), started('s', 1, T0)], [requeue, placed('s', 2, T0 + 30_000), started('s', 2, T0 + 31_000), completed('s', 1, T0 + 200_000)]]);
    expect(allocations.get(subtaskKey('s', 1))).toMatchObject({ endMs: T0 + 30_000, endEventId: requeue.event.id, endReason: 'requeued', interrupted: true, gpuMs: 2 * 30_000 });
    expect(allocations.get(subtaskKey('s', 2))!.endMs).toBeNull();
  });

  it('refuses a start reported after the registration that ended its attempt (a command redelivered to the restarted agent), and keeps one stored late from before it', () => {
    // Attempt 1 is placed; the agent restarts before starting it; its new registration ends the
    // attempt and attempt 2 runs on the same GPUs. The restarted agent is then redelivered attempt
    // 1's command and reports a start 30 s after the registration: no run of the placement.
    const restart = registered(2, T0 + 10_000);
    const lateStart = started('s', 1, T0 + 40_000);
    const { allocations, rejectedReports } = fold([[registered(1, T0 - 60_000), placed('s', 1, T0)], [restart, requeued('s', 1, T0 + 10_100), placed('s', 2, T0 + 10_200), started('s', 2, T0 + 11_000)], [lateStart, completed('s', 2, T0 + 71_000)]]);
    const first = allocations.get(subtaskKey('s', 1))!;
    expect(first).toMatchObject({ startMs: null, startEventId: null, endReason: 'agent-restarted', staleReports: 1 });
    expect(overlaps(allocations, new Map([[subtaskKey('s', 1), [0, 1]], [subtaskKey('s', 2), [0, 1]]]))).toEqual([]);
    expect(rejectedReports).toEqual([`${lateStart.event.id} ended-by-platform`]);
    // A start from before the registration, stored only after it, still counts up to the registration.
    const { allocations: stored2 } = fold([[registered(1, T0 - 60_000), placed('t', 1, T0)], [registered(2, T0 + 10_000)], [started('t', 1, T0 + 2_000, T0 + 12_000)]]);
    expect(stored2.get(subtaskKey('t', 1))).toMatchObject({ startMs: T0 + 2_000, endMs: T0 + 10_000, gpuMs: 2 * 8_000 });
  });

  it('leaves an attempt the node already ended as it was: a requeue after a failure changes nothing', () => {
    const failed = stored('SubtaskFailed', { ...report('s', 1), exitCode: 1, fault: 'user', reason: 'exit 1', endedAt: iso(T0 + 10_000) }, T0 + 10_000);
    const { allocations } = fold([[placed('s', 1, T0), started('s', 1, T0), failed, requeued('s', 1, T0 + 11_000)]]);
    expect(allocations.get(subtaskKey('s', 1))).toMatchObject({ endMs: T0 + 10_000, endReason: 'failed', interrupted: false, gpuMs: 2 * 10_000 });
  });

  it('ends only what was placed before the registration in log order, leases too; the same registration again ends nothing', () => {
    const restart = registered(2, T0 + 60_000);
    const granted = stored('LeaseGranted', { leaseId: 'L1', tenantId: 'acme', projectId: 'p1', nodeId: 'n1', gpuModel: 'H100', gpus: 2, gpuIndices: [2, 3], leaseEpoch: 1, capacityType: 'reserved', grantedAt: iso(T0) });
    const onOtherNode = placed('o', 1, T0, [0, 1], 'n2');
    const { allocations } = fold([
      [placed('a', 1, T0), started('a', 1, T0), granted, onOtherNode, restart, placed('b', 1, T0 + 61_000, [0, 1]), started('b', 1, T0 + 61_000)],
      // A copy of the registration stored again (same event id) in a later batch.
      [{ ...restart, sequence: ++counter }],
    ]);
    expect(allocations.get(subtaskKey('a', 1))).toMatchObject({ endMs: T0 + 60_000, endReason: 'agent-restarted' });
    expect(allocations.get(leaseKey('L1'))).toMatchObject({ endMs: T0 + 60_000, gpuMs: 2 * 60_000, interrupted: true });
    expect(allocations.get(subtaskKey('b', 1))!.endMs).toBeNull();
    expect(allocations.get(subtaskKey('o', 1))!.endMs).toBeNull();
  });

  it('given a node at agent epoch 3, when a registration of epoch 2 (or 3 again, under another id) arrives, then nothing on the node ends; epoch 4 still ends it', () => {
    const zombie = registered(2, T0 + 30_000);
    const again = stored('NodeRegistered', { nodeId: 'n1', gpuModel: 'H100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 3, registeredAt: iso(T0 + 31_000) });
    const history = [registered(3, T0 - 60_000), placed('s', 1, T0), started('s', 1, T0), stored('LeaseGranted', { leaseId: 'L1', tenantId: 'acme', projectId: 'p1', nodeId: 'n1', gpuModel: 'H100', gpus: 2, gpuIndices: [2, 3], leaseEpoch: 1, capacityType: 'reserved', grantedAt: iso(T0) })];
    for (const batches of [[[...history, zombie, again]], [history, [zombie], [again]]]) {
      const { allocations, closures } = fold(batches);
      expect(allocations.get(subtaskKey('s', 1))).toMatchObject({ endMs: null, endEventId: null, gpuMs: null });
      expect(allocations.get(leaseKey('L1'))).toMatchObject({ endMs: null, gpuMs: null });
      expect(closures).toEqual([]);
    }
    const restart = registered(4, T0 + 60_000);
    const { allocations } = fold([history, [zombie, restart]]);
    expect(allocations.get(subtaskKey('s', 1))).toMatchObject({ endMs: T0 + 60_000, endEventId: restart.event.id, endReason: 'agent-restarted' });
  });

  it("counts an epoch a heartbeat recovered the node with, as the scheduler does: a registration must raise it to end anything", () => {
    const recovered = stored('NodeRecovered', { nodeId: 'n1', agentEpoch: 5, recoveredAt: iso(T0 - 1_000) });
    const history = [registered(3, T0 - 60_000), recovered, placed('s', 1, T0), started('s', 1, T0)];
    expect(fold([history, [registered(5, T0 + 30_000)]]).allocations.get(subtaskKey('s', 1))!.endMs).toBeNull();
    expect(fold([history, [registered(6, T0 + 30_000)]]).allocations.get(subtaskKey('s', 1))!.endMs).toBe(T0 + 30_000);
  });

  it('keeps intervals per GPU from overlapping over random restart and requeue histories of a node, folded in any batches', () => {
    type Step = { kind: 'advance'; ms: number } | { kind: 'place'; gpus: number } | { kind: 'start'; pick: number } | { kind: 'complete'; pick: number } | { kind: 'restart'; skewMs: number } | { kind: 'staleEnd'; pick: number };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 120_000 }) }),
      fc.record({ kind: fc.constant('place' as const), gpus: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant('start' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('complete' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('restart' as const), skewMs: fc.integer({ min: -5_000, max: 5_000 }) }),
      fc.record({ kind: fc.constant('staleEnd' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 1, maxLength: 10 }), (steps, batchSizes) => {
        // A model of the scheduler and the simulated node: GPUs are freed by a completion or a
        // restart (which requeues the attempt), and placed again only after that event.
        counter = 0;
        let now = T0;
        let epoch = 1;
        const log: StoredEvent[] = [registered(epoch, now)];
        const free = new Set([0, 1, 2, 3, 4, 5, 6, 7]);
        const running: Array<{ subtaskId: string; attempt: number; gpus: number[]; started: boolean }> = [];
        const lost: Array<{ subtaskId: string; attempt: number }> = [];
        const waiting: Array<{ subtaskId: string; attempt: number }> = [];
        const gpusOf = new Map<string, number[]>();
        let next = 0;
        for (const s of steps) {
          now += 1;
          if (s.kind === 'advance') now += s.ms;
          else if (s.kind === 'place' && free.size >= s.gpus) {
            const gpus = [...free].slice(0, s.gpus);
            for (const g of gpus) free.delete(g);
            const { subtaskId, attempt } = waiting.shift() ?? { subtaskId: `s${next++}`, attempt: 1 };
            log.push(placed(subtaskId, attempt, now, gpus));
            gpusOf.set(subtaskKey(subtaskId, attempt), gpus);
            running.push({ subtaskId, attempt, gpus, started: false });
          } else if (s.kind === 'start' && running.length) {
            const r = running[s.pick % running.length]!;
            if (!r.started) log.push(started(r.subtaskId, r.attempt, now));
            r.started = true;
          } else if (s.kind === 'complete' && running.length) {
            const [r] = running.splice(s.pick % running.length, 1);
            if (!r!.started) log.push(started(r!.subtaskId, r!.attempt, now - 1));
            log.push(completed(r!.subtaskId, r!.attempt, now));
            for (const g of r!.gpus) free.add(g);
          } else if (s.kind === 'restart') {
            log.push(registered(++epoch, now + s.skewMs, now));
            for (const r of running.splice(0)) {
              for (const g of r.gpus) free.add(g);
              log.push(requeued(r.subtaskId, r.attempt, now + 1));
              lost.push(r);
              waiting.push({ subtaskId: r.subtaskId, attempt: r.attempt + 1 });
            }
          } else if (s.kind === 'staleEnd' && lost.length) {
            // The lost run's end, reported late (what kept the allocation open before).
            const r = lost[s.pick % lost.length]!;
            log.push(completed(r.subtaskId, r.attempt, now));
          }
        }
        const batches: StoredEvent[][] = [];
        for (let i = 0, b = 0; i < log.length; b++) {
          const size = batchSizes[b % batchSizes.length]!;
          batches.push(log.slice(i, i + size));
          i += size;
        }
        const { allocations } = fold(batches);
        expect(overlaps(allocations, gpusOf)).toEqual([]);
        // Every attempt lost in a restart ended no later than the registration's receipt, i.e. before its requeue.
        for (const r of lost) {
          const a = allocations.get(subtaskKey(r.subtaskId, r.attempt))!;
          if (a.startMs !== null) expect(a.endReason).toBe('agent-restarted');
        }
      }),
      { numRuns: 300 },
    );
  });
});
