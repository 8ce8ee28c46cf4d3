/**
 * Proves every placement rule of the scheduler decider, each with its negative case, as
 * given (events in the log) / when (a cycle at an instant, with a policy) / then (the decided
 * events): model constraints and fallback, best fit, no GPU twice, priority classes, fair share,
 * quotas with borrowing and reclaim, gangs (topology too), preemption (gangs whole), requeue,
 * cancellation, dependencies, retries, node loss with bounded platform attempts, stale reports,
 * EASY backfill, drain, leases, feasibility, explanations, dry-run and determinism; and the
 * scheduler wrapped as the kernel's Decider, with libs/eventsourcing's given / when / then.
 */
import { describe, expect, it } from 'vitest';
import { deriveId } from '@fastgpu/contracts';
import { spec } from '@fastgpu/eventsourcing';
import { fragmentation } from './metrics';
import { defaultPolicy } from './placement.types';
import { explain, feasibility } from './questions';
import { decide, schedulerDecider } from './scheduler.decider';
import { evolve } from './scheduler.evolve';
import { initialState, PLATFORM_ATTEMPTS_MAX } from './scheduler.state';
import { at, ofType, placements, SchedulerLog, types } from './scheduler.testkit';

describe('placement basics', () => {
  it('places a job on a node of an allowed model with a fresh epoch, a command and derived ids', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8).job({ jobId: 'j1', gpus: 2 });
    const result = log.when(at(10));
    expect(types(result)).toEqual(['SubtaskPlaced']);
    const placed = ofType(result, 'SubtaskPlaced')[0]!;
    expect(placed.data).toMatchObject({ subtaskId: 'j1-0', nodeId: 'n1', gpuModel: 'a100', gpus: 2, gpuIndices: [0, 1], attempt: 1, leaseEpoch: 1, placedAt: at(10) });
    expect(placed.nodeId).toBe('n1');
    expect(placed.command).toMatchObject({ kind: 'RunSubtask', subtaskId: 'j1-0', leaseEpoch: 1, gpuIndices: [0, 1], runtimeMs: 60_000 });
    // The same state and instant give the same decisions, ids included.
    expect(log.when(at(10)).decisions).toEqual(result.decisions);
  });

  it('never places on a model the job does not allow', () => {
    const log = new SchedulerLog().node('h1', 'h100', 8).job({ jobId: 'j1', gpuModels: ['a100'] });
    const result = log.when(at(1));
    expect(result.decisions).toEqual([]);
    expect(result.waiting.get('j1')?.code).toBe('capacity');
  });

  it('prefers the first model and falls back in order when it is full', () => {
    const log = new SchedulerLog().node('a1', 'a100', 8).node('h1', 'h100', 8);
    log.job({ jobId: 'j1', gpuModels: ['h100', 'a100'], gpus: 8 }).job({ jobId: 'j2', gpuModels: ['h100', 'a100'], gpus: 8 }).job({ jobId: 'j3', gpuModels: ['h100', 'a100'], gpus: 8 });
    const result = log.when(at(1));
    expect(placements(result)).toEqual([
      ['j1-0', 'h1'],
      ['j2-0', 'a1'],
    ]);
    expect(result.waiting.get('j3')?.code).toBe('capacity');
  });

  it('packs best fit: a small sub-task goes to the fullest node that fits', () => {
    const log = new SchedulerLog().node('n1').node('n2').job({ jobId: 'big', gpus: 6 });
    log.cycle(at(1));
    expect(log.placed('big-0').node.nodeId).toBe('n2');
    log.job({ jobId: 'small', gpus: 2 });
    const result = log.cycle(at(2));
    expect(placements(result)).toEqual([['small-0', 'n2']]);
    expect(fragmentation(log.state)).toMatchObject({ freeGpus: 8, strandedGpus: 0 });
  });

  it('never assigns a GPU twice; what does not fit waits with the reason', () => {
    const log = new SchedulerLog().node('n1', 'a100', 4).job({ jobId: 'j1', gpus: 1, count: 6 });
    const result = log.cycle(at(1));
    const indices = ofType(result, 'SubtaskPlaced').flatMap((d) => d.data.gpuIndices);
    expect(indices.sort()).toEqual([0, 1, 2, 3]);
    expect(result.waiting.get('j1')?.reason).toMatch(/4 placed this cycle; rest: no capacity/);
    expect(log.cycle(at(2)).decisions).toEqual([]);
  });

  it('places nothing on drained or lost nodes and again after undrain', () => {
    const log = new SchedulerLog().node('n1').job({ jobId: 'j1' });
    log.append('NodeDrained', { nodeId: 'n1', reason: 'maintenance', drainedAt: at(0), automatic: false });
    expect(log.when(at(1)).decisions).toEqual([]);
    log.append('NodeUndrained', { nodeId: 'n1', undrainedAt: at(2) });
    expect(placements(log.when(at(3)))).toEqual([['j1-0', 'n1']]);
  });
});

