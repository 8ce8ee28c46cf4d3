import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { decodeValue, parseJson, peekType, type DomainEvent } from '@fastgpu/contracts';
import { EventPublisher, lastHeartbeatOfEachNode, lastSequence, StreamFollower, type Bus } from '@fastgpu/messaging';
import { Logger } from '@nestjs/common';
import { nodeClockSkewSeconds, recordRejectedNodeReport } from '@fastgpu/observability';
import { ConnectionWatch, type Clock, type HealthCheck } from '@fastgpu/runtime';
import { livenessTickMs, type ReliabilityConfig } from '../reliability.config';
import { evolveFencing, fencingEventTypes, initialFencingState, isNodeReport, reportVerdict, type FencingState } from '../fencing/fencing.decider';
import { decideHeartbeat, decideTick, evolveLiveness, initialLivenessState, livenessEventTypes, lostTimeoutMs, type ClockSkew, type LivenessState, type RejectionCode } from '../liveness/liveness.decider';
import { iso, type CommandEffect, type Effect, type EventEffect } from './effects';

/** Bounds of a heartbeat pull request's life (nats.js accepts at least 1 s; its default is 30 s). */
const HEARTBEAT_PULL_EXPIRES_MS_MIN = 1_000;
const HEARTBEAT_PULL_EXPIRES_MS_MAX = 30_000;
/** Heartbeats held while the domain log is still being read, one (the latest) per node. */
const HELD_HEARTBEATS_MAX = 100_000;
/** Effects decided but not yet seen in the log; beyond this the loop reports itself unhealthy. */
const OUTBOX_ENTRIES_MAX = 50_000;
/** A published event not seen back in the log after this long is published again (same msg id). */
const REPUBLISH_AFTER_MS = 10_000;
/** Ids already settled are remembered this long, so repeated identical decisions publish nothing. */
const SETTLED_REMEMBER_MS = 15 * 60_000;
/** A stop command for the same work is sent again at most this often while the node keeps running it. */
const STOP_RESEND_MS = 60_000;

const watchedTypes: ReadonlySet<string> = new Set<string>([...livenessEventTypes, ...fencingEventTypes, 'ReportRejected']);

interface OutboxEntry {
  event?: EventEffect;
  commands: CommandEffect[];
  sentAtMs?: number;
}

export interface MonitorStats {
  heartbeatsAccepted: number;
  heartbeatsRejected: number;
  heartbeatsRejectedByCode: Partial<Record<RejectionCode, number>>;
  reportsRejected: number;
  nodesLostPublished: number;
  outboxSize: number;
  domainSequence: number;
  heartbeatSequence: number;
  caughtUp: boolean;
}

/**
 * The liveness loop, the imperative shell around the liveness and fencing deciders. It folds
 * the whole domain log (from sequence 1, so a restart or a standby rebuilds the same state),
 * reads the heartbeat stream from the last message of each node on, and runs a timer that
 * declares silent nodes lost. Decisions made while the log is still being read wait in an
 * outbox and are dropped when the log shows them already made; ids are deterministic, so a
 * standby deciding the same thing publishes the same message and the bus keeps one.
 */
export class NodeMonitor {
  readonly liveness: LivenessState = initialLivenessState();
  readonly fencing: FencingState = initialFencingState();
  private readonly outbox = new Map<string, OutboxEntry>();
  private readonly settled = new Map<string, number>();
  private readonly heldHeartbeats = new Map<string, JsMsg>();
  private follower?: StreamFollower;
  private heartbeats?: ConsumerMessages;
  private heartbeatLoop?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private domainTarget = 0;
  private heartbeatTarget = 0;
  private domainCaughtUp = false;
  private heartbeatsCaughtUp = false;
  private stopped = false;
  private ticking = false;
  private lastTickWallMs = 0;
  private lastError?: { message: string; atMs: number };
  /** Set when a reader ends without being stopped: the loop can no longer see the fleet. */
  private readerEnded?: string;
  private readonly heartbeatSubjectPrefix: string;
  private readonly logger = new Logger('reliability');
  /** This instance's own NATS connection: while it is down, silence is not evidence (see tick). */
  private connection?: ConnectionWatch;
  /** Set while losses wait because the heartbeat reader is behind the stream (see tick). */
  private heartbeatReaderBehind?: { sinceMs: number; read: number; stored: number };
  private readonly stats: MonitorStats = {
    heartbeatsAccepted: 0,
    heartbeatsRejected: 0,
    heartbeatsRejectedByCode: {},
    reportsRejected: 0,
    nodesLostPublished: 0,
    outboxSize: 0,
    domainSequence: 0,
    heartbeatSequence: 0,
    caughtUp: false,
  };

