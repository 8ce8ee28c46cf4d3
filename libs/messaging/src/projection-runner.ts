import type { JsMsg } from '@nats-io/jetstream';
import type { Kysely } from 'kysely';
import type { StoredEvent } from '@fastgpu/contracts';
import { recordEventSpan } from '@fastgpu/telemetry';
import { advanceCheckpoint, isTransientDatabaseError, lockCheckpoint, markStalled, readCheckpoint, type Database } from '@fastgpu/db';
import type { Bus } from './bus';
import { sendToDeadLetters } from './dead-letters';
import { StreamFollower } from './follower';
import { SequenceWaiters } from './sequence-waiters';
import { headerType, judgeMessage, mustStopAt } from './message-decoding';
import { isEventLogUnavailable } from './publisher';
import { LeaderLease, projectionLeaseNames } from './leader-lease';
import { projectionApplyFailures, projectionStalls } from './projection-metrics';
import { stderrProjectionLogger, UndecodableEventError, describeStall, type Projection, type ProjectionContext, type ProjectionHealth, type ProjectionLogger, type ProjectionStall } from './projection';

export interface ProjectionRunnerOptions {
  live?: boolean;
  /** Suffix for rebuild tables, e.g. `_rebuild`; empty for the live tables. */
  tableSuffix?: string;
  checkpointName?: string;
  batchMax?: number;
  /** Longest wait between retries of a batch that failed to apply. */
  retryDelayMsMax?: number;
  /** Where stalls and recoveries are logged (default: JSON lines on stderr). */
  logger?: ProjectionLogger;
  onProgress?(lastSequence: number, eventsApplied: number): void;
}

/** Sequences this runner remembers having dead-lettered, so a retried stop does not send them again. */
const DEAD_LETTERED_REMEMBERED_MAX = 1024;

/**
 * Runs a projection: reads the domain stream from its checkpoint with an ordered consumer,
 * applies each batch in one transaction with the checkpoint move, and never skips an event it
 * cannot apply.
 *
 * - A batch that fails is applied again one message per transaction, so every event before the
 *   culprit is applied and the stall names exactly one sequence, event id, type and reason.
 * - It then stalls there: logged once at error level (a retry of the same stall logs nothing
 *   more), counted (`fastgpu_projection_apply_failures_total` per attempt,
 *   `fastgpu_projection_stalls_total` per stall), marked in its checkpoint row (which
 *   `fastgpu_projection_stalled` and readiness read) and shown by `health`; it retries with
 *   backoff, and readers waiting for a sequence past it are answered at once.
 * - A body that does not decode goes to the dead-letter stream with the reason. A projection
 *   that sets `stopsOnUndecodable` (money) also stops at it when it names a type the projection
 *   reads, or no type at all; the others go past it.
 *
 * The repair path is an event fix-up (libs/contracts upcasters.ts) and a restart
 * (docs/operations.md).
 */
export class ProjectionRunner {
  private follower?: StreamFollower;
  private readonly waiters = new SequenceWaiters();
  private state: ProjectionHealth;
  private stopped = false;
  private eventsApplied = 0;
  private readonly deadLettered = new Set<number>();
  private readonly logger: ProjectionLogger;
  private wakePause?: () => void;
  private lease?: LeaderLease;
  private leaseTimer?: NodeJS.Timeout;
  private leaseTickInFlight = false;
  /** Bumped each time this runner starts or stops applying: a batch of an older one stops retrying. */
  private generation = 0;
  readonly checkpointName: string;

  constructor(
    private readonly bus: Bus,
    private readonly db: Kysely<Database>,
    private readonly projection: Projection,
    private readonly options: ProjectionRunnerOptions = {},
  ) {
    this.checkpointName = options.checkpointName ?? projection.name;
    this.state = { projection: this.checkpointName, status: 'starting', lastSequence: 0 };
    this.logger = options.logger ?? stderrProjectionLogger;
  }