describe('ordering', () => {
  it('serves high before standard before preemptible, then priority, then submit time', () => {
    const log = new SchedulerLog().node('n1', 'a100', 4);
    log.job({ jobId: 'spot', priorityClass: 'preemptible', submittedAt: at(1) });
    log.job({ jobId: 'std-low', priority: 1, submittedAt: at(2) });
    log.job({ jobId: 'std-late', priority: 5, submittedAt: at(4) });
    log.job({ jobId: 'std-early', priority: 5, submittedAt: at(3) });
    log.job({ jobId: 'high', priorityClass: 'high', submittedAt: at(5) });
    log.job({ jobId: 'std-last', priority: 0, submittedAt: at(6) });
    const order = placements(log.when(at(10))).map(([s]) => s);
    expect(order).toEqual(['high-0', 'std-early-0', 'std-late-0', 'std-low-0']);
  });

  it('shares by dominant resource share: the tenant using less goes first', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8).node('n2', 'a100', 8);
    log.job({ jobId: 'heavy', tenantId: 'big', gpus: 8 });
    log.cycle(at(1));
    log.job({ jobId: 'b2', tenantId: 'big', gpus: 4, submittedAt: at(2) });
    log.job({ jobId: 's1', tenantId: 'small', gpus: 4, submittedAt: at(3) });
    log.job({ jobId: 'b3', tenantId: 'big', gpus: 4, submittedAt: at(2) });
    // 8 free GPUs: the small tenant (share 0) gets one, then the big one (share 8/16).
    expect(placements(log.when(at(4))).map(([s]) => s)).toEqual(['s1-0', 'b2-0']);
  });

  it('weights fair share per tenant', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8);
    log.policy = { defaultWeight: 1, borrowing: true, tenants: { gold: { weight: 3, quotas: {} } } };
    for (let i = 0; i < 8; i++) log.job({ jobId: `g${i}`, tenantId: 'gold', submittedAt: at(i) }).job({ jobId: `b${i}`, tenantId: 'basic', submittedAt: at(i) });
    const byTenant = placements(log.when(at(20))).reduce<Record<string, number>>((acc, [s]) => ((acc[s[0]!] = (acc[s[0]!] ?? 0) + 1), acc), {});
    expect(byTenant).toEqual({ g: 6, b: 2 });
  });
});

describe('quotas and borrowing', () => {
  const quota = (borrowing: boolean) => ({ defaultWeight: 1, borrowing, tenants: { acme: { quotas: { a100: { nominal: 4 } } }, other: { quotas: { a100: { nominal: 4 } } } } });

  it('holds a tenant at its nominal quota when borrowing is off', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8).job({ jobId: 'j1', gpus: 2, count: 3 });
    log.policy = quota(false);
    const result = log.when(at(1));
    expect(placements(result)).toHaveLength(2);
    expect(result.waiting.get('j1')?.reason).toMatch(/quota: tenant acme uses 4 of its 4 a100 GPUs/);
  });

  it('borrows idle GPUs beyond the quota, and the owner takes them back by preemption', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8).job({ jobId: 'borrower', gpus: 2, count: 4 });
    log.policy = quota(true);
    expect(placements(log.cycle(at(1)))).toHaveLength(4);
    log.job({ jobId: 'owner', tenantId: 'other', gpus: 2, count: 2 });
    const result = log.when(at(2));
    expect(ofType(result, 'SubtaskPreempted').map((d) => d.data.reason)).toEqual([expect.stringMatching(/reclaiming borrowed quota/), expect.stringMatching(/reclaiming borrowed quota/)]);
    expect(placements(result).map(([s]) => s)).toEqual(['owner-0', 'owner-1']);
  });

  it('does not reclaim from a tenant within its own quota', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8).job({ jobId: 'inside', gpus: 4 }).job({ jobId: 'free', tenantId: 'nobody', gpus: 4 });
    log.policy = quota(true);
    log.cycle(at(1));
    log.job({ jobId: 'owner', tenantId: 'other', gpus: 2 });
    const result = log.when(at(2));
    expect(ofType(result, 'SubtaskPreempted')).toEqual([]);
    expect(result.waiting.get('owner')?.code).toBe('capacity');
  });
});