  constructor(
    private readonly bus: Bus,
    private readonly publisher: EventPublisher,
    private readonly clock: Clock,
    private readonly config: ReliabilityConfig,
  ) {
    this.heartbeatSubjectPrefix = `${bus.topology.prefix}.hb.`;
  }

  get caughtUp(): boolean {
    return this.domainCaughtUp && this.heartbeatsCaughtUp;
  }

  snapshot(): MonitorStats {
    return { ...this.stats, heartbeatsRejectedByCode: { ...this.stats.heartbeatsRejectedByCode }, outboxSize: this.outbox.size, caughtUp: this.caughtUp };
  }

  async start(): Promise<void> {
    const { streams } = this.bus.topology;
    this.connection = new ConnectionWatch(this.bus.nc);
    this.connection.onChange((connected) => {
      if (connected) this.logger.log('NATS connection back: nodes are judged silent again from now on, not over the outage');
      else this.logger.warn('NATS connection lost: no node is declared lost until it is back');
    });
    this.domainTarget = await lastSequence(this.bus, streams.events);
    this.heartbeatTarget = await lastSequence(this.bus, streams.heartbeats);
    this.domainCaughtUp = this.domainTarget === 0;
    this.heartbeatsCaughtUp = this.heartbeatTarget === 0;
    this.follower = new StreamFollower(this.bus, { stream: streams.events, fromSequence: 1, onBatch: (messages) => this.onDomainBatch(messages) });
    await this.follower.start();
    void this.follower.done.then(
      () => this.readerEnded ??= this.stopped ? undefined : 'the domain log reader ended',
      (error: Error) => (this.readerEnded ??= `the domain log reader failed: ${error.message}`),
    );
    // The last heartbeat of every node, then every new one: what liveness needs after a restart.
    const consumer = await this.bus.js.consumers.get(streams.heartbeats, lastHeartbeatOfEachNode(this.bus.topology));
    // Pull requests expire within a loss timeout (and its idle heartbeats come twice as often), so after
    // a NATS restart the reader notices its pulls are gone and pulls again before a node could be lost.
    const expires = Math.min(HEARTBEAT_PULL_EXPIRES_MS_MAX, Math.max(HEARTBEAT_PULL_EXPIRES_MS_MIN, lostTimeoutMs(this.config)));
    this.heartbeats = await consumer.consume({ max_messages: 1000, expires });
    const messages = this.heartbeats;
    this.heartbeatLoop = (async () => {
      for await (const m of messages) {
        if (this.stopped) break;
        await this.onHeartbeatMessage(m).catch((error: Error) => this.fail(error));
      }
      if (!this.stopped) this.readerEnded ??= 'the heartbeat reader ended';
    })().catch((error: Error) => {
      this.readerEnded ??= `the heartbeat reader failed: ${error.message}`;
    });
    this.lastTickWallMs = Date.now();
    this.timer = setInterval(() => void this.tick(), livenessTickMs(this.config));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.connection?.stop();
    await this.follower?.stop();
    await this.heartbeats?.close().catch(() => undefined);
    await this.heartbeatLoop?.catch(() => undefined);
  }

  /** Readiness: the log is read, the loop runs, and publishing works. */
  healthCheck(): HealthCheck {
    return {
      check: () => {
        const tickMs = livenessTickMs(this.config);
        const sinceTickMs = Date.now() - this.lastTickWallMs;
        if (this.stopped) return { ok: false, detail: 'liveness loop stopped' };
        if (this.readerEnded) return { ok: false, detail: this.readerEnded };
        if (!this.caughtUp) return { ok: false, detail: `reading the log: domain ${this.stats.domainSequence}/${this.domainTarget}, heartbeats ${this.stats.heartbeatSequence}/${this.heartbeatTarget}` };
        if (sinceTickMs > Math.max(5 * tickMs, 5_000)) return { ok: false, detail: `liveness loop stalled: last run ${sinceTickMs} ms ago` };
        if (this.outbox.size > OUTBOX_ENTRIES_MAX) return { ok: false, detail: `${this.outbox.size} decisions not yet published` };
        const behind = this.heartbeatReaderBehind;
        if (behind && Date.now() - behind.sinceMs > lostTimeoutMs(this.config)) return { ok: false, detail: `heartbeat reader behind the stream for ${Date.now() - behind.sinceMs} ms (read ${behind.read} of ${behind.stored}): losses wait` };
        if (this.lastError && Date.now() - this.lastError.atMs < 30_000) return { ok: false, detail: `liveness loop error: ${this.lastError.message}` };
        return { ok: true, detail: { nodes: this.liveness.nodes.size, placements: this.fencing.placements.size, outbox: this.outbox.size } };
      },
    };
  }

  private fail(error: Error): void {
    this.lastError = { message: error.message, atMs: Date.now() };
  }

