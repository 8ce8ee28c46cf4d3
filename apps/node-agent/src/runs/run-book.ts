import type { ChildProcess } from 'node:child_process';
import type { LogShipper } from '../logs/log-shipper';
import type { CommandState, RunCommand, RunView } from './command.decider';
import { ENDED_RUNS_REMEMBERED_MAX, PLACEMENTS_REMEMBERED_MAX, type AgentState, type RunRecord, type StateStore } from './state-store';
import type { RunPaths } from './workspace';

/** A run the agent holds: its record (what the state file keeps), its files, its log shipper and timers. */
export interface ActiveRun {
  record: RunRecord;
  paths: RunPaths;
  command: RunCommand;
  shipper: LogShipper;
  child?: ChildProcess;
  pollTimer?: NodeJS.Timeout;
  timeoutTimer?: NodeJS.Timeout;
  killTimer?: NodeJS.Timeout;
  ending?: Promise<void>;
}

/**
 * What the agent knows about its runs, in memory and in its state file: the runs it holds, the
 * runs it ended, the newest placement per sub-task, the leases attached to it. `save` writes the
 * state file (atomically: StateStore) and is called before a command is acknowledged or an
 * outcome reported.
 */
export class RunBook {
  state!: AgentState;
  ended = new Set<string>();
  newest = new Map<string, { attempt: number; leaseEpoch: number }>();
  readonly runs = new Map<string, ActiveRun>();
  readonly leases = new Map<string, { leaseEpoch: number; gpuIndices: number[] }>();

  constructor(private readonly store: StateStore) {}

  /** Takes the state loaded at start (or a new one) as the book's contents. */
  adopt(state: AgentState): void {
    this.state = state;
    this.ended = new Set(state.ended);
    this.newest = new Map(state.newest.map((p) => [p.subtaskId, { attempt: p.attempt, leaseEpoch: p.leaseEpoch }]));
  }

  load(): ReturnType<StateStore['load']> {
    return this.store.load();
  }

  save(): Promise<void> {
    return this.store.save(this.snapshot());
  }

  rememberPlacement(command: RunCommand): void {
    const current = this.newest.get(command.subtaskId);
    if (current && current.leaseEpoch >= command.leaseEpoch) return;
    this.newest.delete(command.subtaskId);
    this.newest.set(command.subtaskId, { attempt: command.attempt, leaseEpoch: command.leaseEpoch });
    while (this.newest.size > PLACEMENTS_REMEMBERED_MAX) this.newest.delete(this.newest.keys().next().value!);
  }

  rememberEnded(key: string): void {
    this.ended.delete(key);
    this.ended.add(key);
    while (this.ended.size > ENDED_RUNS_REMEMBERED_MAX) this.ended.delete(this.ended.values().next().value!);
  }

  /** What the command decider needs to know (command.decider.ts). */
  commandState(gpuCount: number): CommandState {
    const runs = new Map<string, RunView>();
    for (const run of this.runs.values()) {
      runs.set(run.record.key, {
        key: run.record.key,
        subtaskId: run.command.subtaskId,
        attempt: run.command.attempt,
        leaseEpoch: run.command.leaseEpoch,
        phase: run.record.phase === 'ended' ? 'ended' : run.record.stopRequestedAtMs !== undefined || run.record.timedOutAtMs !== undefined ? 'stopping' : 'running',
      });
    }
    return { gpuCount, runs, ended: this.ended, newest: this.newest };
  }

  /** The runs whose processes are held (for heartbeats). */
  heldRuns(): ActiveRun[] {
    return [...this.runs.values()].filter((run) => run.record.phase !== 'ended' && run.record.pid !== undefined);
  }

  snapshot(): AgentState {
    this.state.runs = [...this.runs.values()].map((run) => run.record);
    this.state.ended = [...this.ended];
    this.state.newest = [...this.newest].map(([subtaskId, p]) => ({ subtaskId, ...p }));
    return this.state;
  }
}