describe('gangs', () => {
  it('places a gang all together or not at all', () => {
    const log = new SchedulerLog().node('n1').node('n2').job({ jobId: 'g', gang: true, count: 3, gpus: 8 });
    const waiting = log.when(at(1));
    expect(waiting.decisions).toEqual([]);
    expect(waiting.waiting.get('g')?.reason).toMatch(/gang incomplete: only 2 of 3 members fit/);
    log.node('n3');
    expect(placements(log.when(at(2))).map(([, n]) => n).sort()).toEqual(['n1', 'n2', 'n3']);
  });

  it('keeps a gang within one topology domain, and waits when no domain has room', () => {
    const log = new SchedulerLog().node('a', 'a100', 8, { nvlink: 'x' }).node('b', 'a100', 8, { nvlink: 'y' }).node('c', 'a100', 8, { nvlink: 'y' });
    log.job({ jobId: 'g', gang: true, count: 2, gpus: 8, gangTopologyKey: 'nvlink' });
    expect(placements(log.cycle(at(1))).map(([, n]) => n).sort()).toEqual(['b', 'c']);
    log.job({ jobId: 'g2', gang: true, count: 2, gpus: 4, gangTopologyKey: 'nvlink', submittedAt: at(2) });
    expect(placements(log.cycle(at(2))).map(([, n]) => n)).toEqual(['a', 'a']);
    log.node('d', 'a100', 8, { nvlink: 'z' }).node('e', 'a100', 8, { nvlink: 'w' });
    log.job({ jobId: 'g3', gang: true, count: 2, gpus: 8, gangTopologyKey: 'nvlink', submittedAt: at(3) });
    const result = log.when(at(3));
    expect(result.decisions).toEqual([]);
    expect(result.waiting.get('g3')?.reason).toMatch(/no nvlink domain has room/);
  });

  it('restarts a gang whole when one member is interrupted', () => {
    const log = new SchedulerLog().node('n1').node('n2').node('n3').job({ jobId: 'g', gang: true, count: 2, gpus: 8 });
    log.cycle(at(1));
    const lostNode = log.placed('g-0').node.nodeId;
    log.append('NodeLost', { nodeId: lostNode, lastHeartbeatAt: at(2), detectedAt: at(3), reason: 'silent' });
    const result = log.cycle(at(4));
    expect(types(result).sort()).toEqual(['SubtaskPreempted', 'SubtaskRequeued']);
    expect(ofType(result, 'SubtaskPreempted')[0]!.data.reason).toMatch(/gang restart/);
    const next = log.cycle(at(5));
    expect(types(next)).toEqual(['SubtaskRequeued']);
    expect(placements(log.cycle(at(6)))).toHaveLength(2);
  });
});

