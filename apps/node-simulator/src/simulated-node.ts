import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { deriveId, Heartbeat, NodeCommand, type EventData } from '@fastgpu/contracts';
import { EventPublisher, type Bus } from '@fastgpu/messaging';

/**
 * A simulated GPU node that speaks the node agent protocol (docs/node-protocol.md): it
 * registers, sends heartbeats with per-GPU samples, runs what it is told for the command's
 * runtime (× speed), and reports start and end with the placement's attempt and lease epoch.
 */
export interface SimulatedNodeSpec {
  nodeId: string;
  gpuModel: string;
  gpuCount: number;
  gpuMemoryGb: number;
  labels?: Record<string, string>;
}

export interface SimulatedNodeOptions {
  /** Multiplies declared run times: 0.01 runs a declared minute in 600 ms. */
  speed?: number;
  heartbeatIntervalMs?: number;
  /** Exit code for a sub-task (0 = success); lets tests make user failures. */
  exitCodeFor?(command: Extract<NodeCommand, { kind: 'RunSubtask' }>): number;
  now?(): Date;
  /** Each node's own clock (a skewed one, in fault runs); `now` for every node when absent. */
  clockOf?(nodeId: string): () => Date;
}

/** The protocol's default heartbeat interval (docs/node-protocol.md). */
const HEARTBEAT_INTERVAL_MS_DEFAULT = 5000;
/** Runs that ended, remembered so a RunSubtask sent again (the scheduler resends unstarted placements) does not run twice. */
export const ENDED_RUNS_REMEMBERED_MAX = 10_000;
/** A command whose handling failed (its start report not stored: NATS unavailable) is delivered again after this. */
const COMMAND_RETRY_DELAY_MS = 2000;

interface Running {
  command: Extract<NodeCommand, { kind: 'RunSubtask' }>;
  timer: NodeJS.Timeout;
}

export class SimulatedNode {
  private readonly publisher: EventPublisher;
  private readonly running = new Map<string, Running>();
  /** Runs (sub-task#attempt) that ended here, oldest first; bounded by ENDED_RUNS_REMEMBERED_MAX. */
  private readonly ended = new Set<string>();
  /** GPUs handed to a tenant by a lease (AttachLease) until DetachLease. */
  private readonly leases = new Map<string, Extract<NodeCommand, { kind: 'AttachLease' }>>();
  private heartbeatTimer?: NodeJS.Timeout;
  private heartbeatsPaused = false;
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;
  private agentEpoch = 0;
  /**
   * The commands stream's last sequence just before this agent epoch registered: a RunSubtask or
   * AttachLease stored up to it was placed before the registration, which ends every run of an
   * earlier epoch (libs/contracts registrationEndsRuns), so it is void here. Such a command is still
   * delivered when the previous process died before acknowledging it (redelivered after ack_wait).
   */
  private commandsBeforeRegistration = 0;
  private readonly now: () => Date;
  /** Reports this node would have sent while it was "down" are kept to replay late (tests of fencing). */
  readonly heldReports: Array<() => Promise<void>> = [];
  private holdingReports = false;

  constructor(
    private readonly bus: Bus,
    readonly spec: SimulatedNodeSpec,
    private readonly options: SimulatedNodeOptions = {},
  ) {
    this.publisher = new EventPublisher(bus.js, bus.topology, `fastgpu/node/${spec.nodeId}`);
    this.now = options.clockOf?.(spec.nodeId) ?? options.now ?? (() => new Date());
  }

  get runningSubtasks(): string[] {
    return [...this.running.keys()];
  }

  /** Leases attached to this node: lease id → GPU indices. */
  get attachedLeases(): Map<string, number[]> {
    return new Map([...this.leases].map(([leaseId, lease]) => [leaseId, lease.gpuIndices]));
  }

  /** Registers (a new agent epoch), starts heartbeats and the command consumer. */
  async start(): Promise<void> {
    // The epoch is a fencing token, not a time: from the machine's clock, never the node's skewed
    // one (a node started an hour fast, then started again with its clock right, would otherwise
    // get an older epoch and every heartbeat of it refused as a stale agent's).
    this.agentEpoch = Math.max(this.agentEpoch + 1, Math.floor(Date.now() / 1000));
    this.commandsBeforeRegistration = (await this.bus.jsm.streams.info(this.bus.topology.streams.commands)).state.last_seq;
    const time = this.now().toISOString();
    const data: EventData<'NodeRegistered'> = { ...this.spec, labels: this.spec.labels ?? {}, agentEpoch: this.agentEpoch, registeredAt: time };
    await this.publisher.publish(this.publisher.build('NodeRegistered', data, { id: deriveId(deriveId('00000000-0000-7000-8000-000000000000', this.spec.nodeId), `registered:${this.agentEpoch}`), time, tenantId: null, correlationId: this.spec.nodeId }));
    await this.startCommands();
    this.heartbeatsPaused = false;
    this.holdingReports = false;
    this.scheduleHeartbeat(0);
  }

