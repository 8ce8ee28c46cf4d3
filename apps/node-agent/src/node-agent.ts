import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, open, readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { deriveId, Heartbeat, NodeCommand, type EventData, type Topology } from '@fastgpu/contracts';
import { ensureTopology, EventPublisher } from '@fastgpu/messaging';
import type { AgentConfig } from './agent.config';
import { gpuModelFromName, queryGpus, type GpuReading } from './gpus/nvidia-smi';
import { XidCounter } from './gpus/xid-reader';
import { LogShipper } from './logs/log-shipper';
import { openResultBucket, storeResult } from './results/result-store';
import { decideCommand, runKey, type CommandState, type RunCommand, type RunView } from './runs/command.decider';
import { bootId, findOomCounterFile, groupMembers, processAlive, processStartTicks, readOomKills, signalGroup } from './runs/processes';
import { classifyRunEnd, exitCodeOf, type ProcessEnd, type ResultCheck } from './runs/run-outcome';
import { ENDED_RUNS_REMEMBERED_MAX, PLACEMENTS_REMEMBERED_MAX, StateStore, type AgentState, type RunRecord } from './runs/state-store';
import { openResult, prepareRunDirectories, readSecret, removeRunDirectory, RUNS_FOLDER, runPaths, type RunPaths } from './runs/workspace';

/**
 * The real node agent (docs/node-agent.md): the simulator's protocol (docs/node-protocol.md)
 * on a GPU host. It discovers its GPUs with nvidia-smi, registers, sends heartbeats with real
 * samples, and runs each RunSubtask's workload as a real process: a supervisor
 * (runs/supervisor.mjs) leading its own session and process group, the program below it with
 * exactly the placed GPUs visible, its output shipped to the LOGS stream and its result stored
 * in the results bucket. Stops signal the whole group (SIGTERM, a grace period, SIGKILL). What
 * it runs is in a state file, so a restarted agent finds its processes and reports truthfully.
 */
export interface AgentBus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  topology: Topology;
}

export interface NodeAgentOptions {
  /** Where the agent says what it does (default: console). */
  log?(level: 'info' | 'warn' | 'error', message: string): void;
}

const SUPERVISOR = fileURLToPath(new URL('./runs/supervisor.mjs', import.meta.url));
/** Room left in a log message for its headers (the stream's max_msg_size counts them). */
const LOG_HEADER_BYTES = 1024;
const LOG_CHUNK_BYTES_MIN = 256;
/** How often a run the agent did not spawn (adopted after a restart) is checked. */
const ADOPTED_POLL_MS = 200;
/** How often a process group being emptied is checked, and how long a SIGKILL may take. */
const GROUP_POLL_MS = 50;
const GROUP_KILL_WAIT_MS = 5000;
/** Retries of a report or a result upload while NATS is unreachable, and the wait between them. */
const PUBLISH_ATTEMPTS_MAX = 10;
const PUBLISH_RETRY_MS = 1000;
const RESULT_ATTEMPTS_MAX = 3;
const SUPERVISOR_START_TIMEOUT_MS = 10_000;
const COMMAND_DELIVERIES_MAX = 10;
const COMMAND_ACK_WAIT_NS = 30_000_000_000;

