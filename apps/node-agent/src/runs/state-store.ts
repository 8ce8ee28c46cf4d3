import { open, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { NodeCommand, failureKindSchema } from '@fastgpu/contracts';

/**
 * The agent's state file (`<workRoot>/agent-state.json`): what it runs (with pids, process
 * groups and start times, so a restarted agent finds its processes and not others that reused
 * a pid), the reports it still owes, the runs it has ended, and the newest placement per
 * sub-task (fencing survives a restart). Written atomically (temporary file, fsync, rename,
 * fsync of the directory) before the agent acknowledges a command or reports an outcome, so
 * after a crash the file is never behind what the bus was told.
 */
export const STATE_FILE = 'agent-state.json';
/** Ended runs remembered to refuse a repeated RunSubtask: more than the COMMANDS stream can redeliver in its 24 h. */
export const ENDED_RUNS_REMEMBERED_MAX = 20_000;
/** Sub-tasks whose newest placement is remembered (oldest forgotten first). */
export const PLACEMENTS_REMEMBERED_MAX = 20_000;

const runCommand = z.custom<Extract<NodeCommand, { kind: 'RunSubtask' }>>((value) => {
  const parsed = NodeCommand.safeParse(value);
  return parsed.success && parsed.data.kind === 'RunSubtask' && parsed.data.workload !== undefined;
});

export const RunReportRecord = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('completed'), endedAt: z.string() }),
  z.object({ kind: z.literal('failed'), endedAt: z.string(), exitCode: z.number().int(), fault: z.enum(['user', 'platform']), failureKind: failureKindSchema, reason: z.string() }),
  z.object({ kind: z.literal('none'), endedAt: z.string(), why: z.string() }),
]);
export type RunReportRecord = z.infer<typeof RunReportRecord>;

export const RunRecord = z.object({
  key: z.string(),
  command: runCommand,
  /** `starting`: spawning (a supervisor may exist, see its supervisor.json); `running`: pid known; `ended`: report owed. */
  phase: z.enum(['starting', 'running', 'ended']),
  pid: z.number().int().positive().optional(),
  startTicks: z.number().int().nonnegative().optional(),
  /** Agent wall clock when the run started: its timeout counts from here. */
  startedAtMs: z.number().int().optional(),
  startedAt: z.string().optional(),
  oomKillsAtStart: z.number().int().nonnegative().optional(),
  stopRequestedAtMs: z.number().int().optional(),
  timedOutAtMs: z.number().int().optional(),
  killedAtRestart: z.boolean().optional(),
  sawRestart: z.boolean().optional(),
  report: RunReportRecord.optional(),
  /** The command's trace context: the reports continue the job's trace. */
  traceparent: z.string().max(128).optional(),
});
export type RunRecord = z.infer<typeof RunRecord>;

export const AgentState = z.object({
  version: z.literal(1),
  nodeId: z.string(),
  agentEpoch: z.number().int().nonnegative(),
  /** What the node last registered (model, GPU count, memory, labels: `registeredShape`); a restart that finds another shape registers anew. */
  registered: z.string().optional(),
  bootId: z.string(),
  runs: z.array(RunRecord),
  ended: z.array(z.string()).max(ENDED_RUNS_REMEMBERED_MAX),
  newest: z.array(z.object({ subtaskId: z.string(), attempt: z.number().int().positive(), leaseEpoch: z.number().int().positive() })).max(PLACEMENTS_REMEMBERED_MAX),
});
export type AgentState = z.infer<typeof AgentState>;

export class StateStore {
  private writing: Promise<void> = Promise.resolve();
  readonly path: string;

  constructor(workRoot: string) {
    this.path = join(workRoot, STATE_FILE);
  }

  /** The saved state, undefined when there is none; a file that does not parse is moved aside and reported. */
  async load(): Promise<{ state?: AgentState; problem?: string }> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw error;
    }
    let parsed;
    try {
      parsed = AgentState.safeParse(JSON.parse(text));
    } catch {
      parsed = undefined;
    }
    if (parsed?.success) return { state: parsed.data };
    const aside = `${this.path}.unreadable-${process.pid}`;
    await rename(this.path, aside);
    return { problem: `the state file did not parse and was moved to ${aside}` };
  }

  /** Writes `state` atomically; writes are serialized in call order. */
  save(state: AgentState): Promise<void> {
    const text = JSON.stringify(AgentState.parse(state));
    const write = this.writing.then(() => this.write(text));
    this.writing = write.catch(() => undefined);
    return write;
  }

  private async write(text: string): Promise<void> {
    const temporary = `${this.path}.tmp`;
    const file = await open(temporary, 'w', 0o600);
    try {
      await file.writeFile(text);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, this.path);
    const directory = await open(dirname(this.path), 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }
}