describe('preemption', () => {
  it('lets a higher class preempt preemptible work, with the reason, and requeues the victim', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8).job({ jobId: 'spot', priorityClass: 'preemptible', gpus: 8 });
    log.cycle(at(1));
    log.job({ jobId: 'urgent', priorityClass: 'high', gpus: 4 });
    const result = log.cycle(at(2));
    expect(types(result)).toEqual(['SubtaskPreempted', 'SubtaskPlaced']);
    const preempted = ofType(result, 'SubtaskPreempted')[0]!;
    expect(preempted.data).toMatchObject({ subtaskId: 'spot-0', preemptedByJobId: 'urgent', fault: 'platform', reason: expect.stringMatching(/high urgent needs 4 a100 GPUs/) });
    expect(preempted.command).toMatchObject({ kind: 'StopSubtask', subtaskId: 'spot-0' });
    const requeue = log.cycle(at(3));
    expect(ofType(requeue, 'SubtaskRequeued')[0]!.data).toMatchObject({ subtaskId: 'spot-0', previousAttempt: 1 });
    // Back in the queue as attempt 2, it waits for 8 GPUs (only 4 are free).
    const again = log.cycle(at(4));
    expect(ofType(again, 'SubtaskPlaced').map((d) => [d.data.subtaskId, d.data.attempt])).toEqual([]);
    expect(log.state.subtasks.get('spot-0')?.attempt).toBe(2);
  });

  it('preempts a gang as a whole', () => {
    const log = new SchedulerLog().node('n1').node('n2').job({ jobId: 'g', priorityClass: 'preemptible', gang: true, count: 2, gpus: 8 });
    log.cycle(at(1));
    log.job({ jobId: 'urgent', priorityClass: 'high', gpus: 2 });
    const result = log.when(at(2));
    expect(ofType(result, 'SubtaskPreempted').map((d) => d.data.subtaskId).sort()).toEqual(['g-0', 'g-1']);
    expect(placements(result).map(([s]) => s)).toEqual(['urgent-0']);
  });

  it('never preempts non-preemptible work, and the preemptible class preempts nobody', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8).job({ jobId: 'std', gpus: 8 });
    log.cycle(at(1));
    log.job({ jobId: 'urgent', priorityClass: 'high', gpus: 1 });
    expect(log.when(at(2)).decisions).toEqual([]);
    const spotLog = new SchedulerLog().node('n1', 'a100', 8).job({ jobId: 'spot1', priorityClass: 'preemptible', gpus: 8 });
    spotLog.cycle(at(1));
    spotLog.job({ jobId: 'spot2', priorityClass: 'preemptible', gpus: 8 });
    expect(spotLog.when(at(2)).decisions).toEqual([]);
  });
});

