/**
 * Token buckets per API key and per tenant, and a count of open streams per tenant. Pure
 * arithmetic on a monotonic clock passed in (milliseconds), so it is the same on HTTP and gRPC
 * and testable without waiting. Hand-written rather than a library: the well-kept ones are
 * either HTTP-only (@fastify/rate-limit decides before authentication, so it cannot key on the
 * tenant, and gRPC has no equivalent) or bring a store abstraction this in-process limit does
 * not need; the whole algorithm is the ten lines of `TokenBucket`.
 */

export interface BucketLimit {
  /** Tokens added per second; 0 turns the limit off. */
  perSecond: number;
  /** Bucket size: requests admitted at once after a quiet period. */
  burst: number;
}

export interface RateLimits {
  key: BucketLimit;
  tenant: BucketLimit;
  /** Open streams (gRPC WatchJob) per tenant. */
  streamsPerTenantMax: number;
}

/** Buckets kept per scope before full ones are dropped: bounds memory whatever the number of keys. */
export const BUCKETS_MAX = 100_000;

/** A token bucket, refilled lazily on each use: no timers. */
export class TokenBucket {
  private tokens: number;
  private updatedAtMs: number;

  constructor(
    private readonly limit: BucketLimit,
    nowMs: number,
  ) {
    this.tokens = limit.burst;
    this.updatedAtMs = nowMs;
  }

  private refill(nowMs: number): void {
    const elapsedMs = Math.max(0, nowMs - this.updatedAtMs);
    this.tokens = Math.min(this.limit.burst, this.tokens + (elapsedMs * this.limit.perSecond) / 1000);
    this.updatedAtMs = Math.max(this.updatedAtMs, nowMs);
  }

  /** Milliseconds until one token is there (0 when one is there now). */
  waitMs(nowMs: number): number {
    this.refill(nowMs);
    return this.tokens >= 1 ? 0 : ((1 - this.tokens) * 1000) / this.limit.perSecond;
  }

  take(nowMs: number): void {
    this.refill(nowMs);
    this.tokens -= 1;
  }

  /** A full bucket is the same as a new one: it can be dropped. */
  isFull(nowMs: number): boolean {
    this.refill(nowMs);
    return this.tokens >= this.limit.burst;
  }
}

class Buckets {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly limit: BucketLimit) {}

  get enabled(): boolean {
    return this.limit.perSecond > 0;
  }

  get(id: string, nowMs: number): TokenBucket {
    let bucket = this.buckets.get(id);
    if (!bucket) {
      if (this.buckets.size >= BUCKETS_MAX) this.prune(nowMs);
      bucket = new TokenBucket(this.limit, nowMs);
      this.buckets.set(id, bucket);
    }
    return bucket;
  }

  private prune(nowMs: number): void {
    for (const [id, bucket] of this.buckets) if (bucket.isFull(nowMs)) this.buckets.delete(id);
    // Still full of busy buckets: drop the oldest half (those keys get a fresh burst, no more).
    if (this.buckets.size >= BUCKETS_MAX) {
      let drop = Math.ceil(this.buckets.size / 2);
      for (const id of this.buckets.keys()) {
        if (drop-- <= 0) break;
        this.buckets.delete(id);
      }
    }
  }
}

export type RateDecision = { admitted: true } | { admitted: false; limitedBy: 'key' | 'tenant'; retryAfterSeconds: number };

/**
 * One request of `keyId` (acting for `tenantId`, null for platform keys): admitted when both its
 * key's and its tenant's bucket hold a token, and then it takes one from each; refused otherwise
 * without taking any, with the whole seconds until both would admit it (at least 1).
 */
export class RateLimiter {
  private readonly keys: Buckets;
  private readonly tenants: Buckets;
  private readonly openStreams = new Map<string, number>();

  constructor(
    readonly limits: RateLimits,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.keys = new Buckets(limits.key);
    this.tenants = new Buckets(limits.tenant);
  }

  admit(keyId: string, tenantId: string | null): RateDecision {
    const now = this.nowMs();
    const key = this.keys.enabled ? this.keys.get(keyId, now) : undefined;
    const tenant = this.tenants.enabled && tenantId !== null ? this.tenants.get(tenantId, now) : undefined;
    const keyWaitMs = key?.waitMs(now) ?? 0;
    const tenantWaitMs = tenant?.waitMs(now) ?? 0;
    if (keyWaitMs > 0 || tenantWaitMs > 0) {
      return { admitted: false, limitedBy: keyWaitMs > 0 ? 'key' : 'tenant', retryAfterSeconds: Math.max(1, Math.ceil(Math.max(keyWaitMs, tenantWaitMs) / 1000)) };
    }
    key?.take(now);
    tenant?.take(now);
    return { admitted: true };
  }

  /** Opens a stream for `tenantId` when it holds fewer than the limit; returns its release (idempotent), or undefined. */
  openStream(tenantId: string): (() => void) | undefined {
    const open = this.openStreams.get(tenantId) ?? 0;
    if (open >= this.limits.streamsPerTenantMax) return undefined;
    this.openStreams.set(tenantId, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const now = (this.openStreams.get(tenantId) ?? 1) - 1;
      if (now > 0) this.openStreams.set(tenantId, now);
      else this.openStreams.delete(tenantId);
    };
  }

  streamsOpen(tenantId: string): number {
    return this.openStreams.get(tenantId) ?? 0;
  }
}
