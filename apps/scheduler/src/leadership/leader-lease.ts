import { DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { Bus } from '@fastgpu/messaging';
import { isStreamVersionConflict } from '@fastgpu/eventsourcing';

/**
 * One active scheduler: a leader lease kept in its own small JetStream stream (one subject, one
 * message kept), taken and renewed with the exact-subject expected-last-sequence header, so it
 * works on nats-server 2.9.10 without the KV API. Expiry is judged on the reader's own clock: a
 * standby takes over only after it has seen the lease message unchanged for a whole TTL, so clock
 * skew between hosts does not matter. The holder stops placing as soon as its last renewal is
 * older than the TTL minus a margin, before any standby can take over.
 *
 * This is the soft fence; the hard fence is optimistic concurrency on each node's scheduler
 * subject plus derived event ids (a second writer's placement of the same attempt is a duplicate),
 * so even a paused, stale leader can never assign a GPU twice.
 */
export interface LeaseRecord {
  holderId: string;
  term: number;
  renewedAt: string;
}

export interface LeaderLeaseOptions {
  bus: Bus;
  instanceId: string;
  ttlMs: number;
  /** Monotonic-enough local clock in ms (tests pass a fake). */
  nowMs?: () => number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function leaderStreamName(bus: Bus): string {
  return `${bus.topology.streams.events.replace(/_EVENTS$/, '')}_SCHEDULER_LEADER`;
}

export class LeaderLease {
  private lastSeenSequence = -1;
  private lastSeenChangedAtMs = 0;
  private heldSequence = 0;
  private renewedAtMs = 0;
  private term = 0;
  private readonly nowMs: () => number;
  readonly stream: string;
  readonly subject: string;

  constructor(private readonly options: LeaderLeaseOptions) {
    this.nowMs = options.nowMs ?? (() => performance.timeOrigin + performance.now());
    this.stream = leaderStreamName(options.bus);
    this.subject = `${options.bus.topology.prefix}.leader.scheduler`;
  }

  async ensureStream(): Promise<void> {
    const { jsm } = this.options.bus;
    const config = {
      name: this.stream,
      subjects: [this.subject],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_msgs_per_subject: 1,
      // As many replicas as the event log (FASTGPU_STREAM_REPLICAS): the lease survives losing a server.
      num_replicas: this.options.bus.replicas ?? 1,
    };
    try {
      const existing = await jsm.streams.info(this.stream);
      if (this.options.bus.replicas !== undefined && existing.config.num_replicas !== this.options.bus.replicas) await jsm.streams.update(this.stream, { ...existing.config, num_replicas: this.options.bus.replicas });
    } catch (error) {
      if (!/stream not found/i.test((error as Error).message)) throw error;
      await jsm.streams.add(config).catch(async (e: Error) => {
        // Another instance created it at the same moment.
        if (!/already in use|exists/i.test(e.message)) throw e;
      });
    }
    const info = await jsm.streams.info(this.stream);
    if (info.config.max_msgs_per_subject !== 1 || info.config.subjects[0] !== this.subject) throw new Error(`stream ${this.stream} was not configured as asked`);
  }

  /** Whether this instance may place now: it holds the lease and renewed it within TTL minus a margin. */
  get isLeader(): boolean {
    return this.heldSequence > 0 && this.nowMs() - this.renewedAtMs < this.options.ttlMs * 0.8;
  }

  get currentTerm(): number {
    return this.term;
  }

  /** One step: renew when holding, take over when the lease is free or expired. Returns whether we lead. */
  async tick(): Promise<boolean> {
    const { jsm, js } = this.options.bus;
    const now = this.nowMs();
    const last = await jsm.streams.getMessage(this.stream, { last_by_subj: this.subject });
    const sequence = last?.seq ?? 0;
    const record = last ? (JSON.parse(decoder.decode(last.data)) as LeaseRecord) : undefined;
    if (sequence !== this.lastSeenSequence) {
      this.lastSeenSequence = sequence;
      this.lastSeenChangedAtMs = now;
    }
    const mine = record?.holderId === this.options.instanceId && sequence === this.heldSequence && this.heldSequence > 0;
    const expired = !record || record.holderId === '' || now - this.lastSeenChangedAtMs >= this.options.ttlMs;
    if (!mine && !expired) {
      this.heldSequence = 0;
      return false;
    }
    const term = mine ? this.term : (record?.term ?? 0) + 1;
    const next: LeaseRecord = { holderId: this.options.instanceId, term, renewedAt: new Date(now).toISOString() };
    try {
      const ack = await js.publish(this.subject, encoder.encode(JSON.stringify(next)), { expect: { lastSubjectSequence: sequence } });
      this.heldSequence = ack.seq;
      this.lastSeenSequence = ack.seq;
      this.lastSeenChangedAtMs = now;
      this.renewedAtMs = now;
      this.term = term;
      return true;
    } catch (error) {
      if (!isStreamVersionConflict(error)) throw error;
      this.heldSequence = 0;
      return false;
    }
  }

  /** Gives the lease up at once (clean shutdown): a standby need not wait a TTL. */
  async resign(): Promise<void> {
    if (this.heldSequence === 0) return;
    const held = this.heldSequence;
    this.heldSequence = 0;
    const released: LeaseRecord = { holderId: '', term: this.term, renewedAt: new Date(0).toISOString() };
    await this.options.bus.js.publish(this.subject, encoder.encode(JSON.stringify(released)), { expect: { lastSubjectSequence: held } }).catch(() => undefined);
  }
}
