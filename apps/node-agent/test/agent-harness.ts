import { appendFile, chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeEvent, newEventId, type DomainEvent, type EventType, type NodeCommand, type Workload } from '@fastgpu/contracts';
import { connectBus, StreamFollower, type Bus } from '@fastgpu/messaging';
import { eventually, type TestEnvironment } from '@fastgpu/testing';
import { agentConfigSchema, type AgentConfig } from '../src/agent.config';
import { NVIDIA_SMI_ARGS } from '../src/gpus/nvidia-smi';
import { NodeAgent } from '../src/node-agent';

/**
 * What the node agent's tests share: a host with a stand-in `nvidia-smi` on PATH (a script that
 * prints the real command's CSV for a few GPUs, from a file the test rewrites — the only stand-in;
 * and a kernel log file the agent follows for XIDs, to which tests append the driver's lines),
 * agents on their own NATS connections (a restart is a new agent on a new connection), commands
 * published to the agent's subject as the scheduler would, and a tail of the domain log.
 */
export const GPU_UUIDS = ['GPU-0a1b2c3d-0000-4000-8000-000000000000', 'GPU-0a1b2c3d-1111-4111-8111-111111111111', 'GPU-0a1b2c3d-2222-4222-8222-222222222222', 'GPU-0a1b2c3d-3333-4333-8333-333333333333'];

/** The GPUs' PCI addresses as nvidia-smi prints them (`pci.bus_id`); the kernel log writes `0000:07:00`. */
export const GPU_PCI_BUS_IDS = ['00000000:07:00.0', '00000000:0F:00.0', '00000000:47:00.0', '00000000:4E:00.0'];

export interface GpuRow {
  utilization?: number | string;
  memoryUsed?: number | string;
  temperature?: number | string;
  ecc?: number | string;
}

export class FakeHost {
  private constructor(
    readonly root: string,
    readonly binDir: string,
  ) {}

  /** A temporary host: its bin directory goes first on this process's PATH (the agent runs `nvidia-smi` from PATH). */
  static async create(): Promise<FakeHost> {
    const root = await mkdtemp(join(tmpdir(), 'fastgpu-agent-'));
    // Runs may switch to an unprivileged user, who must be able to pass through to its directory.
    await chmod(root, 0o711);
    const binDir = join(root, 'bin');
    await mkdir(binDir);
    const script = [
      '#!/bin/sh',
      '# Stand-in for nvidia-smi on a host without GPUs: the real output format, for the agent\'s exact query.',
      `[ "$1" = "${NVIDIA_SMI_ARGS[0]}" ] && [ "$2" = "${NVIDIA_SMI_ARGS[1]}" ] && [ "$#" = 2 ] || { echo "unexpected arguments: $*" >&2; exit 2; }`,
      '# While the hang file exists it hangs as nvidia-smi does on a GPU stuck in the driver: deaf to SIGTERM, until SIGKILL.',
      `trap '' TERM; while [ -e "${join(binDir, 'hang')}" ]; do sleep 0.05; done`,
      `cat "${join(binDir, 'gpus.csv')}"`,
      '',
    ].join('\n');
    await writeFile(join(binDir, 'nvidia-smi'), script, { mode: 0o755 });
    process.env.PATH = `${binDir}:${process.env.PATH ?? ''}`;
    const host = new FakeHost(root, binDir);
    await host.setGpus([{}, {}, {}, {}]);
    await writeFile(host.kernelLog, '');
    return host;
  }

  /** Rewrites what nvidia-smi prints: one A100 80 GB line per row. */
  async setGpus(rows: GpuRow[]): Promise<void> {
    const lines = rows.map((row, index) => [index, GPU_UUIDS[index], 'NVIDIA A100-SXM4-80GB', 81920, row.utilization ?? 0, row.memoryUsed ?? 1, row.temperature ?? 35, row.ecc ?? 0, GPU_PCI_BUS_IDS[index]].join(', '));
    await writeFile(join(this.binDir, 'gpus.csv'), `${lines.join('\n')}\n`);
  }

  /** Makes nvidia-smi hang (ignoring SIGTERM, killed only by SIGKILL) from its next start, or answer again. */
  async hangNvidiaSmi(hang: boolean): Promise<void> {
    if (hang) await writeFile(join(this.binDir, 'hang'), '');
    else await rm(join(this.binDir, 'hang'), { force: true });
  }