  get health(): ProjectionHealth {
    const reopens = this.follower?.reopened ?? 0;
    const lease = this.lease ? { role: this.follower ? ('active' as const) : ('standby' as const), leaseHolder: this.lease.lastHolder } : {};
    return { ...this.state, ...(this.state.stall ? { stall: { ...this.state.stall } } : {}), ...(reopens ? { consumerReopens: reopens } : {}), ...lease };
  }

  get lastSequence(): number {
    return this.state.lastSequence;
  }

  async start(): Promise<void> {
    this.stopped = false;
    const leases = this.bus.leases;
    if (leases && (this.options.live ?? true) && !this.options.tableSuffix) {
      // Several instances of the service: one applies (the lease holder), the others stand by.
      this.lease = new LeaderLease({ bus: this.bus, instanceId: leases.instanceId, ttlMs: leases.ttlMs, ...projectionLeaseNames(this.bus, this.checkpointName) });
      await this.lease.ensureStream();
      const checkpoint = await readCheckpoint(this.db, this.checkpointName);
      this.state = { ...this.state, lastSequence: checkpoint ? Number(checkpoint.last_sequence) : 0, status: 'running' };
      await this.leaseTick();
      this.leaseTimer = setInterval(() => void this.leaseTick(), Math.max(50, Math.floor(leases.ttlMs / 3)));
      return;
    }
    await this.follow();
  }

  /** Reads from the checkpoint in the database on: another instance may have moved it. */
  private async follow(): Promise<void> {
    const checkpoint = await readCheckpoint(this.db, this.checkpointName);
    this.state.lastSequence = Math.max(this.state.lastSequence, checkpoint ? Number(checkpoint.last_sequence) : 0);
    this.state.status = 'running';
    const generation = ++this.generation;
    this.follower = new StreamFollower(this.bus, {
      stream: this.bus.topology.streams.events,
      fromSequence: this.state.lastSequence + 1,
      batchMax: this.options.batchMax,
      onBatch: (messages) => this.applyWithRetry(messages, generation),
    });
    await this.follower.start();
  }

  /**
   * One lease step: renew or take over, start applying on becoming the holder, stop on losing it
   * (a standby took over after this process paused or lost NATS for a TTL). A standby follows the
   * checkpoint row, so readers waiting for a sequence on this instance are answered all the same.
   */
  private async leaseTick(): Promise<void> {
    const lease = this.lease;
    if (!lease || this.stopped || this.leaseTickInFlight) return;
    this.leaseTickInFlight = true;
    try {
      await lease.tick().catch(() => false);
      if (this.stopped) return;
      if (lease.isLeader && !this.follower) {
        this.logger.info('projection taking over', { projection: this.checkpointName, term: lease.currentTerm, lastSequence: this.state.lastSequence });
        await this.follow();
      } else if (!lease.isLeader && this.follower) {
        this.logger.warn('projection lost its lease; standing by', { projection: this.checkpointName, holder: lease.lastHolder });
        await this.unfollow();
      }
      if (!this.follower) {
        const checkpoint = await readCheckpoint(this.db, this.checkpointName).catch(() => undefined);
        const sequence = checkpoint ? Number(checkpoint.last_sequence) : 0;
        if (sequence > this.state.lastSequence) {
          this.state = { ...this.state, lastSequence: sequence };
          this.waiters.advance(sequence);
        }
      }
    } catch (error) {
      this.logger.warn('projection lease step failed', { projection: this.checkpointName, reason: errorMessage(error) });
    } finally {
      this.leaseTickInFlight = false;
    }
  }

  private async unfollow(): Promise<void> {
    const follower = this.follower;
    this.follower = undefined;
    this.generation++;
    this.wakePause?.();
    await follower?.stop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.wakePause?.();
    await this.follower?.stop();
    await this.lease?.resign();
    this.state = { ...this.state, status: 'stopped' };
  }

