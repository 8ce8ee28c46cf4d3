import { DiscardPolicy, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, type StreamInfo } from '@nats-io/jetstream';
import type { Bus } from './bus';
import { isStreamVersionConflict } from './publisher';

/** JetStream's error code for a stream name already taken (nats.js names no constant for it). */
const STREAM_NAME_IN_USE = 10058;
/** How long a start waits for a lease stream another instance is creating to become readable. */
const STREAM_CREATE_WAIT_MS = 5_000;

function isStreamNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
}

/**
 * One active instance of something (the scheduler, a projection): a leader lease kept in a small
 * JetStream stream (one message kept per subject), taken and renewed with the exact-subject
 * expected-last-sequence header, so it works on nats-server 2.9.10 without the KV API. Expiry is
 * judged on the reader's own clock: a standby takes over only after it has seen the lease message
 * unchanged for a whole TTL, so clock skew between hosts does not matter. The holder stops as soon
 * as its last renewal is older than the TTL minus a margin, before any standby can take over.
 *
 * It is a soft fence: whoever it guards keeps a hard one (the scheduler: expected sequences on
 * node subjects and derived event ids; a projection: its checkpoint row, locked in the
 * transaction that applies a batch), so a paused, stale holder never applies anything twice.
 * The stream has the bus's replicas (R3 on a cluster), so losing a server loses no lease.
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
  /** The lease's stream and its one subject (one stream may hold several leases on several subjects). */
  stream: string;
  subject: string;
  /** Subjects the stream takes (default: the one subject). */
  streamSubjects?: string[];
  /** Monotonic-enough local clock in ms (tests pass a fake). */
  nowMs?: () => number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The stream of projection leases: `<P>_LEADERS`, one subject per projection under `<prefix>.leader.projection.`. */
export function projectionLeaseNames(bus: Bus, projection: string): { stream: string; subject: string; streamSubjects: string[] } {
  const token = projection.replace(/[^A-Za-z0-9_-]/g, '_');
  return {
    stream: `${bus.topology.streams.events.replace(/_EVENTS$/, '')}_LEADERS`,
    subject: `${bus.topology.prefix}.leader.projection.${token}`,
    streamSubjects: [`${bus.topology.prefix}.leader.projection.>`],
  };
}

export class LeaderLease {
  private lastSeenSequence = -1;
  private lastSeenChangedAtMs = 0;
  private heldSequence = 0;
  private renewedAtMs = 0;
  private term = 0;
  private holder = '';
  private readonly nowMs: () => number;
  readonly stream: string;
  readonly subject: string;

  constructor(private readonly options: LeaderLeaseOptions) {
    this.nowMs = options.nowMs ?? (() => performance.timeOrigin + performance.now());
    this.stream = options.stream;
    this.subject = options.subject;
  }

  async ensureStream(): Promise<void> {
    const { jsm, replicas } = this.options.bus;
    const subjects = this.options.streamSubjects ?? [this.subject];
    const config = {
      name: this.stream,
      subjects,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_msgs_per_subject: 1,
      num_replicas: replicas ?? 1,
    };
    try {
      const info = await jsm.streams.info(this.stream);
      if (replicas !== undefined && info.config.num_replicas !== replicas) await jsm.streams.update(this.stream, { ...info.config, num_replicas: replicas });
    } catch (error) {
      if (!isStreamNotFound(error)) throw error;
      await jsm.streams.add(config).catch((e: unknown) => {
        // Another instance created it at the same moment.
        if (!(e instanceof JetStreamApiError && e.code === STREAM_NAME_IN_USE)) throw e;
      });
    }
    const info = await this.infoOnceCreated();
    if (info.config.max_msgs_per_subject !== 1 || JSON.stringify(info.config.subjects) !== JSON.stringify(subjects)) throw new Error(`stream ${this.stream} was not configured as asked`);
  }

  /**
   * The lease stream's info once it exists: when another instance's create is still being
   * applied (a clustered server answers "name in use" before the stream can be read), the read
   * is retried for up to STREAM_CREATE_WAIT_MS instead of failing the start.
   */
  private async infoOnceCreated(): Promise<StreamInfo> {
    const deadline = Date.now() + STREAM_CREATE_WAIT_MS;
    for (;;) {
      try {
        return await this.options.bus.jsm.streams.info(this.stream);
      } catch (error) {
        if (!isStreamNotFound(error) || Date.now() >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** Whether this instance may act now: it holds the lease and renewed it within TTL minus a margin. */
  get isLeader(): boolean {
    return this.heldSequence > 0 && this.nowMs() - this.renewedAtMs < this.options.ttlMs * 0.8;
  }

  get currentTerm(): number {
    return this.term;
  }

  /** The instance that held the lease when this one last looked ('' when free). */
  get lastHolder(): string {
    return this.holder;
  }

  /** One step: renew when holding, take over when the lease is free or expired. Returns whether we lead. */
  async tick(): Promise<boolean> {
    const { jsm, js } = this.options.bus;
    const now = this.nowMs();
    const last = await jsm.streams.getMessage(this.stream, { last_by_subj: this.subject });
    const sequence = last?.seq ?? 0;
    const record = last ? (JSON.parse(decoder.decode(last.data)) as LeaseRecord) : undefined;
    this.holder = record?.holderId ?? '';
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
      this.holder = this.options.instanceId;
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