  /** The pids of this host's nvidia-smi processes alive now (zombies excluded). */
  async nvidiaSmiProcesses(): Promise<number[]> {
    const pids: number[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(join(this.binDir, 'nvidia-smi')) && (await processRuns(Number(entry)))) pids.push(Number(entry));
    }
    return pids;
  }

  /** The kernel log the host's agents follow for XIDs (FASTGPU_AGENT_KMSG), empty at first. */
  get kernelLog(): string {
    return join(this.root, 'kern.log');
  }

  /** Appends lines to the kernel log, as the kernel (through a syslog daemon) would. */
  async appendKernelLog(lines: string[]): Promise<void> {
    await appendFile(this.kernelLog, lines.map((line) => `${line}\n`).join(''));
  }

  /**
   * Kills every run still going under this host (a failed test may leave one: runs outlive their
   * agent by design), found by its supervisor's command line, then removes the host's files.
   */
  async cleanup(): Promise<void> {
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes('supervisor.mjs') && cmdline.includes(this.root)) {
        try {
          process.kill(-Number(entry), 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    process.env.PATH = (process.env.PATH ?? '').split(':').filter((dir) => dir !== this.binDir).join(':');
    await rm(this.root, { recursive: true, force: true, maxRetries: 3 });
  }

  async directory(name: string): Promise<string> {
    const path = join(this.root, name);
    await mkdir(path, { recursive: true, mode: 0o777 });
    await chmod(path, 0o777);
    return path;
  }
}

export function agentConfig(env: TestEnvironment, host: FakeHost, overrides: Partial<AgentConfig> = {}): AgentConfig {
  return agentConfigSchema.parse({
    natsUrl: env.config.natsUrl,
    subjectPrefix: env.config.subjectPrefix,
    nodeId: 'gpu-host-1',
    workRoot: join(host.root, 'work'),
    heartbeatIntervalMs: 200,
    stopGraceMs: 500,
    logPollMs: 50,
    logPartialFlushMs: 200,
    kmsg: host.kernelLog,
    ...overrides,
  });
}

export interface RunningAgent {
  agent: NodeAgent;
  bus: Bus;
  logs: string[];
  stop(): Promise<void>;
}

/** Starts an agent on its own connection, as its own process would. */
export async function startAgent(env: TestEnvironment, config: AgentConfig): Promise<RunningAgent> {
  const bus = await connectBus({ natsUrl: env.config.natsUrl, subjectPrefix: env.config.subjectPrefix, name: `agent-${config.nodeId}`, ensureStreams: false });
  const logs: string[] = [];
  const agent = new NodeAgent(bus, config, { log: (level, message) => logs.push(`${level}: ${message}`) });
  await agent.start();
  return {
    agent,
    bus,
    logs,
    stop: async () => {
      await agent.stop();
      await bus.close();
    },
  };
}

export type RunCommand = Extract<NodeCommand, { kind: 'RunSubtask' }>;

/** A RunSubtask for `node -e <script>` with a workload; ids unique per call. */
export function runCommand(options: { subtaskId: string; script: string; attempt?: number; leaseEpoch?: number; gpuIndices?: number[]; jobId?: string; tenantId?: string; workload?: Partial<Workload> }): RunCommand {
  return {
    kind: 'RunSubtask',
    commandId: newEventId(),
    jobId: options.jobId ?? 'job-agent',
    tenantId: options.tenantId ?? 'acme',
    subtaskId: options.subtaskId,
    attempt: options.attempt ?? 1,
    leaseEpoch: options.leaseEpoch ?? 1,
    gpuIndices: options.gpuIndices ?? [0],
    runtimeMs: 60_000,
    workload: { command: ['node', '-e', options.script], timeoutMs: 60_000, subtaskIndex: 0, subtaskCount: 1, resultPath: 'result.out', resultBytesMax: 1_000_000, ...options.workload },
    issuedAt: new Date().toISOString(),
  };
}

export function stopCommand(command: RunCommand, reason = 'preempted'): NodeCommand {
  return { kind: 'StopSubtask', commandId: newEventId(), subtaskId: command.subtaskId, attempt: command.attempt, leaseEpoch: command.leaseEpoch, reason, issuedAt: new Date().toISOString() };
}

export async function send(env: TestEnvironment, nodeId: string, command: NodeCommand): Promise<void> {
  await env.bus.js.publish(env.bus.topology.subjects.command(nodeId), JSON.stringify(command), { msgID: command.commandId });
}

/** Whether a process still runs (a zombie is not running). */
export async function processRuns(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The domain log as it grows. */
export class EventTail {
  readonly events: DomainEvent[] = [];
  private readonly follower: StreamFollower;

  constructor(bus: Bus) {
    this.follower = new StreamFollower(bus, {
      stream: bus.topology.streams.events,
      fromSequence: 1,
      onBatch: async (messages) => {
        for (const m of messages) {
          const decoded = decodeEvent(m.data);
          if (decoded.ok) this.events.push(decoded.event);
        }
      },
    });
  }

  start(): Promise<void> {
    return this.follower.start();
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }

  all<T extends EventType>(type: T, where: (event: DomainEvent<T>) => boolean = () => true): Array<DomainEvent<T>> {
    const out: Array<DomainEvent<T>> = [];
    for (const event of this.events) if (event.type === type && where(event as DomainEvent<T>)) out.push(event as DomainEvent<T>);
    return out;
  }

  waitFor<T extends EventType>(type: T, where: (event: DomainEvent<T>) => boolean = () => true, timeoutMs = 20_000): Promise<DomainEvent<T>> {
    return eventually(() => this.all(type, where)[0], { timeoutMs, message: `no ${type} in the log` });
  }

  /** Reports about one attempt of a sub-task. */
  reports(subtaskId: string, attempt?: number): DomainEvent[] {
    return this.events.filter((event) => {
      const data = event.data as { subtaskId?: string; attempt?: number };
      return ['SubtaskStarted', 'SubtaskCompleted', 'SubtaskFailed'].includes(event.type) && data.subtaskId === subtaskId && (attempt === undefined || data.attempt === attempt);
    });
  }
}