interface ActiveRun {
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

interface RegisteredGpu {
  uuid: string;
  name: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class NodeAgent {
  private readonly publisher: EventPublisher;
  private readonly store: StateStore;
  private state!: AgentState;
  private ended = new Set<string>();
  private newest = new Map<string, { attempt: number; leaseEpoch: number }>();
  private readonly runs = new Map<string, ActiveRun>();
  private readonly leases = new Map<string, { leaseEpoch: number; gpuIndices: number[] }>();
  private gpus: RegisteredGpu[] = [];
  private gpuModel = '';
  private gpuMemoryGb = 0;
  private oomCounterFile?: string;
  private results?: ObjectStore;
  private logChunkBytesMax = 0;
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;
  private heartbeatTimer?: NodeJS.Timeout;
  /** XID errors per GPU since the agent started, from the kernel log (absent from heartbeats when unreadable). */
  private xids?: XidCounter;
  private closed = false;
  private readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;

  constructor(
    private readonly bus: AgentBus,
    private readonly config: AgentConfig,
    options: NodeAgentOptions = {},
  ) {
    this.publisher = new EventPublisher(bus.js, bus.topology, `fastgpu/node-agent/${config.nodeId}`);
    this.store = new StateStore(resolve(config.workRoot));
    this.log = options.log ?? ((level, message) => console[level](`[node-agent ${config.nodeId}] ${message}`));
  }

  get agentEpoch(): number {
    return this.state.agentEpoch;
  }

  /** Keys (`subtaskId#attempt`) of the runs whose processes this agent holds. */
  get runningKeys(): string[] {
    return [...this.runs.values()].filter((run) => run.record.phase !== 'ended').map((run) => run.record.key);
  }

  /** The process group of a run (its supervisor's pid), for operators and tests. */
  processGroupOf(key: string): number | undefined {
    return this.runs.get(key)?.record.pid;
  }

  get registeredGpus(): ReadonlyArray<RegisteredGpu> {
    return this.gpus;
  }

  /** "gpu-17 (8× h100)": what it registered, for start-up banners. */
  get summary(): string {
    return `${this.config.nodeId} (${this.gpus.length}× ${this.gpuModel})`;
  }

  // ------------------------------------------------------------------ start and stop

  async start(): Promise<void> {
    if ((this.config.runUid !== undefined || this.config.runGid !== undefined) && process.getuid?.() !== 0) {
      throw new Error('FASTGPU_AGENT_RUN_UID/GID need the agent to run as root (it switches user for each run)');
    }
    const workRoot = resolve(this.config.workRoot);
    await mkdir(join(workRoot, RUNS_FOLDER), { recursive: true, mode: 0o711 });
    await this.discoverGpus();
    this.xids = new XidCounter(this.config.kmsg, this.log, (xid) => this.log('warn', `XID ${xid.xid} on the GPU at PCI ${xid.pciBusId}: ${xid.detail}`));
    await this.xids.start();
    this.oomCounterFile = this.config.oomCounterFile ?? (await findOomCounterFile());
    if (!this.oomCounterFile) this.log('warn', 'no memory cgroup oom_kill counter found: an OOM kill is reported as a SIGKILL not sent by the agent');
    await this.prepareOutputs();

    const loaded = await this.store.load();
    if (loaded.problem) this.log('error', loaded.problem);
    const boot = await bootId();
    const previous = loaded.state;
    if (previous && previous.nodeId !== this.config.nodeId) throw new Error(`the work root belongs to node ${previous.nodeId}, not ${this.config.nodeId}`);
    this.state = previous ?? { version: 1, nodeId: this.config.nodeId, agentEpoch: 0, bootId: boot, runs: [], ended: [], newest: [] };
    this.ended = new Set(this.state.ended);
    this.newest = new Map(this.state.newest.map((p) => [p.subtaskId, { attempt: p.attempt, leaseEpoch: p.leaseEpoch }]));
    const sameBoot = this.state.bootId === boot;
    this.state.bootId = boot;

    const adopted = await this.recoverRuns(sameBoot);
    await this.killOrphans();
    await this.startCommands();
    // A new epoch tells the scheduler the node lost everything it ran. With its state file the
    // agent knows every run it accepted and reports each one truthfully (adopted, ended as it
    // ended, or agent-restart), so it keeps its epoch: a new one would also interrupt the retries
    // the scheduler placed here after those reports, and end the node's leases. Only an agent
    // without state (first start, or the file lost) registers a new epoch, after what it owes.
    // A host that comes back with other GPUs or labels (and nothing running) registers anew too.
    if (this.state.agentEpoch === 0 || (adopted === 0 && this.state.registered !== this.registeredShape())) {
      await this.awaitRecoveredEndings();
      await this.register();
    } else if (adopted === 0) {
      this.log('info', `restarted with agent epoch ${this.state.agentEpoch} (no run survived; each is reported as it ended)`);
    }
    this.scheduleHeartbeat(0);
  }

  /** Stops reading commands and beating; runs go on (a restarted agent adopts them). */
  async stop(): Promise<void> {
    this.closed = true;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    await this.xids?.close();
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
    for (const run of this.runs.values()) {
      for (const timer of [run.pollTimer, run.timeoutTimer, run.killTimer]) if (timer) clearTimeout(timer);
      run.child?.removeAllListeners('exit');
      await run.shipper.close();
    }
    await this.store.save(this.snapshot()).catch((error: Error) => this.log('error', `could not save state: ${error.message}`));
  }

  private async discoverGpus(): Promise<void> {
    const readings = await queryGpus(this.config.nvidiaSmi, this.config.nvidiaSmiTimeoutMs);
    if (readings.length === 0) throw new Error(`${this.config.nvidiaSmi} lists no GPU`);
    const names = new Set(readings.map((r) => r.name));
    if (names.size > 1) throw new Error(`this host mixes GPU models (${[...names].join(', ')}); a node has one model`);
    this.gpus = readings.map((r) => ({ uuid: r.uuid, name: r.name }));
    this.gpuModel = this.config.gpuModel ?? gpuModelFromName(readings[0]!.name);
    // Rounded up: heartbeats may report up to the whole memory, which must fit what was registered.
    this.gpuMemoryGb = Math.ceil(Math.max(...readings.map((r) => r.memoryTotalMib)) / 1024);
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
    this.logChunkBytesMax = Math.max(LOG_CHUNK_BYTES_MIN, streamMessageMax - LOG_HEADER_BYTES);
    try {
      this.results = await openResultBucket(this.bus.nc, topology, { create: this.config.manageStreams, limits: { maxAgeMs: this.config.resultsMaxAgeMs, bucketBytesMax: this.config.resultsBucketBytesMax } });
    } catch (error) {
      this.log('error', `results bucket ${topology.buckets.results} unavailable (${(error as Error).message}); results cannot be stored`);
    }
  }

  /** What a registration says about this node, as one comparable string. */
  private registeredShape(): string {
    return JSON.stringify([this.gpuModel, this.gpus.length, this.gpuMemoryGb, Object.entries(this.config.labels).sort()]);
  }

  private async register(): Promise<void> {
    this.state.agentEpoch = Math.max(this.state.agentEpoch + 1, Math.floor(Date.now() / 1000));
    this.state.registered = this.registeredShape();
    await this.store.save(this.snapshot());
    const time = new Date().toISOString();
    const data: EventData<'NodeRegistered'> = {
      nodeId: this.config.nodeId,
      gpuModel: this.gpuModel,
      gpuCount: this.gpus.length,
      gpuMemoryGb: this.gpuMemoryGb,
      labels: this.config.labels,
      agentEpoch: this.state.agentEpoch,
      registeredAt: time,
    };
    const id = deriveId(deriveId('00000000-0000-7000-8000-000000000000', this.config.nodeId), `registered:${this.state.agentEpoch}`);
    await this.publishWithRetry(() => this.publisher.publish(this.publisher.build('NodeRegistered', data, { id, time, tenantId: null, correlationId: this.config.nodeId })));
    this.log('info', `registered: ${this.gpus.length} × ${this.gpuModel} (${this.gpuMemoryGb} GB), agent epoch ${this.state.agentEpoch}`);
  }

  private async startCommands(): Promise<void> {
    const durable = `node-${this.config.nodeId}`;
    const stream = this.bus.topology.streams.commands;
    const subject = this.bus.topology.subjects.command(this.config.nodeId);
    let info;
    try {
      info = await this.bus.jsm.consumers.info(stream, durable);
    } catch (error) {
      if (!/consumer not found/i.test((error as Error).message)) throw error;
      // A new consumer starts at new commands: a re-created node id must not replay a day of old ones.
      info = await this.bus.jsm.consumers.add(stream, { durable_name: durable, filter_subject: subject, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New, max_deliver: COMMAND_DELIVERIES_MAX, ack_wait: COMMAND_ACK_WAIT_NS });
    }
    if (info.config.filter_subject !== subject || info.config.ack_policy !== AckPolicy.Explicit) throw new Error(`node consumer ${durable} has filter ${info.config.filter_subject} and ack policy ${info.config.ack_policy}`);
    const consumer = await this.bus.js.consumers.get(stream, durable);
    this.messages = await consumer.consume({ max_messages: 16 });
    const messages = this.messages;
    this.loop = (async () => {
      for await (const m of messages) {
        try {
          await this.onCommand(m);
        } catch (error) {
          // Not acknowledged: redelivered after ack_wait (a repeat is recognised by the state file).
          this.log('error', `command ${m.seq} failed: ${(error as Error).message}`);
        }
      }
    })();
  }

  // ------------------------------------------------------------------ commands

  private commandState(): CommandState {
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
    return { gpuCount: this.gpus.length, runs, ended: this.ended, newest: this.newest };
  }

  private async onCommand(m: JsMsg): Promise<void> {
    if (this.closed) return;
    let body: unknown;
    try {
      body = m.json();
    } catch {
      body = undefined;
    }
    const parsed = NodeCommand.safeParse(body);
    if (!parsed.success) {
      this.log('warn', `command ${m.seq} refused: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
      m.term('invalid command');
      return;
    }
    const decision = decideCommand(this.commandState(), parsed.data);
    const traceparent = m.headers?.get('traceparent') || undefined;
    switch (decision.kind) {
      case 'start':
        for (const key of decision.stopFirst) {
          const older = this.runs.get(key);
          if (older) await this.requestStop(older, `superseded by epoch ${decision.command.leaseEpoch}`);
        }
        await this.startRun(decision.command, traceparent);
        break;
      case 'resend-started': {
        const run = this.runs.get(decision.key);
        if (run) await this.publishStarted(run);
        break;
      }
      case 'refuse':
        this.log('warn', `refused ${decision.command.subtaskId} attempt ${decision.command.attempt}: ${decision.reason}`);
        this.rememberPlacement(decision.command);
        this.rememberEnded(runKey(decision.command.subtaskId, decision.command.attempt));
        await this.store.save(this.snapshot());
        await this.publishEnded(decision.command, { kind: 'failed', exitCode: -1, fault: 'platform', failureKind: 'agent', reason: decision.reason, endedAt: new Date().toISOString() }, traceparent);
        break;
      case 'stop': {
        const run = this.runs.get(decision.key);
        if (run) await this.requestStop(run, 'StopSubtask');
        break;
      }
      case 'forget':
        this.rememberEnded(decision.key);
        await this.store.save(this.snapshot());
        this.log('info', decision.reason);
        break;
      case 'ignore':
        this.log('info', `ignored: ${decision.reason}`);
        break;
      case 'attach-lease': {
        const current = this.leases.get(decision.leaseId);
        if (!current || current.leaseEpoch < decision.leaseEpoch) this.leases.set(decision.leaseId, { leaseEpoch: decision.leaseEpoch, gpuIndices: decision.gpuIndices });
        break;
      }
      case 'detach-lease':
        if (this.leases.get(decision.leaseId)?.leaseEpoch === decision.leaseEpoch) this.leases.delete(decision.leaseId);
        break;
      default: {
        const unreachable: never = decision;
        throw new Error(`unknown decision ${JSON.stringify(unreachable)}`);
      }
    }
    m.ack();
  }

  private rememberPlacement(command: RunCommand): void {
    const current = this.newest.get(command.subtaskId);
    if (current && current.leaseEpoch >= command.leaseEpoch) return;
    this.newest.delete(command.subtaskId);
    this.newest.set(command.subtaskId, { attempt: command.attempt, leaseEpoch: command.leaseEpoch });
    while (this.newest.size > PLACEMENTS_REMEMBERED_MAX) this.newest.delete(this.newest.keys().next().value!);
  }

  private rememberEnded(key: string): void {
    this.ended.delete(key);
    this.ended.add(key);
    while (this.ended.size > ENDED_RUNS_REMEMBERED_MAX) this.ended.delete(this.ended.values().next().value!);
  }

  private snapshot(): AgentState {
    this.state.runs = [...this.runs.values()].map((run) => run.record);
    this.state.ended = [...this.ended];
    this.state.newest = [...this.newest].map(([subtaskId, p]) => ({ subtaskId, ...p }));
    return this.state;
  }

  // ------------------------------------------------------------------ running

  private newRun(record: RunRecord): ActiveRun {
    const command = record.command;
    const workload = command.workload!;
    const paths = runPaths(this.config.workRoot, command.subtaskId, command.attempt, workload);
    const subject = this.bus.topology.subjects.logs(command.tenantId, command.jobId, workload.subtaskIndex, command.attempt);
    const shipper = new LogShipper(
      this.bus.js,
      subject,
      command.commandId,
      { stdout: paths.stdoutFile, stderr: paths.stderrFile },
      { chunkBytesMax: this.logChunkBytesMax, attemptBytesMax: this.config.logAttemptBytesMax, pollMs: this.config.logPollMs, partialFlushMs: this.config.logPartialFlushMs },
      (error) => this.log('warn', `logs of ${record.key}: ${error.message}`),
    );
    const run: ActiveRun = { record, paths, command, shipper };
    this.runs.set(record.key, run);
    return run;
  }

  private async runEnvironment(command: RunCommand, paths: RunPaths): Promise<Record<string, string>> {
    const workload = command.workload!;
    const secrets: Record<string, string> = {};
    for (const secret of workload.secrets ?? []) secrets[secret.env] = await readSecret(this.config.secretsDir, command.tenantId, secret.secret);
    const uuids = command.gpuIndices.map((index) => this.gpus[index]!.uuid).join(',');
    return {
      PATH: this.config.runPath,
      HOME: paths.workDir,
      ...workload.env,
      ...secrets,
      CUDA_VISIBLE_DEVICES: uuids,
      NVIDIA_VISIBLE_DEVICES: uuids,
      FASTGPU_JOB_ID: command.jobId,
      FASTGPU_SUBTASK_ID: command.subtaskId,
      FASTGPU_ATTEMPT: String(command.attempt),
      FASTGPU_SUBTASK_INDEX: String(workload.subtaskIndex),
      FASTGPU_SUBTASK_COUNT: String(workload.subtaskCount),
      JOB_COMPLETION_INDEX: String(workload.subtaskIndex),
      FASTGPU_RESULT_PATH: paths.resultFile,
      ...(workload.input === undefined ? {} : { FASTGPU_INPUT: workload.input }),
    };
  }

  private async startRun(command: RunCommand, traceparent: string | undefined): Promise<void> {
    const key = runKey(command.subtaskId, command.attempt);
    this.rememberPlacement(command);
    // Recorded before anything is spawned: a crash from here on leaves a trace to follow.
    const record: RunRecord = { key, command, phase: 'starting', ...(traceparent ? { traceparent } : {}) };
    const run = this.newRun(record);
    await this.store.save(this.snapshot());
    let child: ChildProcess | undefined;
    let exited: Promise<void> | undefined;
    try {
      await removeRunDirectory(run.paths.runDir);
      await prepareRunDirectories(run.paths, { uid: this.config.runUid, gid: this.config.runGid });
      const env = await this.runEnvironment(command, run.paths);
      const workload = command.workload!;
      const stdout = await open(run.paths.stdoutFile, 'a', 0o600);
      const stderr = await open(run.paths.stderrFile, 'a', 0o600);
      try {
        child = spawn(process.execPath, [SUPERVISOR, run.paths.runDir], { detached: true, cwd: run.paths.runDir, env: {}, stdio: ['pipe', stdout.fd, stderr.fd] });
        await new Promise<void>((resolveSpawn, rejectSpawn) => {
          const timer = setTimeout(() => rejectSpawn(new Error('the supervisor did not start in time')), SUPERVISOR_START_TIMEOUT_MS);
          child!.once('spawn', () => {
            clearTimeout(timer);
            resolveSpawn();
          });
          child!.once('error', (error) => {
            clearTimeout(timer);
            rejectSpawn(error);
          });
        });
      } finally {
        await stdout.close();
        await stderr.close();
      }
      const spec = { argv: workload.command, env, cwd: run.paths.cwd, uid: this.config.runUid, gid: this.config.runGid };
      child.stdin!.end(JSON.stringify(spec));
      const pid = child.pid!;
      run.child = child;
      // Ending waits until the start is recorded and reported (below), so SubtaskStarted precedes the end.
      exited = new Promise<void>((resolveExit) => child!.once('exit', () => resolveExit()));
      record.pid = pid;
      record.startTicks = await processStartTicks(pid);
      record.startedAtMs = Date.now();
      record.startedAt = new Date(record.startedAtMs).toISOString();
      record.oomKillsAtStart = this.oomCounterFile ? await readOomKills(this.oomCounterFile) : undefined;
      record.phase = 'running';
      await this.store.save(this.snapshot());
    } catch (error) {
      // The agent could not run it (directories, secrets, the supervisor): a platform fault.
      this.log('error', `could not start ${key}: ${(error as Error).message}`);
      if (child?.pid) signalGroup(child.pid, 'SIGKILL');
      record.phase = 'ended';
      record.report = { kind: 'failed', exitCode: -1, fault: 'platform', failureKind: 'agent', reason: `the agent could not start it: ${(error as Error).message}`.slice(0, 500), endedAt: new Date().toISOString() };
      await this.store.save(this.snapshot());
      run.ending = this.deliverReport(run).catch((reportError: Error) => this.log('error', `reporting ${key}: ${reportError.message}`));
      return;
    }
    run.shipper.start();
    this.armTimeout(run);
    try {
      await this.publishStarted(run);
      this.log('info', `started ${key} (process group ${record.pid}) on GPUs ${command.gpuIndices.join(',') || 'none'}`);
    } finally {
      void exited?.then(() => this.onSupervisorGone(run));
    }
  }

  private armTimeout(run: ActiveRun): void {
    const record = run.record;
    if (record.timedOutAtMs !== undefined || record.startedAtMs === undefined) return;
    const remainingMs = Math.max(0, record.startedAtMs + run.command.workload!.timeoutMs - Date.now());
    run.timeoutTimer = setTimeout(() => {
      if (this.closed || record.phase === 'ended' || record.stopRequestedAtMs !== undefined) return;
      record.timedOutAtMs = Date.now();
      this.store
        .save(this.snapshot())
        .catch(() => undefined)
        .finally(() => this.killGroup(run));
    }, remainingMs);
  }

  private async requestStop(run: ActiveRun, why: string): Promise<void> {
    const record = run.record;
    if (record.phase === 'ended' || record.stopRequestedAtMs !== undefined) return;
    record.stopRequestedAtMs = Date.now();
    this.rememberEnded(record.key);
    await this.store.save(this.snapshot());
    this.log('info', `stopping ${record.key}: ${why}`);
    this.killGroup(run);
  }

  /** SIGTERM to the whole process group, SIGKILL after the grace period. */
  private killGroup(run: ActiveRun): void {
    const pgid = run.record.pid;
    if (pgid === undefined) return;
    signalGroup(pgid, 'SIGTERM');
    if (run.killTimer) clearTimeout(run.killTimer);
    run.killTimer = setTimeout(() => signalGroup(pgid, 'SIGKILL'), this.config.stopGraceMs);
  }

  private onSupervisorGone(run: ActiveRun): void {
    if (this.closed || run.ending) return;
    run.ending = this.endRun(run).catch((error: Error) => this.log('error', `ending ${run.record.key}: ${error.message}`));
  }

  /** The supervisor is gone: empty the group, read how it ended, keep its result, report. */
  private async endRun(run: ActiveRun): Promise<void> {
    const record = run.record;
    if (run.pollTimer) clearTimeout(run.pollTimer);
    if (run.timeoutTimer) clearTimeout(run.timeoutTimer);
    await this.emptyGroup(run);
    if (run.killTimer) clearTimeout(run.killTimer);
    const end = await this.readStatus(run.paths.statusFile);
    const stopped = record.stopRequestedAtMs !== undefined;
    const killedAtRestart = record.killedAtRestart === true;
    const result: ResultCheck = stopped || killedAtRestart ? { kind: 'not-checked' } : await this.keepResult(run, end);
    const oomNow = this.oomCounterFile ? await readOomKills(this.oomCounterFile) : undefined;
    const oomKillsDuringRun = oomNow !== undefined && record.oomKillsAtStart !== undefined ? oomNow - record.oomKillsAtStart : undefined;
    const report = classifyRunEnd({
      end,
      program: run.command.workload!.command[0]!,
      resultPath: run.command.workload!.resultPath,
      timeoutMs: run.command.workload!.timeoutMs,
      stoppedByAgent: stopped,
      timedOut: record.timedOutAtMs !== undefined,
      killedAtRestart,
      sawRestart: record.sawRestart === true,
      oomKillsDuringRun,
      result,
    });
    record.phase = 'ended';
    record.report = { ...report, endedAt: new Date().toISOString() };
    await this.store.save(this.snapshot());
    await this.deliverReport(run);
  }

  /** Ships the last output, publishes the report, forgets the run. Safe to repeat (ids derive from the command). */
  private async deliverReport(run: ActiveRun): Promise<void> {
    const record = run.record;
    const report = record.report!;
    for (let attempt = 1; ; attempt++) {
      try {
        await run.shipper.finish();
        break;
      } catch (error) {
        if (attempt >= PUBLISH_ATTEMPTS_MAX || this.closed) {
          this.log('error', `logs of ${record.key} not finished: ${(error as Error).message}`);
          break;
        }
        await sleep(PUBLISH_RETRY_MS);
      }
    }
    if (this.closed) return;
    await this.publishEnded(run.command, report, record.traceparent);
    if (this.closed) return;
    this.runs.delete(record.key);
    this.rememberEnded(record.key);
    await this.store.save(this.snapshot());
    await removeRunDirectory(run.paths.runDir);
    this.log('info', `${record.key} ended: ${report.kind === 'failed' ? `${report.failureKind} (${report.fault}): ${report.reason}` : report.kind}`);
  }

  private async publishStarted(run: ActiveRun): Promise<void> {
    const c = run.command;
    const startedAt = run.record.startedAt ?? new Date().toISOString();
    const data: EventData<'SubtaskStarted'> = { jobId: c.jobId, tenantId: c.tenantId, subtaskId: c.subtaskId, attempt: c.attempt, nodeId: this.config.nodeId, leaseEpoch: c.leaseEpoch, startedAt };
    await this.publisher.publish(this.publisher.build('SubtaskStarted', data, { id: deriveId(c.commandId, 'started'), time: startedAt, tenantId: c.tenantId, correlationId: c.jobId, traceparent: run.record.traceparent }));
  }

  private async publishEnded(c: RunCommand, report: NonNullable<RunRecord['report']>, traceparent: string | undefined): Promise<void> {
    if (report.kind === 'none') return;
    const base = { jobId: c.jobId, tenantId: c.tenantId, subtaskId: c.subtaskId, attempt: c.attempt, nodeId: this.config.nodeId, leaseEpoch: c.leaseEpoch, endedAt: report.endedAt };
    const meta = { id: deriveId(c.commandId, 'ended'), time: report.endedAt, tenantId: c.tenantId, correlationId: c.jobId, traceparent };
    const event =
      report.kind === 'completed'
        ? this.publisher.build('SubtaskCompleted', { ...base, exitCode: 0 }, meta)
        : this.publisher.build('SubtaskFailed', { ...base, exitCode: report.exitCode, fault: report.fault, reason: report.reason, failureKind: report.failureKind }, meta);
    await this.publishWithRetry(() => this.publisher.publish(event));
  }

  private async publishWithRetry(publish: () => Promise<unknown>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await publish();
        return;
      } catch (error) {
        if (attempt >= PUBLISH_ATTEMPTS_MAX || this.closed) throw error;
        this.log('warn', `publish failed (attempt ${attempt}): ${(error as Error).message}`);
        await sleep(PUBLISH_RETRY_MS);
      }
    }
  }

  /** Waits for the group to empty: leftovers of a program that ended get SIGTERM, the grace period, then SIGKILL. */
  private async emptyGroup(run: ActiveRun): Promise<void> {
    const pgid = run.record.pid;
    if (pgid === undefined) return;
    if ((await groupMembers(pgid)).length === 0) return;
    signalGroup(pgid, 'SIGTERM');
    const graceEnd = Date.now() + this.config.stopGraceMs;
    while (Date.now() < graceEnd && (await groupMembers(pgid)).length > 0) await sleep(GROUP_POLL_MS);
    signalGroup(pgid, 'SIGKILL');
    const killEnd = Date.now() + GROUP_KILL_WAIT_MS;
    while (Date.now() < killEnd && (await groupMembers(pgid)).length > 0) await sleep(GROUP_POLL_MS);
    const left = await groupMembers(pgid);
    if (left.length > 0) this.log('error', `process group ${pgid} of ${run.record.key} still has ${left.join(', ')} after SIGKILL`);
  }

  private async readStatus(file: string): Promise<ProcessEnd> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return { kind: 'vanished' };
    }
    try {
      const status = JSON.parse(text) as Record<string, unknown>;
      if (status.kind === 'exited' && Number.isInteger(status.code)) return { kind: 'exited', code: status.code as number };
      if (status.kind === 'signaled' && typeof status.signal === 'string') return { kind: 'signaled', signal: status.signal };
      if (status.kind === 'spawn-failed') return { kind: 'spawn-failed', errorCode: String(status.errorCode).slice(0, 32), message: String(status.message).slice(0, 300) };
    } catch {
      // An unreadable status is no status.
    }
    return { kind: 'vanished' };
  }

  private async keepResult(run: ActiveRun, end: ProcessEnd): Promise<ResultCheck> {
    const c = run.command;
    const workload = c.workload!;
    const file = await openResult(run.paths, workload.resultPath, Math.min(workload.resultBytesMax, this.config.resultBytesMax));
    if (file.kind !== 'ready') return file;
    try {
      if (!this.results) return { kind: 'store-failed', reason: `results bucket ${this.bus.topology.buckets.results} unavailable` };
      const metadata = {
        tenantId: c.tenantId,
        jobId: c.jobId,
        subtaskId: c.subtaskId,
        subtaskIndex: String(workload.subtaskIndex),
        attempt: String(c.attempt),
        nodeId: this.config.nodeId,
        exitCode: String(exitCodeOf(end)),
        sha256: file.sha256,
        storedAt: new Date().toISOString(),
      };
      for (let attempt = 1; ; attempt++) {
        try {
          await storeResult(this.results, metadata, file);
          return { kind: 'stored', bytes: file.bytes, sha256: file.sha256 };
        } catch (error) {
          if (attempt >= RESULT_ATTEMPTS_MAX) return { kind: 'store-failed', reason: (error as Error).message.slice(0, 300) };
          await sleep(PUBLISH_RETRY_MS);
        }
      }
    } finally {
      await file.handle.close();
    }
  }

  // ------------------------------------------------------------------ restart

  /** Finds what the previous agent ran; returns how many runs are still alive and kept. */
  private async recoverRuns(sameBoot: boolean): Promise<number> {
    let adopted = 0;
    for (const record of this.state.runs) {
      const run = this.newRun(record);
      if (record.phase === 'ended') {
        // A report owed from before the restart (same ids: a repeat is dropped by the bus).
        run.ending = run.shipper
          .resume(this.bus.jsm, this.bus.topology.streams.logs)
          .then(() => this.deliverReport(run))
          .catch((error: Error) => this.log('error', `reporting ${record.key}: ${error.message}`));
        continue;
      }
      if (record.phase === 'starting') {
        // Spawned or not? The supervisor writes its pid first thing.
        const supervisor = await readFile(run.paths.supervisorFile, 'utf8').then((t) => JSON.parse(t) as { pid?: number }).catch(() => undefined);
        const ticks = sameBoot && supervisor?.pid ? await processStartTicks(supervisor.pid) : undefined;
        if (supervisor?.pid && ticks !== undefined) {
          record.pid = supervisor.pid;
          record.startTicks = ticks;
          record.startedAtMs = Date.now();
          record.startedAt = new Date(record.startedAtMs).toISOString();
          record.phase = 'running';
        } else {
          // Never started: forget it; its command was not acknowledged and comes again.
          this.runs.delete(record.key);
          await removeRunDirectory(run.paths.runDir);
          continue;
        }
      }
      record.sawRestart = true;
      try {
        await run.shipper.resume(this.bus.jsm, this.bus.topology.streams.logs);
      } catch (error) {
        this.log('warn', `cannot resume the logs of ${record.key}: ${(error as Error).message}`);
      }
      const alive = sameBoot && record.pid !== undefined && record.startTicks !== undefined && (await processAlive(record.pid, record.startTicks));
      if (!alive) {
        this.log('warn', `${record.key} is gone after the restart`);
        run.ending = this.endRun(run).catch((error: Error) => this.log('error', `ending ${record.key}: ${error.message}`));
        continue;
      }
      if (this.config.onRestart === 'kill') {
        record.killedAtRestart = true;
        this.log('warn', `${record.key} is alive after the restart: killing it (FASTGPU_AGENT_ON_RESTART=kill)`);
        this.killGroup(run);
      } else {
        adopted++;
        this.log('info', `${record.key} is alive after the restart: adopted (process group ${record.pid})`);
        if (record.stopRequestedAtMs !== undefined || record.timedOutAtMs !== undefined) this.killGroup(run);
        else this.armTimeout(run);
        run.shipper.start();
      }
      this.pollAdopted(run);
    }
    await this.store.save(this.snapshot());
    return adopted;
  }

  /** Waits (bounded) for the runs found dead or killed at restart to be reported. */
  private async awaitRecoveredEndings(): Promise<void> {
    const deadline = Date.now() + this.config.stopGraceMs + GROUP_KILL_WAIT_MS + ADOPTED_POLL_MS * 5;
    while (Date.now() < deadline && [...this.runs.values()].some((run) => run.record.killedAtRestart && !run.ending)) await sleep(ADOPTED_POLL_MS);
    await Promise.all([...this.runs.values()].flatMap((run) => (run.ending ? [run.ending] : [])));
  }

  private pollAdopted(run: ActiveRun): void {
    const check = async () => {
      if (this.closed || run.ending) return;
      const { pid, startTicks } = run.record;
      if (pid !== undefined && startTicks !== undefined && (await processAlive(pid, startTicks))) {
        run.pollTimer = setTimeout(() => void check(), ADOPTED_POLL_MS);
        return;
      }
      this.onSupervisorGone(run);
    };
    run.pollTimer = setTimeout(() => void check(), ADOPTED_POLL_MS);
  }

  /** Run directories no state record names (a lost state file, a crash mid-write): their processes are killed, the directories removed. */
  private async killOrphans(): Promise<void> {
    const known = new Set([...this.runs.values()].map((run) => run.paths.runDir));
    const runsRoot = join(resolve(this.config.workRoot), RUNS_FOLDER);
    for (const entry of await readdir(runsRoot)) {
      const runDir = join(runsRoot, entry);
      if (known.has(runDir)) continue;
      const supervisor = await readFile(join(runDir, 'supervisor.json'), 'utf8').then((t) => JSON.parse(t) as { pid?: number }).catch(() => undefined);
      if (supervisor?.pid && (await processStartTicks(supervisor.pid)) !== undefined) {
        const cmdline = await readFile(`/proc/${supervisor.pid}/cmdline`, 'utf8').catch(() => '');
        // Only a process that is this run's supervisor (a pid may have been reused).
        if (cmdline.includes(runDir)) {
          this.log('warn', `orphan run ${entry} (process group ${supervisor.pid}): killing it`);
          signalGroup(supervisor.pid, 'SIGTERM');
          await sleep(Math.min(this.config.stopGraceMs, 1000));
          signalGroup(supervisor.pid, 'SIGKILL');
        }
      }
      await removeRunDirectory(runDir);
    }
  }

  // ------------------------------------------------------------------ heartbeats

  private scheduleHeartbeat(delayMs: number): void {
    this.heartbeatTimer = setTimeout(() => {
      this.sendHeartbeat()
        .catch((error: Error) => this.log('warn', `heartbeat: ${error.message}`))
        .finally(() => {
          if (!this.closed) this.scheduleHeartbeat(this.config.heartbeatIntervalMs);
        });
    }, delayMs);
  }

  /** One heartbeat with what nvidia-smi says now (GPUs it cannot read are left out) and the runs whose processes are held. */
  async sendHeartbeat(): Promise<void> {
    let readings: GpuReading[] = [];
    try {
      readings = await queryGpus(this.config.nvidiaSmi, this.config.nvidiaSmiTimeoutMs);
    } catch (error) {
      this.log('warn', `no GPU samples in this heartbeat: ${(error as Error).message}`);
    }
    await this.xids?.poll();
    const xids = this.xids?.available ? this.xids : undefined;
    const byUuid = new Map(readings.map((r) => [r.uuid, r]));
    const gpus: Heartbeat['gpus'] = [];
    this.gpus.forEach((gpu, index) => {
      const reading = byUuid.get(gpu.uuid);
      if (!reading) return;
      gpus.push({
        index,
        utilizationPercent: Math.min(100, Math.max(0, reading.utilizationPercent ?? 0)),
        memoryUsedMb: Math.min(this.gpuMemoryGb * 1024, Math.max(0, reading.memoryUsedMib ?? 0)),
        temperatureC: Math.min(150, Math.max(-20, reading.temperatureC ?? 0)),
        eccErrors: reading.eccUncorrectedVolatile ?? 0,
        // From the kernel log (NVRM: Xid), matched by PCI address; left out when the log cannot be read (docs/node-agent.md).
        ...(xids && reading.pciBusId !== null ? { xidErrors: xids.count(reading.pciBusId) } : {}),
      });
    });
    const running = [...this.runs.values()]
      .filter((run) => run.record.phase !== 'ended' && run.record.pid !== undefined)
      .map((run) => ({ subtaskId: run.command.subtaskId, attempt: run.command.attempt, leaseEpoch: run.command.leaseEpoch }));
    const beat: Heartbeat = { nodeId: this.config.nodeId, agentEpoch: this.state.agentEpoch, sentAt: new Date().toISOString(), gpus, running };
    await this.bus.js.publish(this.bus.topology.subjects.heartbeat(this.config.nodeId), JSON.stringify(Heartbeat.parse(beat)));
  }
}
