import { headers as natsHeaders } from '@nats-io/transport-node';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Subscription } from '@nats-io/transport-node';
import type { JsMsg } from '@nats-io/jetstream';
import { decodeValue, parseJson, peekType, type DomainEvent, type NodeCommand } from '@fastgpu/contracts';
import { isStreamVersionConflict } from '@fastgpu/eventsourcing';
import { EventPublisher, SequenceWaiters, StreamFollower, lastSequence, PUBLISH_IN_FLIGHT_MAX, type Bus, type LeaderLease } from '@fastgpu/messaging';
import { schedulerLeaderLease } from '../leadership/leader-lease';
import { NodeDrainHandler } from '../drains/node-drain.handler';
import { SchedulingPolicyHandler } from '../policy/scheduling-policy.handler';
import { PLACEMENTS_PER_CYCLE_MAX } from '../placement/cycle';
import { commandsToResend, OverdueRuns, type AddressedCommand } from './command-resends';
import { schedulerEventTypeSet, type CycleResult, type Decision, type HypotheticalJob, type Reservation, type SchedulerPolicy, type Waiting } from '../placement/placement.types';
import { explain, feasibility, type Explanation, type FeasibilityRequest } from '../placement/questions';
import { decide } from '../placement/scheduler.decider';
import { evolve } from '../placement/scheduler.evolve';
import { serveIntakeQuestions } from './intake-questions';
import { initialState, type SchedulerState } from '../placement/scheduler.state';

/**
 * The scheduler's imperative shell. It folds the domain stream into the state (an ordered
 * consumer from sequence 1), and while it holds the leader lease runs cycles: decide (pure) →
 * publish each decided event with its derived id as Nats-Msg-Id and, on a node's scheduler
 * subject, the expected last subject sequence → send the node commands → wait until the fold
 * has read its own events back, so every cycle decides on state that is exactly a prefix of the
 * log. It also answers intake's feasibility and explain requests over core NATS.
 */
export interface SchedulerEngineOptions {
  bus: Bus;
  /** The policy until the log sets one (SchedulingPolicySet); the log's always wins. */
  policy: SchedulerPolicy;
  /**
   * Record `policy` in the log when this instance leads and the log holds none yet (set when
   * the policy came from configuration), so decisions never depend on a process's settings.
   */
  recordPolicy?: boolean;
  clock: { now(): Date };
  instanceId?: string;
  leaseTtlMs?: number;
  /** Longest pause between cycles when nothing new arrives (explanations stay fresh, backfill re-evaluates). */
  idleCycleMs?: number;
  /** A placement not reported started this long after it was placed or last sent gets its RunSubtask again (command-resends.ts). */
  commandResendAfterMs?: number;
  onError?(error: Error): void;
}

export interface EngineStatus {
  instanceId: string;
  leader: boolean;
  term: number;
  caughtUp: boolean;
  lastSequence: number;
  cycles: number;
  placements: number;
  preemptions: number;
  conflicts: number;
  lastCycleMs: number;
  nodes: number;
  queuedJobs: number;
}

/** Explanations computed off the leader path are reused this long at the same log position. */
const EXPLANATION_CACHE_MS = 1000;
/** How often the leader looks for placements whose command is overdue. */
const OVERDUE_CHECK_INTERVAL_MS = 1000;
const encoder = new TextEncoder();

export class SchedulerEngine {
  readonly state: SchedulerState = initialState();
  readonly instanceId: string;
  readonly leader: LeaderLease;
  /** The scheduling policy's commands (set, record the configured one). */
  readonly policyCommands: SchedulingPolicyHandler;
  /** Operators' drains and undrains of nodes. */
  readonly drains: NodeDrainHandler;
  private readonly publisher: EventPublisher;
  private follower?: StreamFollower;
  private subscriptions: Subscription[] = [];
  private timers: NodeJS.Timeout[] = [];
  private running = false;
  private caughtUpAt = Number.POSITIVE_INFINITY;
  private wake?: () => void;
  private dirty = true;
  private readonly waiters = new SequenceWaiters();
  private loop?: Promise<void>;
  private wasLeader = false;
  /** Commands that may not have left are resent once after each change of leadership and after a cycle whose publishes failed. */
  private commandsResent = false;
  private readonly overdueRuns: OverdueRuns;
  private overdueCheckedAtMs = 0;
  private policyRecorded = false;
  private leaseTickInFlight = false;
  private lastExplained?: { sequence: number; atMs: number; waiting: Map<string, Waiting>; reservation?: Reservation };
  private readonly stats = { cycles: 0, placements: 0, preemptions: 0, conflicts: 0, lastCycleMs: 0 };