describe('cancellation, dependencies, retries, node loss', () => {
  it('cancels: pending sub-tasks leave the queue, running ones are stopped, then the job completes cancelled', () => {
    const log = new SchedulerLog().node('n1', 'a100', 2).job({ jobId: 'j', gpus: 1, count: 4 });
    log.cycle(at(1));
    log.append('JobCancelRequested', { jobId: 'j', tenantId: 'acme', requestedAt: at(2), reason: 'user asked' });
    const stop = log.cycle(at(3));
    expect(types(stop)).toEqual(['SubtaskPreempted', 'SubtaskPreempted']);
    expect(ofType(stop, 'SubtaskPreempted').every((d) => d.command?.kind === 'StopSubtask' && /cancelled: user asked/.test(d.data.reason))).toBe(true);
    // The tenant's own cancel is not a platform interruption: it must not be credited back.
    expect(ofType(stop, 'SubtaskPreempted').map((d) => d.data.fault)).toEqual(['user', 'user']);
    const done = log.cycle(at(4));
    expect(ofType(done, 'JobCompleted')[0]!.data).toMatchObject({ outcome: 'cancelled', subtasksSucceeded: 0, subtasksCancelled: 4 });
    expect(log.state.jobs.has('j')).toBe(false);
  });

  it('completes a job with its outcome and the GPU-ms it saw', () => {
    const log = new SchedulerLog().node('n1').job({ jobId: 'j', gpus: 2, count: 2 });
    log.cycle(at(1));
    log.started('j-0', 2).started('j-1', 2).completed('j-0', 12);
    expect(log.when(at(13)).decisions).toEqual([]);
    log.completed('j-1', 7);
    const done = log.cycle(at(14));
    expect(ofType(done, 'JobCompleted')[0]!.data).toMatchObject({ outcome: 'succeeded', subtasksSucceeded: 2, gpuMsObserved: 2 * 10_000 + 2 * 5_000 });
  });

  it('runs a job after its dependency succeeds, and fails it when the dependency cannot be met', () => {
    const log = new SchedulerLog().node('n1').job({ jobId: 'first' }).job({ jobId: 'after', dependsOn: [{ jobId: 'first', condition: 'afterSuccess' }] });
    const one = log.cycle(at(1));
    expect(placements(one)).toEqual([['first-0', 'n1']]);
    expect(one.waiting.get('after')?.code).toBe('dependency');
    log.started('first-0', 2).completed('first-0', 3);
    log.cycle(at(4));
    expect(placements(log.cycle(at(5)))).toEqual([['after-0', 'n1']]);

    const failing = new SchedulerLog().node('n1').job({ jobId: 'first' }).job({ jobId: 'strict', dependsOn: [{ jobId: 'first', condition: 'afterSuccess' }] }).job({ jobId: 'any', dependsOn: [{ jobId: 'first', condition: 'afterAny' }] });
    failing.cycle(at(1));
    failing.failed('first-0', 2, 1);
    failing.cycle(at(3));
    const result = failing.cycle(at(4));
    expect(ofType(result, 'JobCompleted')[0]!.data).toMatchObject({ jobId: 'strict', outcome: 'failed', reason: expect.stringMatching(/dependency first ended failed/) });
    expect(placements(result)).toEqual([['any-0', 'n1']]);
  });

  it('retries user failures by the job retry policy: listed exit codes, up to maxAttempts', () => {
    const log = new SchedulerLog().node('n1').job({ jobId: 'j', retryPolicy: { maxAttempts: 2, retryOnExitCodes: [137] } });
    log.cycle(at(1));
    log.failed('j-0', 2, 137);
    expect(ofType(log.cycle(at(3)), 'SubtaskRequeued')[0]!.data.reason).toMatch(/exit 137/);
    expect(ofType(log.cycle(at(4)), 'SubtaskPlaced')[0]!.data.attempt).toBe(2);
    log.failed('j-0', 5, 137);
    const done = log.cycle(at(6));
    expect(ofType(done, 'JobCompleted')[0]!.data).toMatchObject({ outcome: 'failed', subtasksFailed: 1 });

    const unlisted = new SchedulerLog().node('n1').job({ jobId: 'j', retryPolicy: { maxAttempts: 3, retryOnExitCodes: [137] } });
    unlisted.cycle(at(1));
    unlisted.failed('j-0', 2, 1);
    expect(types(unlisted.cycle(at(3)))).toEqual(['JobCompleted']);
  });

  it('requeues on node loss with a new attempt and epoch, and abandons after the platform attempts', () => {
    const log = new SchedulerLog().node('n1').node('n2').node('n3').job({ jobId: 'j', gpus: 8 });
    const epochs: number[] = [];
    for (let attempt = 1; attempt <= PLATFORM_ATTEMPTS_MAX; attempt++) {
      const placed = ofType(log.cycle(at(attempt * 10)), 'SubtaskPlaced')[0]!;
      expect(placed.data.attempt).toBe(attempt);
      epochs.push(placed.data.leaseEpoch);
      log.append('NodeLost', { nodeId: placed.data.nodeId, lastHeartbeatAt: at(attempt * 10 + 1), detectedAt: at(attempt * 10 + 2), reason: 'silent' });
      const next = log.cycle(at(attempt * 10 + 3));
      expect(types(next)).toEqual([attempt < PLATFORM_ATTEMPTS_MAX ? 'SubtaskRequeued' : 'SubtaskAbandoned']);
    }
    expect(new Set(epochs).size).toBe(3);
    expect(ofType(log.cycle(at(100)), 'JobCompleted')[0]!.data.outcome).toBe('failed');
  });

  it('places again on a recovered node, and requeues what a restarted agent was running', () => {
    const log = new SchedulerLog().node('n1').job({ jobId: 'j', gpus: 8 });
    log.cycle(at(1));
    log.append('NodeLost', { nodeId: 'n1', lastHeartbeatAt: at(2), detectedAt: at(3), reason: 'silent' });
    expect(types(log.cycle(at(4)))).toEqual(['SubtaskRequeued']);
    expect(log.when(at(5)).decisions).toEqual([]);
    log.append('NodeRecovered', { nodeId: 'n1', agentEpoch: 1, recoveredAt: at(6) });
    expect(placements(log.cycle(at(7)))).toEqual([['j-0', 'n1']]);
    log.append('NodeRegistered', { nodeId: 'n1', gpuModel: 'a100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 2, registeredAt: at(8) });
    const requeued = ofType(log.cycle(at(9)), 'SubtaskRequeued')[0]!;
    expect(requeued.data).toMatchObject({ subtaskId: 'j-0', previousAttempt: 2, reason: expect.stringMatching(/agent restarted/) });
  });

  it('ignores reports that carry a stale epoch', () => {
    const log = new SchedulerLog().node('n1').job({ jobId: 'j' });
    const placed = ofType(log.cycle(at(1)), 'SubtaskPlaced')[0]!;
    log.append('SubtaskCompleted', { jobId: 'j', tenantId: 'acme', subtaskId: 'j-0', attempt: 1, nodeId: 'n1', leaseEpoch: placed.data.leaseEpoch + 7, exitCode: 0, endedAt: at(2) });
    expect(log.state.subtasks.get('j-0')?.status).toBe('placed');
    expect(log.when(at(3)).decisions).toEqual([]);
  });
});

describe('EASY backfill', () => {
  it('reserves for the blocked head; short jobs backfill, long ones on reserved GPUs wait', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8).job({ jobId: 'running', gpus: 6, runtimeMs: 100_000 });
    log.cycle(at(0));
    log.started('running-0', 0);
    log.job({ jobId: 'head', gpus: 8, runtimeMs: 10_000, submittedAt: at(1) });
    log.job({ jobId: 'long', gpus: 2, runtimeMs: 500_000, submittedAt: at(2) });
    log.job({ jobId: 'short', gpus: 2, runtimeMs: 50_000, submittedAt: at(3) });
    const result = log.when(at(10));
    expect(placements(result)).toEqual([['short-0', 'n1']]);
    expect(result.reservation).toMatchObject({ entryKey: 'head', startAtMs: Date.parse(at(100)) });
    expect(result.waiting.get('long')?.code).toBe('reserved');
    expect(result.waiting.get('head')?.code).toBe('capacity');
  });

  it('lets any job use GPUs the reservation does not need', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8).job({ jobId: 'running', gpus: 4, runtimeMs: 100_000 });
    log.cycle(at(0));
    log.job({ jobId: 'head', gpus: 6, submittedAt: at(1) });
    log.job({ jobId: 'long', gpus: 2, runtimeMs: 500_000, submittedAt: at(2) });
    // At the reservation's start 8 GPUs are free and the head needs 6: 2 are spare now.
    expect(placements(log.when(at(10)))).toEqual([['long-0', 'n1']]);
  });
});