  private async onDomainBatch(messages: JsMsg[]): Promise<void> {
    for (const m of messages) {
      this.stats.domainSequence = m.seq;
      const parsed = parseJson(m.data);
      if (!parsed.ok) continue;
      const type = peekType(parsed.value);
      // Undecodable events are the projections' to dead-letter; the loop only reads what it needs.
      if (type === undefined || !watchedTypes.has(type)) continue;
      const decoded = decodeValue(parsed.value);
      if (!decoded.ok) continue;
      this.apply(decoded.event, m.time.getTime(), m.subject, m.seq);
    }
    const last = messages[messages.length - 1];
    if (!this.domainCaughtUp && last && (last.seq >= this.domainTarget || last.info.pending === 0)) this.domainCaughtUp = true;
    if (this.domainCaughtUp && this.heldHeartbeats.size) {
      const held = [...this.heldHeartbeats.values()].sort((a, b) => a.seq - b.seq);
      this.heldHeartbeats.clear();
      for (const m of held) this.judgeHeartbeat(m);
    }
    await this.flush();
  }

  private apply(event: DomainEvent, receivedAtMs: number, subject: string, sequence: number): void {
    // One of our decisions reached the log (published by us or by a standby deciding the same): settled.
    if (this.outbox.delete(event.id)) this.settled.set(event.id, Date.now());
    if (livenessEventTypes.has(event.type as never)) evolveLiveness(this.liveness, event, receivedAtMs);
    if (isNodeReport(event)) {
      const { judgement, effects } = reportVerdict(this.fencing, event, receivedAtMs, subject);
      // Counted and logged once: live only (a restart reads the same rejections again, already on record).
      if (!judgement.ok && this.domainCaughtUp) {
        recordRejectedNodeReport({ consumer: 'reliability', eventId: event.id, sequence, type: event.type, nodeId: event.data.nodeId, subject, subtaskId: event.data.subtaskId, code: judgement.code, reason: judgement.reason });
      }
      this.enqueue(effects);
    } else if (fencingEventTypes.has(event.type as never)) evolveFencing(this.fencing, event);
    if (event.type === 'ReportRejected') this.stats.reportsRejected++;
  }

  private async onHeartbeatMessage(m: JsMsg): Promise<void> {
    this.stats.heartbeatSequence = m.seq;
    if (!this.heartbeatsCaughtUp && (m.seq >= this.heartbeatTarget || m.info.pending === 0)) this.heartbeatsCaughtUp = true;
    if (!this.domainCaughtUp) {
      if (this.heldHeartbeats.size < HELD_HEARTBEATS_MAX || this.heldHeartbeats.has(m.subject)) this.heldHeartbeats.set(m.subject, m);
      return;
    }
    this.judgeHeartbeat(m);
    await this.flush();
  }

  private judgeHeartbeat(m: JsMsg): void {
    const parsed = parseJson(m.data);
    const subjectNodeId = m.subject.startsWith(this.heartbeatSubjectPrefix) ? m.subject.slice(this.heartbeatSubjectPrefix.length) : m.subject;
    const verdict = decideHeartbeat(this.liveness, this.fencing, { subjectNodeId, body: parsed.ok ? parsed.value : undefined, receivedAtMs: m.time.getTime() }, this.config);
    if (verdict.accepted) {
      this.stats.heartbeatsAccepted++;
      this.onClockSkew(verdict.skew);
    } else {
      this.stats.heartbeatsRejected++;
      this.stats.heartbeatsRejectedByCode[verdict.code] = (this.stats.heartbeatsRejectedByCode[verdict.code] ?? 0) + 1;
    }
    this.enqueue(verdict.effects);
  }

  /** Exports a node's clock skew and warns once each time it moves beyond the allowed skew (and says when it is back). */
  private onClockSkew(skew: ClockSkew): void {
    nodeClockSkewSeconds.set({ node: skew.nodeId }, skew.skewMs / 1000);
    if (skew.crossed === 'beyond') {
      this.logger.warn(`node ${skew.nodeId}: its clock is ${Math.abs(skew.skewMs)} ms ${skew.skewMs > 0 ? 'ahead of' : 'behind'} the server's (allowed ${this.config.clockSkewMs} ms); liveness and billing use server time, but the agent's clock should be fixed`);
    } else if (skew.crossed === 'within') {
      this.logger.log(`node ${skew.nodeId}: its clock is back within ${this.config.clockSkewMs} ms of the server's (${skew.skewMs} ms)`);
    }
  }