  constructor(private readonly options: SchedulerEngineOptions) {
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.publisher = new EventPublisher(options.bus.js, options.bus.topology, 'fastgpu/scheduler');
    this.leader = schedulerLeaderLease({ bus: options.bus, instanceId: this.instanceId, ttlMs: options.leaseTtlMs ?? 3000 });
    this.policyCommands = new SchedulingPolicyHandler(options.bus, this.publisher, options.clock);
    this.drains = new NodeDrainHandler(options.bus, this.publisher, options.clock);
    this.overdueRuns = new OverdueRuns(options.commandResendAfterMs);
  }

  get caughtUp(): boolean {
    return this.state.lastSequence >= this.caughtUpAt;
  }

  status(): EngineStatus {
    let queuedJobs = 0;
    for (const job of this.state.jobs.values()) if (job.pendingCount > 0) queuedJobs++;
    return {
      instanceId: this.instanceId,
      leader: this.leader.isLeader,
      term: this.leader.currentTerm,
      caughtUp: this.caughtUp,
      lastSequence: this.state.lastSequence,
      ...this.stats,
      nodes: this.state.nodeList.length,
      queuedJobs,
    };
  }

  async start(): Promise<void> {
    const { bus } = this.options;
    this.running = true;
    await this.leader.ensureStream();
    this.caughtUpAt = await lastSequence(bus, bus.topology.streams.events);
    this.follower = new StreamFollower(bus, { stream: bus.topology.streams.events, fromSequence: this.state.lastSequence + 1, onBatch: async (messages) => this.fold(messages) });
    await this.follower.start();
    this.subscriptions = serveIntakeQuestions(bus, this, (error) => this.options.onError?.(error));
    const ttl = this.options.leaseTtlMs ?? 3000;
    const leadershipTick = () => {
      // One tick at a time: two overlapping renewals would race each other on the lease subject.
      if (this.leaseTickInFlight) return;
      this.leaseTickInFlight = true;
      this.leader
        .tick()
        .then(
          (leading) => {
            if (leading !== this.wasLeader) {
              this.wasLeader = leading;
              this.commandsResent = false;
              this.poke();
            }
          },
          (error: Error) => this.options.onError?.(error),
        )
        .finally(() => (this.leaseTickInFlight = false));
    };
    leadershipTick();
    this.timers.push(setInterval(leadershipTick, Math.max(50, Math.floor(ttl / 3))));
    this.timers.push(setInterval(() => this.poke(), this.options.idleCycleMs ?? 1000));
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.poke();
    await this.loop?.catch(() => undefined);
    for (const sub of this.subscriptions) sub.unsubscribe();
    this.subscriptions = [];
    await this.follower?.stop();
    await this.leader.resign();
  }

  /** Resolves once the fold has applied every event up to `sequence`. */
  waitForSequence(sequence: number, timeoutMs = 10_000): Promise<boolean> {
    return this.waiters.waitFor(sequence, this.state.lastSequence, timeoutMs);
  }

  // -------------------------------------------------------------------------- the fold

  private fold(messages: JsMsg[]): void {
    for (const m of messages) {
      const parsed = parseJson(m.data);
      const type = parsed.ok ? peekType(parsed.value) : undefined;
      const decoded = parsed.ok && type !== undefined && schedulerEventTypeSet.has(type) ? decodeValue(parsed.value) : undefined;
      // Undecodable bodies are dead-lettered by the durable consumers; the fold only passes them.
      if (decoded?.ok) {
        evolve(this.state, { sequence: m.seq, subject: m.subject, event: decoded.event });
        this.dirty = true;
      } else if (m.seq > this.state.lastSequence) {
        this.state.lastSequence = m.seq;
      }
    }
    this.waiters.advance(this.state.lastSequence);
    if (this.dirty) this.poke();
  }