describe('leases', () => {
  it('grants a lease when placed, releases it on request, and drops a pending lease released early', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8);
    log.append('LeaseRequested', { leaseId: 'L1', tenantId: 'acme', projectId: 'p1', gpuModels: ['a100'], gpus: 4, capacityType: 'on-demand', priorityClass: 'standard', requestedAt: at(1) });
    const granted = log.cycle(at(2));
    const grant = ofType(granted, 'LeaseGranted')[0]!;
    expect(grant.data).toMatchObject({ leaseId: 'L1', nodeId: 'n1', gpus: 4, gpuIndices: [0, 1, 2, 3] });
    // The node is told: its GPUs are the tenant's from the grant (same epoch, command id = event id).
    expect(grant.command).toEqual({ kind: 'AttachLease', commandId: grant.id, leaseId: 'L1', tenantId: 'acme', leaseEpoch: grant.data.leaseEpoch, gpuIndices: [0, 1, 2, 3], issuedAt: at(2) });
    log.append('LeaseReleaseRequested', { leaseId: 'L1', tenantId: 'acme', requestedAt: at(3) });
    const released = log.cycle(at(4));
    const release = ofType(released, 'LeaseReleased')[0]!;
    expect(release.data).toMatchObject({ leaseId: 'L1', nodeId: 'n1', reason: 'released by the tenant' });
    expect(release.command).toEqual({ kind: 'DetachLease', commandId: release.id, leaseId: 'L1', leaseEpoch: grant.data.leaseEpoch, reason: 'released by the tenant', issuedAt: at(4) });
    // A takeover resends the detach with the same id: it is remembered with the recent stops.
    expect(log.state.recentStops.at(-1)).toEqual({ nodeId: 'n1', command: release.command });
    expect(log.state.nodes.get('n1')?.freeGpus).toBe(8);

    log.append('LeaseRequested', { leaseId: 'L2', tenantId: 'acme', projectId: 'p1', gpuModels: ['h100'], gpus: 4, capacityType: 'on-demand', priorityClass: 'standard', requestedAt: at(5) });
    log.append('LeaseReleaseRequested', { leaseId: 'L2', tenantId: 'acme', requestedAt: at(6) });
    expect(log.when(at(7)).decisions).toEqual([]);
    expect(log.state.leases.get('L2')?.status).toBe('released');
  });

  it('closes a grant that crossed a release in flight', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8);
    log.append('LeaseRequested', { leaseId: 'L1', tenantId: 'acme', projectId: 'p1', gpuModels: ['a100'], gpus: 2, capacityType: 'on-demand', priorityClass: 'standard', requestedAt: at(1) });
    const decided = log.when(at(2));
    log.append('LeaseReleaseRequested', { leaseId: 'L1', tenantId: 'acme', requestedAt: at(2) });
    log.commit(decided);
    expect(ofType(log.cycle(at(3)), 'LeaseReleased')[0]!.data.reason).toBe('released before it was granted');
    expect(log.state.nodes.get('n1')?.freeGpus).toBe(8);
  });

  it('ignores a release asked by another tenant', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8);
    log.append('LeaseRequested', { leaseId: 'L1', tenantId: 'acme', projectId: 'p1', gpuModels: ['a100'], gpus: 1, capacityType: 'on-demand', priorityClass: 'standard', requestedAt: at(1) });
    log.cycle(at(2));
    log.append('LeaseReleaseRequested', { leaseId: 'L1', tenantId: 'mallory', requestedAt: at(3) });
    expect(log.when(at(4)).decisions).toEqual([]);
  });
});

