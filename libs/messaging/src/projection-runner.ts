import type { JsMsg } from '@nats-io/jetstream';
import type { Transaction } from 'kysely';
import type { EventType, StoredEvent } from '@fastgpu/contracts';
import { recordEventSpan } from '@fastgpu/telemetry';
import { advanceCheckpoint, lockCheckpoint, markStalled, readCheckpoint, type AnyDatabase } from '@fastgpu/db';
import type { Bus } from './bus';
import { sendToDeadLetters } from './dead-letters';
import { StreamFollower } from './follower';
import { SequenceWaiters } from './sequence-waiters';
import { headerType, judgeMessage } from './message-decoding';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ProjectionTransaction = Transaction<any>;

export interface ProjectionContext {
  /** False during a rebuild into fresh tables: side effects (publishing derived events) are off. */
  live: boolean;
  /** Table name for a logical table in this projection's table set (rebuilds use suffixed copies). */
  table(name: string): string;
  /**
   * True when this process created the tables empty and is their only writer (a rebuild from
   * sequence 1 in one run): a projection may then trust its memory of which rows it wrote, e.g.
   * to skip looking up keys it never wrote. Absent or false: it must read the tables.
   */
  ownsTables?: boolean;
  /**
   * True when the transaction can bulk-insert with COPY (libs/db `copyRows`; the `pg` driver):
   * a rebuild sets it. A projection writes the same rows either way.
   */
  bulkCopy?: boolean;
}

/**
 * A read model folded from the domain stream. `apply` gets consecutive valid events of the
 * types it declares, inside the transaction that also moves the checkpoint.
 */
export interface Projection {
  /** Checkpoint key; a rebuild runs under `<name>@<version>`. */
  name: string;
  /** Event types this projection reads; others only move the checkpoint. */
  types: ReadonlySet<EventType>;
  apply(trx: ProjectionTransaction, events: StoredEvent[], context: ProjectionContext): Promise<void>;
}

export interface ProjectionHealth {
  projection: string;
  status: 'starting' | 'running' | 'stalled' | 'stopped';
  lastSequence: number;
  stalledAtSequence?: number;
  error?: string;
}

export interface ProjectionRunnerOptions {
  live?: boolean;
  /** Suffix for rebuild tables, e.g. `_rebuild`; empty for the live tables. */
  tableSuffix?: string;
  checkpointName?: string;
  batchMax?: number;
  /** Longest wait between retries of a batch that failed to apply. */
  retryDelayMsMax?: number;
  onProgress?(lastSequence: number, eventsApplied: number): void;
}

/**
 * Runs a projection: reads the domain stream from its checkpoint with an ordered consumer,
 * applies each batch in one transaction with the checkpoint move, and never skips an event it
 * cannot apply: it stalls at that sequence, reports itself unhealthy and retries with backoff.
 * Bodies that do not decode go to the dead-letter stream with the reason and are passed.
 */
export class ProjectionRunner {
  private follower?: StreamFollower;
  private readonly waiters = new SequenceWaiters();
  private state: ProjectionHealth;
  private stopped = false;
  private eventsApplied = 0;
  readonly checkpointName: string;

  constructor(
    private readonly bus: Bus,
    private readonly db: AnyDatabase,
    private readonly projection: Projection,
    private readonly options: ProjectionRunnerOptions = {},
  ) {
    this.checkpointName = options.checkpointName ?? projection.name;
    this.state = { projection: this.checkpointName, status: 'starting', lastSequence: 0 };
  }

  get health(): ProjectionHealth {
    return { ...this.state };
  }

  get lastSequence(): number {
    return this.state.lastSequence;
  }

  async start(): Promise<void> {
    const checkpoint = await readCheckpoint(this.db, this.checkpointName);
    this.state.lastSequence = checkpoint ? Number(checkpoint.last_sequence) : 0;
    this.state.status = 'running';
    this.follower = new StreamFollower(this.bus, {
      stream: this.bus.topology.streams.events,
      fromSequence: this.state.lastSequence + 1,
      batchMax: this.options.batchMax,
      onBatch: (messages) => this.applyWithRetry(messages),
    });
    await this.follower.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.follower?.stop();
    this.state.status = 'stopped';
  }

  /** Resolves once every event up to `sequence` is applied (read-your-writes for APIs). */
  waitFor(sequence: number, timeoutMs = 5000): Promise<boolean> {
    return this.waiters.waitFor(sequence, this.state.lastSequence, timeoutMs);
  }

  private async applyWithRetry(messages: JsMsg[]): Promise<void> {
    let delayMs = 100;
    const delayMsMax = this.options.retryDelayMsMax ?? 30_000;
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.applyBatch(messages);
        return;
      } catch (error) {
        const message = (error as Error).message;
        const first = messages[0]?.seq ?? 0;
        this.state = { ...this.state, status: 'stalled', stalledAtSequence: first, error: message };
        await markStalled(this.db, this.checkpointName, first, message).catch(() => undefined);
        await new Promise((r) => setTimeout(r, delayMs));
        delayMs = Math.min(delayMs * 2, delayMsMax);
      }
    }
  }

  private async applyBatch(messages: JsMsg[]): Promise<void> {
    const events: StoredEvent[] = [];
    const wanted = this.projection.types;
    for (const m of messages) {
      const verdict = judgeMessage(m.data, headerType(m.headers), wanted);
      if (verdict.kind === 'event') events.push({ sequence: m.seq, subject: m.subject, event: verdict.event, receivedAtMs: m.time.getTime() });
      else if (verdict.kind === 'reject') await this.deadLetter(m, verdict.reason);
    }
    const lastSeq = messages[messages.length - 1]!.seq;
    const suffix = this.options.tableSuffix ?? '';
    const context: ProjectionContext = { live: this.options.live ?? true, table: (name) => `${name}${suffix}` };
    await this.db.transaction().execute(async (trx) => {
      const checkpoint = await lockCheckpoint(trx, this.checkpointName);
      const fresh = events.filter((e) => e.sequence > checkpoint);
      if (fresh.length) await this.projection.apply(trx, fresh, context);
      if (lastSeq > checkpoint) await advanceCheckpoint(trx, this.checkpointName, lastSeq);
    });
    this.eventsApplied += events.length;
    if (context.live) {
      for (const { event, sequence } of events) recordEventSpan(`${this.projection.name}.apply`, event.traceparent, { 'fastgpu.event.type': event.type, 'fastgpu.event.id': event.id, 'messaging.message.sequence': sequence });
    }
    this.state = { projection: this.checkpointName, status: 'running', lastSequence: lastSeq };
    this.options.onProgress?.(lastSeq, this.eventsApplied);
    this.waiters.advance(lastSeq);
  }

  private async deadLetter(m: JsMsg, reason: string): Promise<void> {
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
  }
}