  /**
   * Resolves true once every event up to `sequence` is applied (read-your-writes for APIs);
   * false after `timeoutMs`, or at once while the projection is stopped at an event at or
   * before `sequence` that no retry will get past (not a transient database failure).
   */
  waitFor(sequence: number, timeoutMs = 5000): Promise<boolean> {
    const stall = this.state.stall;
    if (stall && stall.kind !== 'transient' && stall.sequence <= sequence && this.state.lastSequence < sequence) return Promise.resolve(false);
    return this.waiters.waitFor(sequence, this.state.lastSequence, timeoutMs);
  }

  private async applyWithRetry(messages: JsMsg[], generation: number): Promise<void> {
    let remaining = messages;
    let delayMs = 100;
    const delayMsMax = this.options.retryDelayMsMax ?? 30_000;
    while (!this.stopped && this.generation === generation && remaining.length) {
      try {
        await this.applyBatch(remaining);
        this.resume();
        return;
      } catch (error) {
        const located = await this.locate(remaining, error);
        remaining = remaining.slice(located.index);
        if (this.stopped) return;
        if (!located.stall) {
          // Applied one by one after all: whatever failed did not fail again.
          this.resume();
          continue;
        }
        await this.reportStall(located.stall);
        await this.pause(delayMs);
        delayMs = Math.min(delayMs * 2, delayMsMax);
      }
    }
  }

  /**
   * Finds the message a failed batch stopped at: the undecodable one it names, the first one
   * when the database is unreachable, or, for an apply that fails the same way every time, the
   * one that still fails when the batch is applied again one message per transaction (those
   * before it are then committed). Returns its index in `messages` and the stall, or no stall
   * when every message applied on its own.
   */
  private async locate(messages: JsMsg[], error: unknown): Promise<{ index: number; stall?: Omit<ProjectionStall, 'since' | 'attempts'> }> {
    if (error instanceof UndecodableEventError) {
      const index = Math.max(0, messages.findIndex((m) => m.seq === error.sequence));
      return { index, stall: { sequence: error.sequence, eventId: error.eventId, eventType: error.eventType, reason: error.reason, kind: 'undecodable' } };
    }
    const first = messages[0]!;
    // The database or the event log (a projection that publishes derived events) not answering is no fault of the event.
    if (isTransientDatabaseError(error) || isEventLogUnavailable(error)) return { index: 0, stall: { sequence: first.seq, reason: errorMessage(error), kind: 'transient' } };
    if (messages.length > 1) {
      for (let index = 0; index < messages.length; index++) {
        if (this.stopped) return { index };
        try {
          await this.applyBatch([messages[index]!]);
        } catch (single) {
          const located = await this.locate([messages[index]!], single);
          return { index, ...(located.stall ? { stall: located.stall } : {}) };
        }
      }
      return { index: messages.length };
    }
    const verdict = judgeMessage(first.data, headerType(first.headers), this.projection.types);
    const named = verdict.kind === 'event' ? { eventId: verdict.event.id, eventType: verdict.event.type } : {};
    return { index: 0, stall: { sequence: first.seq, ...named, reason: errorMessage(error), kind: 'unappliable' } };
  }

  private async reportStall(found: Omit<ProjectionStall, 'since' | 'attempts'>): Promise<void> {
    const previous = this.state.stall;
    const same = previous !== undefined && previous.sequence === found.sequence && previous.kind === found.kind && previous.reason === found.reason;
    const stall: ProjectionStall = { ...found, since: same ? previous.since : new Date().toISOString(), attempts: same ? previous.attempts + 1 : 1 };
    const error = describeStall(stall);
    this.state = { ...this.state, status: 'stalled', stalledAtSequence: stall.sequence, error, stall };
    projectionApplyFailures.inc({ projection: this.checkpointName, kind: stall.kind });
    if (!same) {
      projectionStalls.inc({ projection: this.checkpointName, kind: stall.kind });
      const fields = { projection: this.checkpointName, sequence: stall.sequence, eventId: stall.eventId, eventType: stall.eventType, reason: stall.reason, kind: stall.kind };
      // A database that does not answer is not the event's fault: a warning; an event that cannot be applied: an error.
      if (stall.kind === 'transient') this.logger.warn('projection waiting for the database', fields);
      else this.logger.error('projection stopped at an event it cannot apply', fields);
      if (stall.kind !== 'transient') this.waiters.giveUp(stall.sequence);
    }
    await markStalled(this.db, this.checkpointName, stall.sequence, error).catch(() => undefined);
  }