describe('feasibility, explanations, dry-run, determinism', () => {
  const fleet = () => new SchedulerLog().node('a1', 'a100', 8, { rack: 'r1' }).node('a2', 'a100', 8, { rack: 'r2' }).node('h1', 'h100', 4, { rack: 'r1' });

  it('rejects what no node could ever run, and accepts what fits some day', () => {
    const state = fleet().state;
    expect(feasibility(state, { gpuModels: ['b200'], gpusPerSubtask: 1, subtaskCount: 1 })).toMatchObject({ feasible: false, field: 'gpuModels', reason: expect.stringMatching(/unknown GPU model b200: the fleet has a100, h100/) });
    expect(feasibility(state, { gpuModels: ['h100'], gpusPerSubtask: 8, subtaskCount: 1 })).toMatchObject({ feasible: false, field: 'gpusPerSubtask' });
    expect(feasibility(state, { gpuModels: ['a100'], gpusPerSubtask: 0, subtaskCount: 1 })).toMatchObject({ feasible: false, field: 'gpusPerSubtask' });
    expect(feasibility(state, { gpuModels: ['a100'], gpusPerSubtask: 8, subtaskCount: 3, gang: true })).toMatchObject({ feasible: false, field: 'subtaskCount' });
    expect(feasibility(state, { gpuModels: ['a100'], gpusPerSubtask: 8, subtaskCount: 2, gang: true, gangTopologyKey: 'rack' })).toMatchObject({ feasible: false, reason: expect.stringMatching(/one rack domain/) });
    expect(feasibility(state, { gpuModels: ['b200', 'h100'], gpusPerSubtask: 4, subtaskCount: 100 })).toEqual({ feasible: true });
    expect(feasibility(state, { gpuModels: ['a100'], gpusPerSubtask: 8, subtaskCount: 2, gang: true })).toEqual({ feasible: true });
    expect(feasibility(state, { gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, dependsOn: [{ jobId: 'ghost' }] })).toMatchObject({ feasible: false, field: 'dependsOn' });
  });

  it('explains why a job waits and where it stands', () => {
    const log = fleet().job({ jobId: 'fill', gpus: 8, count: 2 }).job({ jobId: 'j2', gpus: 8, submittedAt: at(50) }).job({ jobId: 'j3', gpus: 8, submittedAt: at(60) });
    const result = log.cycle(at(1));
    const explanation = explain(log.state, 'j3', 'acme', result.waiting, result.reservation);
    expect(explanation).toMatchObject({ state: 'queued', queuePosition: 2, code: 'capacity', pendingSubtasks: 1 });
    expect(explanation.waiting).toMatch(/no capacity: needs 8 GPUs on one node of a100; largest free block is 0/);
    expect(explain(log.state, 'j3', 'other-tenant', result.waiting)).toEqual({ state: 'unknown' });
    expect(explain(log.state, 'fill', 'acme', result.waiting)).toMatchObject({ state: 'running', runningSubtasks: 2 });
  });

  it('dry-runs a job: says where it would go, without changing the state', () => {
    const log = fleet().job({ jobId: 'spot', priorityClass: 'preemptible', gpus: 8, count: 2 });
    log.cycle(at(1));
    const before = JSON.stringify([...log.state.nodes.values()].map((n) => [n.nodeId, n.freeGpus]));
    const result = decide(log.state, { now: at(2), policy: log.policy, explain: true, hypothetical: { jobId: 'dry', tenantId: 'acme', gpuModels: ['a100'], gpusPerSubtask: 8, subtaskCount: 1, runtimeMs: 1000, priorityClass: 'high', priority: 0, preemptible: false, gang: false } });
    expect(result.hypothetical?.placed).toHaveLength(1);
    expect(result.hypothetical?.preempted).toHaveLength(1);
    expect(JSON.stringify([...log.state.nodes.values()].map((n) => [n.nodeId, n.freeGpus]))).toBe(before);
  });

  it('rebuilds the same state and the same decisions from the log', () => {
    const log = fleet();
    for (let i = 0; i < 20; i++) log.job({ jobId: `j${i}`, tenantId: i % 3 ? 'acme' : 'beta', gpus: 1 + (i % 4), priorityClass: i % 5 === 0 ? 'preemptible' : 'standard', submittedAt: at(i) });
    const first = log.cycle(at(30));
    for (const d of ofType(first, 'SubtaskPlaced').slice(0, 3)) log.started(d.data.subtaskId, 31).completed(d.data.subtaskId, 32);
    log.job({ jobId: 'urgent', priorityClass: 'high', gpus: 8, submittedAt: at(33) });
    const replayed = initialState();
    for (const stored of log.events) evolve(replayed, stored);
    const live = log.when(at(40));
    const rebuilt = decide(replayed, { now: at(40), policy: log.policy, explain: true });
    expect(rebuilt.decisions).toEqual(live.decisions);
    expect(live.decisions.length).toBeGreaterThan(0);
  });
});

