/**
 * Proves each way a run can end becomes its own report, so the retry policy can tell platform
 * faults from user errors: a stop by command reports nothing; a clean exit with its result
 * stored completes; a non-zero exit, a signal the agent did not send, an OOM kill (SIGKILL or
 * exit 137 with the cgroup's oom_kill counter grown), the workload's timeout, a command that
 * cannot start and a clean exit without an acceptable result are user faults, each with its
 * failureKind; an agent that cannot store the result, a process gone after an agent restart,
 * and a run killed at restart are platform faults.
 */
import { describe, expect, it } from 'vitest';
import { classifyRunEnd, signalExitCode, type RunEndFacts } from './run-outcome';

const base: RunEndFacts = {
  end: { kind: 'exited', code: 0 },
  program: 'python3',
  resultPath: 'out/result.json',
  timeoutMs: 60_000,
  stoppedByAgent: false,
  timedOut: false,
  killedAtRestart: false,
  sawRestart: false,
  oomKillsDuringRun: 0,
  result: { kind: 'stored', bytes: 10, sha256: 'a'.repeat(64) },
};
const when = (patch: Partial<RunEndFacts>) => classifyRunEnd({ ...base, ...patch });

describe('classifyRunEnd', () => {
  it('completes a clean exit whose result is stored', () => {
    expect(when({})).toEqual({ kind: 'completed' });
  });

  it('reports nothing for a run stopped by a command, however it ended', () => {
    expect(when({ stoppedByAgent: true, end: { kind: 'signaled', signal: 'SIGKILL' } }).kind).toBe('none');
    expect(when({ stoppedByAgent: true, timedOut: true }).kind).toBe('none');
  });

  it('gives user faults their own kinds', () => {
    expect(when({ end: { kind: 'exited', code: 3 } })).toMatchObject({ kind: 'failed', exitCode: 3, fault: 'user', failureKind: 'exit-code', reason: 'exit code 3' });
    expect(when({ end: { kind: 'signaled', signal: 'SIGSEGV' } })).toMatchObject({ exitCode: 139, fault: 'user', failureKind: 'signal' });
    expect(when({ end: { kind: 'signaled', signal: 'SIGKILL' }, oomKillsDuringRun: 0 })).toMatchObject({ exitCode: 137, fault: 'user', failureKind: 'signal' });
    expect(when({ end: { kind: 'signaled', signal: 'SIGKILL' }, oomKillsDuringRun: 1 })).toMatchObject({ exitCode: 137, fault: 'user', failureKind: 'oom' });
    expect(when({ end: { kind: 'exited', code: 137 }, oomKillsDuringRun: 2 })).toMatchObject({ exitCode: 137, fault: 'user', failureKind: 'oom' });
    expect(when({ end: { kind: 'exited', code: 137 }, oomKillsDuringRun: 0 })).toMatchObject({ failureKind: 'exit-code' });
    expect(when({ timedOut: true, end: { kind: 'signaled', signal: 'SIGTERM' } })).toMatchObject({ exitCode: 143, fault: 'user', failureKind: 'timeout' });
    expect(when({ end: { kind: 'spawn-failed', errorCode: 'ENOENT', message: 'spawn nope ENOENT' } })).toMatchObject({ exitCode: 127, fault: 'user', failureKind: 'exec' });
    expect(when({ end: { kind: 'spawn-failed', errorCode: 'EACCES', message: '' } })).toMatchObject({ exitCode: 126, failureKind: 'exec' });
    expect(when({ result: { kind: 'absent' } })).toMatchObject({ exitCode: 0, fault: 'user', failureKind: 'result' });
    expect(when({ result: { kind: 'refused', reason: '2000 bytes, over the limit of 1000' } })).toMatchObject({ fault: 'user', failureKind: 'result' });
  });

  it('says when the OOM counter could not be read', () => {
    const report = when({ end: { kind: 'signaled', signal: 'SIGKILL' }, oomKillsDuringRun: undefined });
    expect(report).toMatchObject({ failureKind: 'signal' });
    expect(report.kind === 'failed' && report.reason).toMatch(/could not be read/);
  });

  it('gives platform faults their own kinds', () => {
    expect(when({ result: { kind: 'store-failed', reason: 'timeout' } })).toMatchObject({ fault: 'platform', failureKind: 'agent' });
    expect(when({ end: { kind: 'vanished' }, sawRestart: true })).toMatchObject({ exitCode: -1, fault: 'platform', failureKind: 'agent-restart' });
    expect(when({ end: { kind: 'vanished' }, sawRestart: false })).toMatchObject({ fault: 'platform', failureKind: 'agent' });
    expect(when({ killedAtRestart: true, end: { kind: 'signaled', signal: 'SIGKILL' } })).toMatchObject({ fault: 'platform', failureKind: 'agent-restart' });
  });

  it('keeps a non-zero exit a user fault even when the result could not be stored', () => {
    expect(when({ end: { kind: 'exited', code: 1 }, result: { kind: 'store-failed', reason: 'x' } })).toMatchObject({ fault: 'user', failureKind: 'exit-code' });
  });

  it('bounds the reason to the event\'s 500 characters', () => {
    const report = when({ end: { kind: 'spawn-failed', errorCode: 'ENOENT', message: 'x'.repeat(2000) } });
    expect(report.kind === 'failed' && report.reason.length).toBe(500);
  });

  it('maps signals to 128 + their number', () => {
    expect([signalExitCode('SIGTERM'), signalExitCode('SIGKILL'), signalExitCode('SIGINT')]).toEqual([143, 137, 130]);
  });
});
