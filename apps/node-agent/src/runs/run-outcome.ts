import { constants } from 'node:os';
import { failureKindFault, type FailureKind } from '@fastgpu/contracts';

/**
 * What the agent reports when a run ends, from what it observed: the supervisor's exit record
 * (exit code, signal, or a command that could not start), whether the agent itself stopped it
 * (StopSubtask, a newer lease epoch, its timeout, a kill at restart), the memory cgroup's OOM
 * kill counter across the run, and the result check. Pure: the shell gathers the facts.
 *
 * The retry policy reads `fault`: `user` (the program's doing: exit code, signal, OOM, timeout,
 * could not start, no result) is retried only as the job's retry policy says; `platform` (the
 * agent could not run it or keep its output; the agent restarted and the process was gone) is
 * retried up to the platform's attempts. `failureKind` tells the user faults apart.
 */
export type ProcessEnd =
  | { kind: 'exited'; code: number }
  | { kind: 'signaled'; signal: string }
  | { kind: 'spawn-failed'; errorCode: string; message: string }
  /** No exit record: the supervisor was killed, or the host restarted. */
  | { kind: 'vanished' };

export type ResultCheck =
  | { kind: 'stored'; bytes: number; sha256: string }
  | { kind: 'absent' }
  /** The file is there but not acceptable (too large, not a regular file, outside the attempt's directory). */
  | { kind: 'refused'; reason: string }
  /** The agent could not store an acceptable file (the object store refused or was unreachable). */
  | { kind: 'store-failed'; reason: string }
  | { kind: 'not-checked' };

export interface RunEndFacts {
  end: ProcessEnd;
  program: string;
  resultPath: string;
  timeoutMs: number;
  /** StopSubtask, or superseded by a newer lease epoch of the same sub-task: nothing is reported. */
  stoppedByAgent: boolean;
  timedOut: boolean;
  /** The agent restarted, found the run alive and killed it (FASTGPU_AGENT_ON_RESTART=kill). */
  killedAtRestart: boolean;
  /** The agent was restarted while the run went on (so a missing exit record means the host or the supervisor went away). */
  sawRestart: boolean;
  /** Growth of the memory cgroup's `oom_kill` counter during the run; undefined when it cannot be read. */
  oomKillsDuringRun: number | undefined;
  result: ResultCheck;
}

export type RunReport =
  | { kind: 'none'; why: string }
  | { kind: 'completed' }
  | { kind: 'failed'; exitCode: number; fault: 'user' | 'platform'; failureKind: FailureKind; reason: string };

/** Exit code of a process ended by a signal, as shells and Kubernetes report it: 128 + the signal's number. */
export function signalExitCode(signal: string): number {
  const number = (constants.signals as Record<string, number | undefined>)[signal];
  return 128 + (number ?? 0);
}

const REASON_LENGTH_MAX = 500;
/** The fault follows from the kind by the rule the scheduler applies (libs/contracts `failureKindFault`). */
const failed = (exitCode: number, failureKind: FailureKind, reason: string): RunReport => ({ kind: 'failed', exitCode, fault: failureKindFault(failureKind), failureKind, reason: reason.slice(0, REASON_LENGTH_MAX) });

/** The exit code a run is recorded with: its own, 128 + a signal's number, 127/126 when it could not start, -1 when unknown. */
export function exitCodeOf(end: ProcessEnd): number {
  switch (end.kind) {
    case 'exited':
      return end.code;
    case 'signaled':
      return signalExitCode(end.signal);
    case 'spawn-failed':
      return end.errorCode === 'ENOENT' ? 127 : 126;
    case 'vanished':
      return -1;
    default: {
      const unreachable: never = end;
      throw new Error(`unknown process end ${JSON.stringify(unreachable)}`);
    }
  }
}

function describeEnd(end: ProcessEnd): string {
  switch (end.kind) {
    case 'exited':
      return `exit code ${end.code}`;
    case 'signaled':
      return `killed by ${end.signal}`;
    case 'spawn-failed':
      return `could not start: ${end.errorCode}`;
    case 'vanished':
      return 'no exit status';
    default: {
      const unreachable: never = end;
      throw new Error(`unknown process end ${JSON.stringify(unreachable)}`);
    }
  }
}

export function classifyRunEnd(facts: RunEndFacts): RunReport {
  const { end } = facts;
  if (facts.stoppedByAgent) return { kind: 'none', why: 'stopped by a command: the scheduler recorded why it ended' };
  if (facts.killedAtRestart) return failed(-1, 'agent-restart', 'the agent restarted and killed this run (FASTGPU_AGENT_ON_RESTART=kill)');
  if (facts.timedOut) return failed(exitCodeOf(end), 'timeout', `timed out after ${facts.timeoutMs} ms: the agent stopped its process group (${describeEnd(end)})`);
  const oom = (facts.oomKillsDuringRun ?? 0) > 0;
  switch (end.kind) {
    case 'vanished':
      return facts.sawRestart
        ? failed(-1, 'agent-restart', 'the agent restarted and the process was gone without an exit status (host restart, or its supervisor was killed)')
        : failed(-1, 'agent', 'the run\'s supervisor ended without an exit status');
    case 'spawn-failed':
      return failed(exitCodeOf(end), 'exec', `could not start ${facts.program}: ${end.errorCode} ${end.message}`);
    case 'signaled':
      if (end.signal === 'SIGKILL' && oom) return failed(exitCodeOf(end), 'oom', `killed by the kernel OOM killer (SIGKILL; the memory cgroup's oom_kill counter grew by ${facts.oomKillsDuringRun} during the run)`);
      if (end.signal === 'SIGKILL') {
        const why = facts.oomKillsDuringRun === undefined ? 'the OOM kill counter could not be read' : 'no OOM kill in the agent\'s memory cgroup: the host\'s OOM killer or another process';
        return failed(exitCodeOf(end), 'signal', `killed by SIGKILL, not sent by the agent (${why})`);
      }
      return failed(exitCodeOf(end), 'signal', `killed by ${end.signal}, not sent by the agent`);
    case 'exited':
      if (end.code === signalExitCode('SIGKILL') && oom) return failed(end.code, 'oom', `exit code ${end.code} with an OOM kill in the memory cgroup during the run (a child killed by the OOM killer)`);
      if (end.code !== 0) return failed(end.code, 'exit-code', `exit code ${end.code}`);
      return reportResult(facts);
    default: {
      const unreachable: never = end;
      throw new Error(`unknown process end ${JSON.stringify(unreachable)}`);
    }
  }
}

/** A clean exit succeeds only with its result stored. */
function reportResult(facts: RunEndFacts): RunReport {
  const result = facts.result;
  switch (result.kind) {
    case 'stored':
      return { kind: 'completed' };
    case 'absent':
      return failed(0, 'result', `exit code 0 but no result at ${facts.resultPath}`);
    case 'refused':
      return failed(0, 'result', `exit code 0 but the result was refused: ${result.reason}`);
    case 'store-failed':
      return failed(0, 'agent', `exit code 0 but the agent could not store the result: ${result.reason}`);
    case 'not-checked':
      return failed(0, 'agent', 'exit code 0 but the result was not checked');
    default: {
      const unreachable: never = result;
      throw new Error(`unknown result check ${JSON.stringify(unreachable)}`);
    }
  }
}