  private async startCommands(): Promise<void> {
    const durable = `node-${this.spec.nodeId}`;
    const stream = this.bus.topology.streams.commands;
    const subject = this.bus.topology.subjects.command(this.spec.nodeId);
    const info = await this.bus.jsm.consumers.add(stream, { durable_name: durable, filter_subject: subject, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, max_deliver: 10, ack_wait: 30_000_000_000 });
    if (info.config.filter_subject !== subject) throw new Error(`node consumer ${durable} got filter ${info.config.filter_subject}`);
    const consumer = await this.bus.js.consumers.get(stream, durable);
    this.messages = await consumer.consume({ max_messages: 64 });
    const messages = this.messages;
    this.loop = (async () => {
      for await (const m of messages) {
        // A command that could not be carried out (its start report not stored) is delivered again
        // later; the loop goes on to the next one rather than ending with the error.
        await this.onCommand(m).catch(() => m.nak(COMMAND_RETRY_DELAY_MS));
      }
    })();
  }

  private async onCommand(m: JsMsg): Promise<void> {
    const parsed = NodeCommand.safeParse((() => {
      try {
        return m.json();
      } catch {
        return undefined;
      }
    })());
    if (!parsed.success) {
      m.term('invalid command');
      return;
    }
    const command = parsed.data;
    if ((command.kind === 'RunSubtask' || command.kind === 'AttachLease') && m.seq <= this.commandsBeforeRegistration) {
      m.ack();
      return;
    }
    switch (command.kind) {
      case 'RunSubtask': {
        const key = `${command.subtaskId}#${command.attempt}`;
        // Reports continue the trace the command carries (the job's trace).
        if (!this.running.has(key) && !this.ended.has(key)) await this.run(command, key, m.headers?.get('traceparent') || undefined);
        break;
      }
      case 'StopSubtask': {
        const key = `${command.subtaskId}#${command.attempt}`;
        const current = this.running.get(key);
        if (current && current.command.leaseEpoch === command.leaseEpoch) {
          clearTimeout(current.timer);
          this.running.delete(key);
          this.rememberEnded(key);
        }
        break;
      }
      case 'AttachLease': {
        // A repeat (same or older epoch) changes nothing; a newer grant replaces it.
        const current = this.leases.get(command.leaseId);
        if (!current || current.leaseEpoch < command.leaseEpoch) this.leases.set(command.leaseId, command);
        break;
      }
      case 'DetachLease': {
        if (this.leases.get(command.leaseId)?.leaseEpoch === command.leaseEpoch) this.leases.delete(command.leaseId);
        break;
      }
    }
    m.ack();
  }

  private async run(command: Extract<NodeCommand, { kind: 'RunSubtask' }>, key: string, traceparent?: string): Promise<void> {
    const report = { jobId: command.jobId, tenantId: command.tenantId, subtaskId: command.subtaskId, attempt: command.attempt, nodeId: this.spec.nodeId, leaseEpoch: command.leaseEpoch };
    const startedAt = this.now().toISOString();
    await this.publisher.publish(this.publisher.build('SubtaskStarted', { ...report, startedAt }, { id: deriveId(command.commandId, 'started'), time: startedAt, tenantId: command.tenantId, correlationId: command.jobId, traceparent }));
    const durationMs = Math.max(1, Math.round(command.runtimeMs * (this.options.speed ?? 1)));
    const timer = setTimeout(() => {
      this.running.delete(key);
      this.rememberEnded(key);
      const finish = async () => {
        const endedAt = this.now().toISOString();
        const exitCode = this.options.exitCodeFor?.(command) ?? 0;
        const meta = { id: deriveId(command.commandId, 'ended'), time: endedAt, tenantId: command.tenantId, correlationId: command.jobId, traceparent };
        const event =
          exitCode === 0
            ? this.publisher.build('SubtaskCompleted', { ...report, exitCode: 0, endedAt }, meta)
            : this.publisher.build('SubtaskFailed', { ...report, exitCode, fault: 'user', reason: `exit code ${exitCode}`, endedAt }, meta);
        await this.publisher.publish(event);
      };
      if (this.holdingReports) this.heldReports.push(finish);
      else finish().catch(() => undefined);
    }, durationMs);
    this.running.set(key, { command, timer });
  }

