import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { EventData } from '@fastgpu/contracts';
import { ensureTopology } from '@fastgpu/messaging';
import type { AgentBus, AgentContext, AgentHost, AgentLog, RegisteredGpu } from './agent-context';
import type { AgentConfig } from './agent.config';
import { CommandConsumer } from './commands/command-consumer';
import { GpuSampler } from './gpus/gpu-sampler';
import { gpuModelFromName, queryGpus, type GpuReading } from './gpus/nvidia-smi';
import { XidCounter } from './gpus/xid-reader';
import { Heartbeats } from './heartbeats/heartbeats';
import { RunReports } from './reporting/run-reports';
import { openResultBucket } from './results/result-store';
import { bootId, findOomCounterFile } from './runs/processes';
import { RunBook } from './runs/run-book';
import { RunRecovery } from './runs/run-recovery';
import { RunSupervisor } from './runs/run-supervisor';
import { StateStore } from './runs/state-store';
import { RUNS_FOLDER } from './runs/workspace';

export type { AgentBus } from './agent-context';

/**
 * The real node agent (docs/node-agent.md): the simulator's protocol (docs/node-protocol.md)
 * on a GPU host. It discovers its GPUs with nvidia-smi, registers, sends heartbeats with real
 * samples, and runs each RunSubtask's workload as a real process: a supervisor
 * (runs/supervisor.mjs) leading its own session and process group, the program below it with
 * exactly the placed GPUs visible, its output shipped to the LOGS stream and its result stored
 * in the results bucket. Stops signal the whole group (SIGTERM, a grace period, SIGKILL). What
 * it runs is in a state file, so a restarted agent finds its processes and reports truthfully.
 *
 * This class starts and stops the parts, each in its own file: commands
 * (commands/command-consumer.ts), processes (runs/run-supervisor.ts), restarts
 * (runs/run-recovery.ts), reports (reporting/run-reports.ts), heartbeats (heartbeats/heartbeats.ts),
 * over the runs and state file they share (runs/run-book.ts).
 */
export interface NodeAgentOptions {
  /** Where the agent says what it does (default: console). */
  log?: AgentLog;
}

/** Room left in a log message for its headers (the stream's max_msg_size counts them). */
const LOG_HEADER_BYTES = 1024;
const LOG_CHUNK_BYTES_MIN = 256;

export class NodeAgent {
  private readonly book: RunBook;
  private readonly host: AgentHost = { gpus: [], gpuModel: '', gpuMemoryGb: 0, logChunkBytesMax: 0 };
  private readonly context: AgentContext;
  private readonly reports: RunReports;
  private readonly supervisor: RunSupervisor;
  private readonly recovery: RunRecovery;
  private readonly commands: CommandConsumer;
  private heartbeats?: Heartbeats;
  /** XID errors per GPU since the agent started, from the kernel log (absent from heartbeats when unreadable). */
  private xids?: XidCounter;
  private closed = false;
  private readonly log: AgentLog;

  constructor(
    private readonly bus: AgentBus,
    private readonly config: AgentConfig,
    options: NodeAgentOptions = {},
  ) {
    this.book = new RunBook(new StateStore(resolve(config.workRoot)));
    this.log = options.log ?? ((level, message) => console[level](`[node-agent ${config.nodeId}] ${message}`));
    this.context = { bus, config, host: this.host, book: this.book, log: this.log, closed: () => this.closed };
    this.reports = new RunReports(this.context);
    this.supervisor = new RunSupervisor(this.context, this.reports);
    this.recovery = new RunRecovery(this.context, this.supervisor);
    this.commands = new CommandConsumer(this.context, this.supervisor, this.reports);
  }

  get agentEpoch(): number {
    return this.book.state.agentEpoch;
  }

  /** Keys (`subtaskId#attempt`) of the runs whose processes this agent holds. */
  get runningKeys(): string[] {
    return [...this.book.runs.values()].filter((run) => run.record.phase !== 'ended').map((run) => run.record.key);
  }

  /** The process group of a run (its supervisor's pid), for operators and tests. */
  processGroupOf(key: string): number | undefined {
    return this.book.runs.get(key)?.record.pid;
  }

  get registeredGpus(): ReadonlyArray<RegisteredGpu> {
    return this.host.gpus;
  }

  /** "gpu-17 (8× h100)": what it registered, for start-up banners. */
  get summary(): string {
    return `${this.config.nodeId} (${this.host.gpus.length}× ${this.host.gpuModel})`;
  }

