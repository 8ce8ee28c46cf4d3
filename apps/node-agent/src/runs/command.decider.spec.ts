/**
 * Proves the agent's decisions on node commands (given what it runs and has seen, when a command
 * arrives, then this): a new placement starts; a repeat of a running one only resends its start
 * report and a repeat of an ended one is ignored; a placement with an older lease epoch (or
 * attempt) than the newest seen never starts, and a newer one stops the older run first; a
 * placement without a workload or with GPUs the node lacks is refused; a stop stops only the
 * matching epoch, and a stop that arrives before its run keeps that run from ever starting.
 */
import { describe, expect, it } from 'vitest';
import type { NodeCommand, Workload } from '@fastgpu/contracts';
import { decideCommand, runKey, type CommandState, type RunCommand, type RunView } from './command.decider';

const workload: Workload = { command: ['true'], timeoutMs: 1000, subtaskIndex: 0, subtaskCount: 1, resultPath: 'r', resultBytesMax: 10 };
const run = (attempt: number, leaseEpoch: number, patch: Partial<RunCommand> = {}): RunCommand => ({
  kind: 'RunSubtask',
  commandId: `c-${attempt}-${leaseEpoch}`,
  jobId: 'job',
  tenantId: 'acme',
  subtaskId: 'st',
  attempt,
  leaseEpoch,
  gpuIndices: [0, 1],
  runtimeMs: 1000,
  workload,
  issuedAt: '2026-01-01T00:00:00.000Z',
  ...patch,
});
const stop = (attempt: number, leaseEpoch: number): NodeCommand => ({ kind: 'StopSubtask', commandId: 's', subtaskId: 'st', attempt, leaseEpoch, reason: 'preempted', issuedAt: '2026-01-01T00:00:00.000Z' });

function given(runs: Array<Omit<RunView, 'key' | 'subtaskId'>> = [], ended: string[] = []): CommandState {
  const views = runs.map((r) => ({ ...r, key: runKey('st', r.attempt), subtaskId: 'st' }));
  const newest = new Map<string, { attempt: number; leaseEpoch: number }>();
  for (const r of views) newest.set('st', { attempt: r.attempt, leaseEpoch: r.leaseEpoch });
  return { gpuCount: 4, runs: new Map(views.map((v) => [v.key, v])), ended: new Set(ended), newest };
}

describe('RunSubtask', () => {
  it('starts a new placement', () => {
    expect(decideCommand(given(), run(1, 1))).toEqual({ kind: 'start', command: run(1, 1), stopFirst: [] });
  });

  it('only resends the start report of a running repeat, and ignores a repeat of an ended run', () => {
    expect(decideCommand(given([{ attempt: 1, leaseEpoch: 1, phase: 'running' }]), run(1, 1))).toEqual({ kind: 'resend-started', key: 'st#1' });
    expect(decideCommand(given([{ attempt: 1, leaseEpoch: 1, phase: 'ended' }]), run(1, 1)).kind).toBe('ignore');
    expect(decideCommand(given([], ['st#1']), run(1, 1)).kind).toBe('ignore');
  });

  it('never starts a stale epoch, and stops the older run when a newer epoch arrives', () => {
    const state = given([{ attempt: 2, leaseEpoch: 5, phase: 'running' }]);
    const stale = decideCommand(state, run(1, 4));
    expect(stale.kind).toBe('ignore');
    expect(stale.kind === 'ignore' && stale.reason).toMatch(/stale placement of st: epoch 4 \(attempt 1\); this node was given epoch 5 \(attempt 2\)/);
    expect(decideCommand(state, run(3, 6))).toEqual({ kind: 'start', command: run(3, 6), stopFirst: ['st#2'] });
  });

  it('remembers the newest epoch even after the run ended', () => {
    const state: CommandState = { gpuCount: 4, runs: new Map(), ended: new Set(['st#2']), newest: new Map([['st', { attempt: 2, leaseEpoch: 5 }]]) };
    expect(decideCommand(state, run(1, 4)).kind).toBe('ignore');
  });

  it('refuses a placement without a workload or with GPUs this node does not have', () => {
    expect(decideCommand(given(), run(1, 1, { workload: undefined })).kind).toBe('refuse');
    expect(decideCommand(given(), run(1, 1, { gpuIndices: [3, 4] })).kind).toBe('refuse');
    expect(decideCommand(given(), run(1, 1, { gpuIndices: [1, 1] })).kind).toBe('refuse');
    expect(decideCommand(given(), run(1, 1, { gpuIndices: [3] })).kind).toBe('start');
  });
});

describe('StopSubtask', () => {
  it('stops the running attempt of that epoch only', () => {
    const state = given([{ attempt: 1, leaseEpoch: 3, phase: 'running' }]);
    expect(decideCommand(state, stop(1, 3))).toEqual({ kind: 'stop', key: 'st#1' });
    expect(decideCommand(state, stop(1, 2)).kind).toBe('ignore');
    expect(decideCommand(given([{ attempt: 1, leaseEpoch: 3, phase: 'stopping' }]), stop(1, 3)).kind).toBe('ignore');
  });

  it('keeps a run that has not arrived yet from starting', () => {
    expect(decideCommand(given(), stop(1, 1))).toMatchObject({ kind: 'forget', key: 'st#1' });
    expect(decideCommand(given([], ['st#1']), stop(1, 1)).kind).toBe('ignore');
  });
});

describe('leases', () => {
  it('passes attach and detach through', () => {
    expect(decideCommand(given(), { kind: 'AttachLease', commandId: 'a', leaseId: 'l', tenantId: 't', leaseEpoch: 2, gpuIndices: [1], issuedAt: '2026-01-01T00:00:00.000Z' })).toEqual({ kind: 'attach-lease', leaseId: 'l', leaseEpoch: 2, gpuIndices: [1] });
    expect(decideCommand(given(), { kind: 'DetachLease', commandId: 'd', leaseId: 'l', leaseEpoch: 2, reason: 'released', issuedAt: '2026-01-01T00:00:00.000Z' })).toEqual({ kind: 'detach-lease', leaseId: 'l', leaseEpoch: 2 });
  });
});
