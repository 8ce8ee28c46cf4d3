import type { NodeCommand } from '@fastgpu/contracts';

/**
 * What the agent does with each node command, given what it runs and what it has seen. Pure:
 * the shell holds the state and carries the decision out.
 *
 * Fencing on the node: the agent remembers the newest placement (attempt, lease epoch) it was
 * given for each sub-task. A RunSubtask with an older epoch is stale and never starts; one with a
 * newer epoch stops the older run of the same sub-task before starting (a stale epoch never keeps
 * work). Each (sub-task, attempt) runs at most once: a repeat of a running one only resends its
 * start report, a repeat of an ended (or stopped) one is ignored.
 */
export type RunCommand = Extract<NodeCommand, { kind: 'RunSubtask' }>;

export interface RunView {
  key: string;
  subtaskId: string;
  attempt: number;
  leaseEpoch: number;
  /** The process is running (or being stopped); `ended`: it is gone and its report is being sent. */
  phase: 'running' | 'stopping' | 'ended';
}

export interface CommandState {
  gpuCount: number;
  runs: ReadonlyMap<string, RunView>;
  /** Runs that ended or were stopped (bounded memory of the most recent ones). */
  ended: ReadonlySet<string>;
  /** The newest placement seen per sub-task. */
  newest: ReadonlyMap<string, { attempt: number; leaseEpoch: number }>;
}

export type CommandDecision =
  | { kind: 'start'; command: RunCommand; stopFirst: string[] }
  | { kind: 'resend-started'; key: string }
  /** Cannot run here (no workload, GPUs it does not have): reported as a platform failure. */
  | { kind: 'refuse'; command: RunCommand; reason: string }
  | { kind: 'stop'; key: string }
  /** A stop for work that is not running: remembered so a late or repeated RunSubtask does not start it. */
  | { kind: 'forget'; key: string; reason: string }
  | { kind: 'ignore'; reason: string }
  | { kind: 'attach-lease'; leaseId: string; leaseEpoch: number; gpuIndices: number[] }
  | { kind: 'detach-lease'; leaseId: string; leaseEpoch: number };

export const runKey = (subtaskId: string, attempt: number): string => `${subtaskId}#${attempt}`;

export function decideCommand(state: CommandState, command: NodeCommand): CommandDecision {
  switch (command.kind) {
    case 'RunSubtask': {
      const key = runKey(command.subtaskId, command.attempt);
      const current = state.runs.get(key);
      if (current) {
        if (current.leaseEpoch === command.leaseEpoch && current.phase === 'running') return { kind: 'resend-started', key };
        return { kind: 'ignore', reason: `attempt ${command.attempt} of ${command.subtaskId} is already ${current.phase} here` };
      }
      if (state.ended.has(key)) return { kind: 'ignore', reason: `attempt ${command.attempt} of ${command.subtaskId} already ran or was stopped here` };
      const newest = state.newest.get(command.subtaskId);
      if (newest && (command.leaseEpoch < newest.leaseEpoch || command.attempt < newest.attempt)) {
        return { kind: 'ignore', reason: `stale placement of ${command.subtaskId}: epoch ${command.leaseEpoch} (attempt ${command.attempt}); this node was given epoch ${newest.leaseEpoch} (attempt ${newest.attempt})` };
      }
      if (!command.workload) return { kind: 'refuse', command, reason: 'no workload: this node runs only sub-tasks that carry a command (docs/node-protocol.md, "Workload")' };
      const indices = new Set(command.gpuIndices);
      const missing = command.gpuIndices.filter((index) => index >= state.gpuCount);
      if (missing.length > 0 || indices.size !== command.gpuIndices.length) {
        return { kind: 'refuse', command, reason: `GPU indices ${JSON.stringify(command.gpuIndices)} are not distinct GPUs of this node's ${state.gpuCount}` };
      }
      const stopFirst = [...state.runs.values()].filter((run) => run.subtaskId === command.subtaskId && run.leaseEpoch < command.leaseEpoch && run.phase !== 'ended').map((run) => run.key);
      return { kind: 'start', command, stopFirst };
    }
    case 'StopSubtask': {
      const key = runKey(command.subtaskId, command.attempt);
      const current = state.runs.get(key);
      if (current && current.leaseEpoch === command.leaseEpoch) {
        if (current.phase === 'running') return { kind: 'stop', key };
        return { kind: 'ignore', reason: `attempt ${command.attempt} of ${command.subtaskId} is already ${current.phase}` };
      }
      if (current) return { kind: 'ignore', reason: `stop for epoch ${command.leaseEpoch}, but epoch ${current.leaseEpoch} runs` };
      if (state.ended.has(key)) return { kind: 'ignore', reason: `attempt ${command.attempt} of ${command.subtaskId} is not running` };
      return { kind: 'forget', key, reason: `stop before run: attempt ${command.attempt} of ${command.subtaskId} will not start here` };
    }
    case 'AttachLease':
      return { kind: 'attach-lease', leaseId: command.leaseId, leaseEpoch: command.leaseEpoch, gpuIndices: command.gpuIndices };
    case 'DetachLease':
      return { kind: 'detach-lease', leaseId: command.leaseId, leaseEpoch: command.leaseEpoch };
    default: {
      const unreachable: never = command;
      throw new Error(`unknown node command ${JSON.stringify(unreachable)}`);
    }
  }
}