  // -------------------------------------------------------------------------- cycles

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async run(): Promise<void> {
    while (this.running) {
      if (!this.dirty) await new Promise<void>((resolve) => (this.wake = resolve));
      if (!this.running) break;
      try {
        await this.cycleOnce();
      } catch (error) {
        this.options.onError?.(error as Error);
      }
    }
  }

  /** One cycle if this instance leads and has caught up with the log. */
  private async cycleOnce(): Promise<void> {
    this.dirty = false;
    if (!this.caughtUp || !this.leader.isLeader) return;
    if (!this.commandsResent) {
      await this.sendCommands(commandsToResend(this.state));
      this.commandsResent = true;
    }
    await this.resendOverdueRuns();
    if (this.options.recordPolicy && !this.policyRecorded) await this.recordConfiguredPolicy();
    const started = performance.now();
    const now = this.options.clock.now().toISOString();
    const result = decide(this.state, { now, policy: this.policy, explain: true });
    this.lastExplained = { sequence: this.state.lastSequence, atMs: Date.now(), waiting: result.waiting, reservation: result.reservation };
    this.stats.lastCycleMs = performance.now() - started;
    this.stats.cycles++;
    if (result.decisions.length === 0) return;
    // Re-check just before writing: a lease lost during the decision means no publish.
    if (!this.leader.isLeader) return;
    let published: { maxSequence: number; conflicts: number };
    try {
      published = await this.publish(result.decisions, now);
    } catch (error) {
      // Some events may be stored whose commands never left: the next cycle sends them again.
      this.commandsResent = false;
      throw error;
    }
    const { maxSequence, conflicts } = published;
    this.stats.placements += result.placements;
    this.stats.preemptions += result.preemptions;
    this.stats.conflicts += conflicts;
    // Decide next on a state that includes what was just written (the fold reads it back).
    if (maxSequence > 0) await this.waitForSequence(maxSequence);
    if (result.placements >= PLACEMENTS_PER_CYCLE_MAX || conflicts > 0) this.dirty = true;
  }

  /** The policy decisions use: the log's, or the configured one until the log sets one. */
  get policy(): SchedulerPolicy {
    return this.state.policy?.policy ?? this.options.policy;
  }

  /**
   * Records the configured policy as the first SchedulingPolicySet (the policy's own command,
   * policy/scheduling-policy.decider.ts): when the log already has one (set through the API, or
   * by another instance) it stays.
   */
  private async recordConfiguredPolicy(): Promise<void> {
    if (!this.state.policy) {
      const { sequence } = await this.policyCommands.recordConfigured(this.options.policy);
      await this.waitForSequence(sequence);
    }
    this.policyRecorded = true;
  }

  private envelope(d: Decision, now: string): DomainEvent {
    const traceparent = this.state.jobs.get(d.correlationId)?.traceparent;
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- tsc cannot narrow the union of decision data to the type's data
    return this.publisher.build(d.type, d.data as never, { id: d.id, time: now, tenantId: d.tenantId, correlationId: d.correlationId, causationId: d.causationId, ...(traceparent ? { traceparent } : {}) });
  }