  async start(): Promise<void> {
    if ((this.config.runUid !== undefined || this.config.runGid !== undefined) && process.getuid?.() !== 0) {
      throw new Error('FASTGPU_AGENT_RUN_UID/GID need the agent to run as root (it switches user for each run)');
    }
    const workRoot = resolve(this.config.workRoot);
    await mkdir(join(workRoot, RUNS_FOLDER), { recursive: true, mode: 0o711 });
    const discovered = await this.discoverGpus();
    this.xids = new XidCounter(this.config.kmsg, this.log, (xid) => this.log('warn', `XID ${xid.xid} on the GPU at PCI ${xid.pciBusId}: ${xid.detail}`));
    await this.xids.start();
    this.host.oomCounterFile = this.config.oomCounterFile ?? (await findOomCounterFile());
    if (!this.host.oomCounterFile) this.log('warn', 'no memory cgroup oom_kill counter found: an OOM kill is reported as a SIGKILL not sent by the agent');
    await this.prepareOutputs();

    const loaded = await this.book.load();
    if (loaded.problem) this.log('error', loaded.problem);
    const boot = await bootId();
    const previous = loaded.state;
    if (previous && previous.nodeId !== this.config.nodeId) throw new Error(`the work root belongs to node ${previous.nodeId}, not ${this.config.nodeId}`);
    this.book.adopt(previous ?? { version: 1, nodeId: this.config.nodeId, agentEpoch: 0, bootId: boot, runs: [], ended: [], newest: [] });
    const state = this.book.state;
    const sameBoot = state.bootId === boot;
    state.bootId = boot;

    const adopted = await this.recovery.recoverRuns(sameBoot);
    await this.recovery.killOrphans();
    await this.commands.start();
    // A new epoch tells the scheduler the node lost everything it ran. With its state file the
    // agent knows every run it accepted and reports each one truthfully (adopted, ended as it
    // ended, or agent-restart), so it keeps its epoch: a new one would also interrupt the retries
    // the scheduler placed here after those reports, and end the node's leases. Only an agent
    // without state (first start, or the file lost) registers a new epoch, after what it owes.
    // A host that comes back with other GPUs or labels (and nothing running) registers anew too.
    if (state.agentEpoch === 0 || (adopted === 0 && state.registered !== this.registeredShape())) {
      await this.recovery.awaitRecoveredEndings();
      await this.register();
    } else if (adopted === 0) {
      this.log('info', `restarted with agent epoch ${state.agentEpoch} (no run survived; each is reported as it ended)`);
    }
    const sampler = new GpuSampler({ nvidiaSmi: this.config.nvidiaSmi, timeoutMs: this.config.nvidiaSmiTimeoutMs, intervalMs: this.config.heartbeatIntervalMs, log: this.log }, discovered);
    this.heartbeats = new Heartbeats(this.context, sampler, this.xids);
    this.heartbeats.start();
  }

  /** Stops reading commands and beating; runs go on (a restarted agent adopts them). */
  async stop(): Promise<void> {
    this.closed = true;
    this.heartbeats?.stop();
    await this.xids?.close();
    await this.commands.close();
    for (const run of this.book.runs.values()) {
      for (const timer of [run.pollTimer, run.timeoutTimer, run.killTimer]) if (timer) clearTimeout(timer);
      run.child?.removeAllListeners('exit');
      await run.shipper.close();
    }
    await this.book.save().catch((error: Error) => this.log('error', `could not save state: ${error.message}`));
  }

  private async discoverGpus(): Promise<GpuReading[]> {
    const readings = await queryGpus(this.config.nvidiaSmi, this.config.nvidiaSmiTimeoutMs);
    if (readings.length === 0) throw new Error(`${this.config.nvidiaSmi} lists no GPU`);
    const names = new Set(readings.map((r) => r.name));
    if (names.size > 1) throw new Error(`this host mixes GPU models (${[...names].join(', ')}); a node has one model`);
    this.host.gpus = readings.map((r) => ({ uuid: r.uuid, name: r.name }));
    this.host.gpuModel = this.config.gpuModel ?? gpuModelFromName(readings[0]!.name);
    // Rounded up: heartbeats may report up to the whole memory, which must fit what was registered.
    this.host.gpuMemoryGb = Math.ceil(Math.max(...readings.map((r) => r.memoryTotalMib)) / 1024);
    return readings;
  }

  private async prepareOutputs(): Promise<void> {
    const { jsm, topology } = this.bus;
    if (this.config.manageStreams) {
      await ensureTopology(jsm, topology, { logs: { messageBytesMax: this.config.logsMessageBytesMax, maxAgeMs: this.config.logsMaxAgeMs, streamBytesMax: this.config.logsStreamBytesMax } });
    }
    let streamMessageMax = this.config.logsMessageBytesMax;
    try {
      const info = await jsm.streams.info(topology.streams.logs);
      if (info.config.max_msg_size > 0) streamMessageMax = Math.min(streamMessageMax, info.config.max_msg_size);
    } catch (error) {
      this.log('warn', `cannot read the LOGS stream's limits (${(error as Error).message}); chunks stay below ${streamMessageMax} bytes`);
    }
    this.host.logChunkBytesMax = Math.max(LOG_CHUNK_BYTES_MIN, streamMessageMax - LOG_HEADER_BYTES);
    try {
      this.host.results = await openResultBucket(this.bus.nc, topology, { create: this.config.manageStreams, limits: { maxAgeMs: this.config.resultsMaxAgeMs, bucketBytesMax: this.config.resultsBucketBytesMax } });
    } catch (error) {
      this.log('error', `results bucket ${topology.buckets.results} unavailable (${(error as Error).message}); results cannot be stored`);
    }
  }

  /** What a registration says about this node, as one comparable string. */
  private registeredShape(): string {
    return JSON.stringify([this.host.gpuModel, this.host.gpus.length, this.host.gpuMemoryGb, Object.entries(this.config.labels).sort()]);
  }

  private async register(): Promise<void> {
    const state = this.book.state;
    state.agentEpoch = Math.max(state.agentEpoch + 1, Math.floor(Date.now() / 1000));
    state.registered = this.registeredShape();
    await this.book.save();
    const data: EventData<'NodeRegistered'> = {
      nodeId: this.config.nodeId,
      gpuModel: this.host.gpuModel,
      gpuCount: this.host.gpus.length,
      gpuMemoryGb: this.host.gpuMemoryGb,
      labels: this.config.labels,
      agentEpoch: state.agentEpoch,
      registeredAt: new Date().toISOString(),
    };
    await this.reports.registered(data);
    this.log('info', `registered: ${this.host.gpus.length} × ${this.host.gpuModel} (${this.host.gpuMemoryGb} GB), agent epoch ${state.agentEpoch}`);
  }
}
