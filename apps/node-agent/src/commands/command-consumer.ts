import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { NodeCommand } from '@fastgpu/contracts';
import type { AgentContext } from '../agent-context';
import type { RunReports } from '../reporting/run-reports';
import { decideCommand, runKey } from '../runs/command.decider';
import type { RunSupervisor } from '../runs/run-supervisor';

const COMMAND_DELIVERIES_MAX = 10;
const COMMAND_ACK_WAIT_NS = 30_000_000_000;

/**
 * The node's commands (docs/node-protocol.md, "Commands"): read from its durable consumer
 * `node-<id>`, decided by the pure command decider (runs/command.decider.ts) against what the
 * agent holds, carried out, and acknowledged only once the state file says what was done, so a
 * command that fails half-way is redelivered and recognised.
 */
export class CommandConsumer {
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;

  constructor(
    private readonly context: AgentContext,
    private readonly supervisor: RunSupervisor,
    private readonly reports: RunReports,
  ) {}

  private get bus() {
    return this.context.bus;
  }

  private get config() {
    return this.context.config;
  }

  private get book() {
    return this.context.book;
  }

  private log(level: 'info' | 'warn' | 'error', message: string): void {
    this.context.log(level, message);
  }

  /** Creates or checks the node's durable consumer and starts reading it. */
  async start(): Promise<void> {
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


  private async onCommand(m: JsMsg): Promise<void> {
    if (this.context.closed()) return;
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
    const decision = decideCommand(this.book.commandState(this.context.host.gpus.length), parsed.data);
    const traceparent = m.headers?.get('traceparent') || undefined;
    switch (decision.kind) {
      case 'start':
        for (const key of decision.stopFirst) {
          const older = this.book.runs.get(key);
          if (older) await this.supervisor.requestStop(older, `superseded by epoch ${decision.command.leaseEpoch}`);
        }
        await this.supervisor.startRun(decision.command, traceparent);
        break;
      case 'resend-started': {
        const run = this.book.runs.get(decision.key);
        if (run) await this.reports.started(run);
        break;
      }
      case 'refuse':
        this.log('warn', `refused ${decision.command.subtaskId} attempt ${decision.command.attempt}: ${decision.reason}`);
        this.book.rememberPlacement(decision.command);
        this.book.rememberEnded(runKey(decision.command.subtaskId, decision.command.attempt));
        await this.book.save();
        await this.reports.ended(decision.command, { kind: 'failed', exitCode: -1, fault: 'platform', failureKind: 'agent', reason: decision.reason, endedAt: new Date().toISOString() }, traceparent);
        break;
      case 'stop': {
        const run = this.book.runs.get(decision.key);
        if (run) await this.supervisor.requestStop(run, 'StopSubtask');
        break;
      }
      case 'forget':
        this.book.rememberEnded(decision.key);
        await this.book.save();
        this.log('info', decision.reason);
        break;
      case 'ignore':
        this.log('info', `ignored: ${decision.reason}`);
        break;
      case 'attach-lease': {
        const current = this.book.leases.get(decision.leaseId);
        if (!current || current.leaseEpoch < decision.leaseEpoch) this.book.leases.set(decision.leaseId, { leaseEpoch: decision.leaseEpoch, gpuIndices: decision.gpuIndices });
        break;
      }
      case 'detach-lease':
        if (this.book.leases.get(decision.leaseId)?.leaseEpoch === decision.leaseEpoch) this.book.leases.delete(decision.leaseId);
        break;
      default: {
        const unreachable: never = decision;
        throw new Error(`unknown decision ${JSON.stringify(unreachable)}`);
      }
    }
    m.ack();
  }


  /** Stops reading (an unacknowledged command is redelivered to the next agent). */
  async close(): Promise<void> {
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
  }
}