  private rememberEnded(key: string): void {
    this.ended.add(key);
    if (this.ended.size > ENDED_RUNS_REMEMBERED_MAX) this.ended.delete(this.ended.values().next().value!);
  }

  private scheduleHeartbeat(delayMs: number): void {
    this.heartbeatTimer = setTimeout(() => {
      this.sendHeartbeat()
        .catch(() => undefined)
        .finally(() => {
          if (this.heartbeatTimer) this.scheduleHeartbeat(this.options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS_DEFAULT);
        });
    }, delayMs);
  }

  async sendHeartbeat(): Promise<void> {
    if (this.heartbeatsPaused) return;
    const busyGpus = new Set([...[...this.running.values()].map((r) => r.command), ...this.leases.values()].flatMap((c) => c.gpuIndices));
    const beat: Heartbeat = {
      nodeId: this.spec.nodeId,
      agentEpoch: this.agentEpoch,
      sentAt: this.now().toISOString(),
      gpus: Array.from({ length: this.spec.gpuCount }, (_, index) => ({
        index,
        utilizationPercent: busyGpus.has(index) ? 97 : 0,
        memoryUsedMb: busyGpus.has(index) ? this.spec.gpuMemoryGb * 900 : 0,
        temperatureC: busyGpus.has(index) ? 71 : 38,
        eccErrors: 0,
        xidErrors: 0,
      })),
      running: [...this.running.values()].map((r) => ({ subtaskId: r.command.subtaskId, attempt: r.command.attempt, leaseEpoch: r.command.leaseEpoch })),
    };
    // A beat waits for its acknowledgement no longer than one interval: during a NATS outage a beat
    // is lost, not the ones after it (the client's default 10 s wait would silence the node that long).
    await this.bus.js.publish(this.bus.topology.subjects.heartbeat(this.spec.nodeId), JSON.stringify(Heartbeat.parse(beat)), { timeout: this.options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS_DEFAULT });
  }

  /** Stops heartbeats (the node looks dead to reliability) but keeps running its work. */
  pauseHeartbeats(): void {
    this.heartbeatsPaused = true;
  }

  resumeHeartbeats(): void {
    this.heartbeatsPaused = false;
  }

  /**
   * Simulates a partition: heartbeats stop and end-of-run reports are held back, to be sent
   * late by `releaseHeldReports()` (a node that comes back with stale reports).
   */
  partition(): void {
    this.heartbeatsPaused = true;
    this.holdingReports = true;
  }

  async releaseHeldReports(): Promise<void> {
    this.holdingReports = false;
    const held = this.heldReports.splice(0);
    for (const send of held) await send();
  }

  async stop(): Promise<void> {
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    for (const r of this.running.values()) clearTimeout(r.timer);
    this.running.clear();
    this.leases.clear();
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
  }
}

/** Parses a fleet spec like `a100:8x2,h100:8x4` (model:GPUs-per-node x node-count). */
export function parseFleetSpec(spec: string, prefix = 'sim'): SimulatedNodeSpec[] {
  const memoryGb: Record<string, number> = { a100: 80, h100: 80, h200: 141, l40s: 48, b200: 192 };
  const nodes: SimulatedNodeSpec[] = [];
  for (const part of spec.split(',').map((p) => p.trim()).filter(Boolean)) {
    const match = /^([a-z0-9_-]+):(\d+)x(\d+)$/i.exec(part);
    if (!match) throw new Error(`invalid fleet spec "${part}" (want model:GPUSxNODES, e.g. a100:8x2)`);
    const [, model, gpus, count] = match;
    for (let i = 0; i < Number(count); i++) {
      nodes.push({ nodeId: `${prefix}-${model}-${i}`, gpuModel: model!, gpuCount: Number(gpus), gpuMemoryGb: memoryGb[model!] ?? 80, labels: { rack: `rack-${i % 2}`, nvlink: `${model}-nvl-${Math.floor(i / 2)}` } });
    }
  }
  return nodes;
}

/** Starts every node of `spec`; when one fails to start, the ones already started are stopped and the error thrown. */
export async function startSimulatedFleet(bus: Bus, spec: string, options: SimulatedNodeOptions = {}): Promise<SimulatedNode[]> {
  const nodes = parseFleetSpec(spec).map((s) => new SimulatedNode(bus, s, options));
  try {
    for (const node of nodes) await node.start();
  } catch (error) {
    for (const node of nodes) await node.stop();
    throw error;
  }
  return nodes;
}