describe('the scheduler as the kernel Decider (given / when / then of libs/eventsourcing)', () => {
  it('given the log, when a cycle, then its decisions: a placement with its id derived from the sub-task and its command', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8).job({ jobId: 'j1', gpus: 2 });
    const created = log.events.find((e) => e.event.type === 'SubtaskCreated')!.event;
    const id = deriveId(created.id, 'placed/1');
    const now = at(10);
    spec(schedulerDecider)
      .given(log.events)
      .when({ now, policy: defaultPolicy })
      .then([
        {
          type: 'SubtaskPlaced',
          id,
          causationId: created.id,
          correlationId: 'j1',
          tenantId: 'acme',
          nodeId: 'n1',
          command: { kind: 'RunSubtask', commandId: id, jobId: 'j1', tenantId: 'acme', subtaskId: 'j1-0', attempt: 1, leaseEpoch: 1, gpuIndices: [0, 1], runtimeMs: 60_000, issuedAt: now },
          data: { jobId: 'j1', tenantId: 'acme', projectId: 'p1', subtaskId: 'j1-0', attempt: 1, nodeId: 'n1', gpuModel: 'a100', gpus: 2, gpuIndices: [0, 1], leaseEpoch: 1, capacityType: 'on-demand', runtimeMs: 60_000, placedAt: now },
        },
      ]);
  });

  it('given a platform failure, when a cycle, then a requeue derived from the failure; given nothing queued, nothing', () => {
    const log = new SchedulerLog().node('n1', 'a100', 8).job({ jobId: 'j1' });
    log.cycle(at(1));
    log.failed('j1-0', 2, 137, 'platform');
    const failure = log.events[log.events.length - 1]!.event;
    const decided = schedulerDecider.decide({ now: at(3), policy: defaultPolicy }, log.state);
    expect(decided.map((d) => [d.type, d.id, d.causationId])).toEqual([['SubtaskRequeued', deriveId(failure.id, 'requeued/j1-0/1'), failure.id]]);
    spec(schedulerDecider).given(new SchedulerLog().node('n1').events).when({ now: at(3), policy: defaultPolicy }).then([]);
  });
});