  /**
   * Publishes decisions: per node in order with the expected last subject sequence (chains for
   * different nodes run concurrently), the rest without. A conflict or a duplicate stops that
   * node's chain (its later events were decided on a state that is no longer true); the next
   * cycle decides again from the log. Commands go out after their events are stored.
   */
  private async publish(decisions: Decision[], now: string): Promise<{ maxSequence: number; conflicts: number }> {
    const byNode = new Map<string, Decision[]>();
    const others: Decision[] = [];
    for (const d of decisions) {
      if (d.nodeId) {
        const chain = byNode.get(d.nodeId) ?? [];
        chain.push(d);
        byNode.set(d.nodeId, chain);
      } else others.push(d);
    }
    let maxSequence = 0;
    let conflicts = 0;
    const commands: Array<{ nodeId: string; command: NodeCommand; traceparent?: string }> = [];
    const runChain = async (nodeId: string, chain: Decision[]) => {
      let expected = this.state.nodes.get(nodeId)?.schedulerSubjectSequence ?? 0;
      for (const d of chain) {
        try {
          const ack = await this.publisher.publish(this.envelope(d, now), { expectedLastSubjectSequence: expected });
          if (ack.duplicate) {
            conflicts++;
            return;
          }
          expected = ack.sequence;
          if (ack.sequence > maxSequence) maxSequence = ack.sequence;
          // The command carries the job's trace, so the node's reports continue it.
          if (d.command) commands.push({ nodeId, command: d.command, traceparent: this.state.jobs.get(d.correlationId)?.traceparent });
        } catch (error) {
          if (!isStreamVersionConflict(error)) throw error;
          conflicts++;
          return;
        }
      }
    };
    const chains = [...byNode.entries()];
    for (let i = 0; i < chains.length; i += PUBLISH_IN_FLIGHT_MAX) {
      await Promise.all(chains.slice(i, i + PUBLISH_IN_FLIGHT_MAX).map(([nodeId, chain]) => runChain(nodeId, chain)));
    }
    for (let i = 0; i < others.length; i += PUBLISH_IN_FLIGHT_MAX) {
      const acks = await Promise.all(others.slice(i, i + PUBLISH_IN_FLIGHT_MAX).map((d) => this.publisher.publish(this.envelope(d, now))));
      for (const ack of acks) if (ack.sequence > maxSequence) maxSequence = ack.sequence;
    }
    await this.sendCommands(commands);
    return { maxSequence, conflicts };
  }

  private async sendCommands(commands: Array<AddressedCommand & { traceparent?: string }>): Promise<void> {
    const { js, topology } = this.options.bus;
    const send = ({ nodeId, command, traceparent }: { nodeId: string; command: NodeCommand; traceparent?: string }) => {
      const headers = natsHeaders();
      if (traceparent) headers.set('traceparent', traceparent);
      return js.publish(topology.subjects.command(nodeId), encoder.encode(JSON.stringify(command)), { msgID: command.commandId, headers });
    };
    for (let i = 0; i < commands.length; i += PUBLISH_IN_FLIGHT_MAX) {
      await Promise.all(commands.slice(i, i + PUBLISH_IN_FLIGHT_MAX).map(send));
    }
  }

  /** Placements still not reported started a while after their command went out get it again (at most once a second looked for). */
  private async resendOverdueRuns(): Promise<void> {
    const nowMs = this.options.clock.now().getTime();
    if (nowMs - this.overdueCheckedAtMs < OVERDUE_CHECK_INTERVAL_MS) return;
    this.overdueCheckedAtMs = nowMs;
    try {
      await this.sendCommands(this.overdueRuns.due(this.state, nowMs));
    } catch (error) {
      this.commandsResent = false;
      throw error;
    }
  }

  // -------------------------------------------------------------------------- questions

  /** Waiting reasons of the last cycle; a standby (or a stale cache) computes them without publishing. */
  private explanations(): { waiting: Map<string, Waiting>; reservation?: Reservation } {
    const cached = this.lastExplained;
    if (cached && (cached.sequence === this.state.lastSequence || Date.now() - cached.atMs < EXPLANATION_CACHE_MS)) return cached;
    const result = decide(this.state, { now: this.options.clock.now().toISOString(), policy: this.policy, explain: true });
    this.lastExplained = { sequence: this.state.lastSequence, atMs: Date.now(), waiting: result.waiting, reservation: result.reservation };
    return this.lastExplained;
  }

  explain(jobId: string, tenantId: string): Explanation {
    const { waiting, reservation } = this.explanations();
    return explain(this.state, jobId, tenantId, waiting, reservation);
  }

  feasibility(request: FeasibilityRequest): { feasible: boolean; reason?: string; field?: string } {
    return feasibility(this.state, request);
  }

  /** Whether and where a job would be placed now, without submitting it. */
  dryRun(job: HypotheticalJob): NonNullable<CycleResult['hypothetical']> & { feasible: boolean; reason?: string } {
    const verdict = this.feasibility(job);
    if (!verdict.feasible) return { feasible: false, reason: verdict.reason, placed: [], preempted: [] };
    const result = decide(this.state, { now: this.options.clock.now().toISOString(), policy: this.policy, explain: true, hypothetical: job, placementsMax: Number.MAX_SAFE_INTEGER });
    return { feasible: true, ...result.hypothetical! };
  }
}