  /** Groups effects: commands travel with the event that records them, or alone. */
  private enqueue(effects: Effect[]): void {
    if (effects.length === 0) return;
    const commands = effects.filter((e): e is CommandEffect => e.kind === 'command');
    const events = effects.filter((e): e is EventEffect => e.kind === 'event');
    const nowMs = Date.now();
    if (events.length === 0) {
      for (const command of commands) {
        const key = command.command.commandId;
        const sentAtMs = this.settled.get(key);
        if (sentAtMs !== undefined && nowMs - sentAtMs < STOP_RESEND_MS) continue;
        if (!this.outbox.has(key)) this.outbox.set(key, { commands: [command] });
      }
      return;
    }
    events.forEach((event, i) => {
      if (this.outbox.has(event.id) || this.settled.has(event.id)) return;
      // The commands go out before the first event, so an event in the log proves they were sent.
      this.outbox.set(event.id, { event, commands: i === 0 ? commands : [] });
    });
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      this.lastTickWallMs = Date.now();
      if (!this.caughtUp) return;
      // While our own connection is down we hear nobody: that silence says nothing about the nodes.
      if (this.connection && !this.connection.connected) return;
      const nowMs = this.clock.now().getTime();
      const losses = decideTick(this.liveness, nowMs, this.config, this.heardFromMs(nowMs));
      // Silence is evidence only if the heartbeat reader has read all the stream holds: after an
      // outage the reader can resume seconds after the connection while the nodes beat again.
      if (losses.length && !(await this.heartbeatReaderCaughtUp())) return;
      this.enqueue(losses);
      for (const [id, atMs] of this.settled) if (this.lastTickWallMs - atMs > SETTLED_REMEMBER_MS) this.settled.delete(id);
      await this.flush();
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.ticking = false;
    }
  }

  /** Whether the heartbeat reader has delivered everything the heartbeat stream stores now. */
  private async heartbeatReaderCaughtUp(): Promise<boolean> {
    let storedSequence: number;
    try {
      storedSequence = await lastSequence(this.bus, this.bus.topology.streams.heartbeats);
    } catch {
      return false;
    }
    if (this.stats.heartbeatSequence >= storedSequence) {
      this.heartbeatReaderBehind = undefined;
      return true;
    }
    this.heartbeatReaderBehind ??= { sinceMs: Date.now(), read: this.stats.heartbeatSequence, stored: storedSequence };
    Object.assign(this.heartbeatReaderBehind, { read: this.stats.heartbeatSequence, stored: storedSequence });
    return false;
  }

  /**
   * When, on the liveness clock, this instance could hear the fleet again after its last NATS
   * outage: nodes get a full timeout from then (their beats during the outage never reached the
   * log, and they reconnect on their own schedule). Undefined if the connection never dropped.
   */
  private heardFromMs(nowMs: number): number | undefined {
    const reconnectedAtMs = this.connection?.reconnectedAtMs;
    if (reconnectedAtMs === null || reconnectedAtMs === undefined) return undefined;
    return nowMs - (Date.now() - reconnectedAtMs);
  }

  private flushRunning = false;
  private flushAgain = false;

  /** Publishes what is due, in decision order; nothing while the log is still being read. */
  private async flush(): Promise<void> {
    if (!this.domainCaughtUp || this.stopped) return;
    if (this.flushRunning) {
      // The running flush goes round once more, so nothing enqueued meanwhile waits for a tick.
      this.flushAgain = true;
      return;
    }
    this.flushRunning = true;
    try {
      do {
        this.flushAgain = false;
        await this.flushOnce();
      } while (this.flushAgain && !this.stopped);
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.flushRunning = false;
    }
  }

  private async flushOnce(): Promise<void> {
    for (const [key, entry] of this.outbox) {
      const nowMs = Date.now();
      if (entry.sentAtMs !== undefined && nowMs - entry.sentAtMs < REPUBLISH_AFTER_MS) continue;
      for (const { nodeId, command } of entry.commands) {
        await this.bus.js.publish(this.bus.topology.subjects.command(nodeId), JSON.stringify(command), { msgID: command.commandId });
      }
      if (!entry.event) {
        this.outbox.delete(key);
        this.settled.set(key, nowMs);
        continue;
      }
      const published = await this.publisher.publish(this.envelope(entry.event));
      if (entry.event.type === 'NodeLost' && !published.duplicate) this.stats.nodesLostPublished++;
      if (published.duplicate) {
        // Already in the log (another instance, or an earlier try): nothing left to do.
        this.outbox.delete(key);
        this.settled.set(key, nowMs);
      } else {
        entry.sentAtMs = nowMs;
      }
    }
  }

  private envelope(effect: EventEffect): DomainEvent {
    const meta = { id: effect.id, time: iso(this.clock.now().getTime()), tenantId: null, correlationId: effect.causationId ?? effect.id, ...(effect.causationId ? { causationId: effect.causationId } : {}) };
    return this.publisher.build(effect.type, effect.data, meta);
  }
}
