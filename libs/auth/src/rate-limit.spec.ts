/**
 * Proves the token-bucket arithmetic on a controlled monotonic clock: a key gets its burst at
 * once, then its rate; a refused request takes no token from either bucket; the tenant bucket
 * binds every key of the tenant; Retry-After is the whole seconds until a token is there (≥ 1);
 * 0 per second turns a limit off; open streams are bounded per tenant and released once. And, as
 * a property over random schedules (fast-check), no key ever gets more than burst + rate × time.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RateLimiter, TokenBucket, type RateLimits } from './rate-limit';

function limiter(limits: Partial<RateLimits> = {}) {
  let now = 1_000;
  const rate = new RateLimiter({ key: { perSecond: 2, burst: 3 }, tenant: { perSecond: 100, burst: 100 }, streamsPerTenantMax: 2, ...limits }, () => now);
  return { rate, advance: (ms: number) => (now += ms) };
}

describe('RateLimiter', () => {
  it('admits the burst at once, then the rate, and says when to retry', () => {
    const { rate, advance } = limiter();
    expect([1, 2, 3].map(() => rate.admit('k1', 'acme').admitted)).toEqual([true, true, true]);
    expect(rate.admit('k1', 'acme')).toEqual({ admitted: false, limitedBy: 'key', retryAfterSeconds: 1 });
    advance(499);
    expect(rate.admit('k1', 'acme').admitted).toBe(false);
    advance(1);
    expect(rate.admit('k1', 'acme').admitted).toBe(true);
    // Another key has its own bucket.
    expect(rate.admit('k2', 'acme').admitted).toBe(true);
  });

  it('rounds Retry-After up to whole seconds, never 0', () => {
    const { rate } = limiter({ key: { perSecond: 0.25, burst: 1 } });
    expect(rate.admit('k', null).admitted).toBe(true);
    expect(rate.admit('k', null)).toMatchObject({ admitted: false, retryAfterSeconds: 4 });
    const fast = limiter({ key: { perSecond: 1000, burst: 1 } }).rate;
    fast.admit('k', null);
    expect(fast.admit('k', null)).toMatchObject({ admitted: false, retryAfterSeconds: 1 });
  });

  it('binds every key of a tenant to the tenant bucket, and a refusal takes no token', () => {
    const { rate, advance } = limiter({ key: { perSecond: 10, burst: 10 }, tenant: { perSecond: 1, burst: 2 } });
    expect(rate.admit('a', 'acme').admitted).toBe(true);
    expect(rate.admit('b', 'acme').admitted).toBe(true);
    expect(rate.admit('c', 'acme')).toMatchObject({ admitted: false, limitedBy: 'tenant' });
    expect(rate.admit('x', 'globex').admitted).toBe(true);
    expect(rate.admit('y', null).admitted).toBe(true); // platform keys have no tenant bucket
    advance(1000);
    // One token came back; the refused request above did not spend key c's own tokens.
    expect(rate.admit('c', 'acme').admitted).toBe(true);
    expect(rate.admit('c', 'acme').admitted).toBe(false);
  });

  it('turns a limit off with 0 per second', () => {
    const { rate } = limiter({ key: { perSecond: 0, burst: 1 }, tenant: { perSecond: 0, burst: 1 } });
    expect(Array.from({ length: 1000 }, () => rate.admit('k', 'acme').admitted).every(Boolean)).toBe(true);
  });

  it('bounds open streams per tenant and releases each once', () => {
    const { rate } = limiter();
    const first = rate.openStream('acme')!;
    const second = rate.openStream('acme')!;
    expect(rate.openStream('acme')).toBeUndefined();
    expect(rate.openStream('globex')).toBeDefined();
    first();
    first();
    expect(rate.streamsOpen('acme')).toBe(1);
    expect(rate.openStream('acme')).toBeDefined();
    second();
    expect(rate.streamsOpen('acme')).toBe(1);
  });

  it('never admits more than burst + rate × elapsed time (random schedules)', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.1, max: 50, noNaN: true }), fc.integer({ min: 1, max: 20 }), fc.array(fc.integer({ min: 0, max: 2000 }), { minLength: 1, maxLength: 200 }), (perSecond, burst, gapsMs) => {
        let now = 0;
        const bucket = new TokenBucket({ perSecond, burst }, now);
        let admitted = 0;
        for (const gap of gapsMs) {
          now += gap;
          if (bucket.waitMs(now) === 0) {
            bucket.take(now);
            admitted++;
          }
        }
        return admitted <= burst + (perSecond * now) / 1000 + 1e-9;
      }),
    );
  });
});