  /** Waits between retries of a stop; `stop()` cuts it short. */
  private pause(delayMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, delayMs);
      this.wakePause = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private resume(): void {
    const stall = this.state.stall;
    if (!stall) return;
    this.logger.info('projection resumed', { projection: this.checkpointName, sequence: stall.sequence, eventId: stall.eventId, stalledSince: stall.since, attempts: stall.attempts });
    this.state = { projection: this.checkpointName, status: 'running', lastSequence: this.state.lastSequence };
  }

  private async applyBatch(messages: JsMsg[]): Promise<void> {
    const events: StoredEvent[] = [];
    const wanted = this.projection.types;
    let stopAt: UndecodableEventError | undefined;
    for (const m of messages) {
      const verdict = judgeMessage(m.data, headerType(m.headers), wanted);
      if (verdict.kind === 'event') events.push({ sequence: m.seq, subject: m.subject, event: verdict.event, receivedAtMs: m.time.getTime() });
      else if (verdict.kind === 'reject') {
        await this.deadLetter(m, verdict.reason);
        if (this.projection.stopsOnUndecodable && mustStopAt(verdict, wanted)) {
          stopAt = new UndecodableEventError(m.seq, verdict.reason, verdict.type, verdict.eventId);
          break;
        }
      }
    }
    // Everything before the message it stops at is applied; the checkpoint stops just before it.
    const lastSeq = stopAt ? stopAt.sequence - 1 : messages[messages.length - 1]!.seq;
    const suffix = this.options.tableSuffix ?? '';
    const context: ProjectionContext = { live: this.options.live ?? true, table: <N extends string>(name: N) => `${name}${suffix}` as N };
    let advanced = false;
    await this.db.transaction().execute(async (trx) => {
      const checkpoint = await lockCheckpoint(trx, this.checkpointName);
      const fresh = events.filter((e) => e.sequence > checkpoint);
      if (fresh.length) await this.projection.apply(trx, fresh, context);
      if (lastSeq > checkpoint) {
        await advanceCheckpoint(trx, this.checkpointName, lastSeq);
        advanced = true;
      }
    });
    this.eventsApplied += events.length;
    if (context.live) {
      for (const { event, sequence } of events) recordEventSpan(`${this.projection.name}.apply`, event.traceparent, { 'fastgpu.event.type': event.type, 'fastgpu.event.id': event.id, 'messaging.message.sequence': sequence });
    }
    if (advanced || lastSeq > this.state.lastSequence) {
      this.state = { ...this.state, lastSequence: Math.max(lastSeq, this.state.lastSequence) };
      this.options.onProgress?.(this.state.lastSequence, this.eventsApplied);
      this.waiters.advance(this.state.lastSequence);
    }
    if (stopAt) throw stopAt;
  }

  private async deadLetter(m: JsMsg, reason: string): Promise<void> {
    // A stop is retried: the message went to the dead-letter stream the first time.
    if (this.deadLettered.has(m.seq)) return;
    await sendToDeadLetters(this.bus.js, this.bus.topology, {
      consumer: this.checkpointName.replace(/[^A-Za-z0-9_-]/g, '_'),
      originalSubject: m.subject,
      originalStream: this.bus.topology.streams.events,
      originalSequence: m.seq,
      deliveries: m.info.deliveryCount,
      reason,
      headers: m.headers,
      data: m.data,
    });
    if (this.deadLettered.size >= DEAD_LETTERED_REMEMBERED_MAX) this.deadLettered.clear();
    this.deadLettered.add(m.seq);
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
