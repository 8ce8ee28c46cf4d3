import { sql, type Kysely } from 'kysely';
import type { ReliabilityDatabase } from '@fastgpu/db';

/** Counters held in memory between flushes: one per (tenant, minute). */
const PENDING_KEYS_MAX = 100_000;
/** Requests without a tenant (platform roles, unauthenticated) are counted under this name. */
export const PLATFORM_TENANT = '_platform';
/**
 * Probes and health reads, not API traffic: `/healthz` and `/readyz` (load balancers, every few
 * seconds), `/v1/health` (the same checks in detail, for operators) and `/metrics` (scrapers).
 * Counting them would dilute API availability with requests no tenant made, and a probe's 503
 * while a dependency is down would count as an API error on top of the failed API calls. The
 * browser console's files (`/console` and below) are not API calls either.
 */
export const UNCOUNTED_ROUTES = /^\/(healthz|readyz|metrics|v1\/health)(\?|$)|^\/console(\/|\?|$)/;

/** Whether a request (its URL as the server received it, query included) counts toward API availability. */
export function countsAsApiRequest(url: string): boolean {
  return !UNCOUNTED_ROUTES.test(url);
}

/**
 * Counts HTTP responses per tenant and minute (5xx = error; 4xx is the caller's) and adds them
 * to `reliability_api_requests` every few seconds. API availability is observed, not an event:
 * this table is the one reliability input that is not rebuilt from the log.
 */
export class ApiRequestRecorder {
  private pending = new Map<string, { tenantId: string; minuteMs: number; total: number; errors: number }>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  dropped = 0;

  constructor(private readonly db: Kysely<ReliabilityDatabase>) {}

  start(flushEveryMs = 5_000): void {
    this.timer = setInterval(() => void this.flush().catch(() => undefined), flushEveryMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush().catch(() => undefined);
  }

  record(tenantId: string | null | undefined, statusCode: number, atMs: number): void {
    const minuteMs = atMs - (atMs % 60_000);
    const tenant = tenantId ?? PLATFORM_TENANT;
    const key = `${tenant}\u0000${minuteMs}`;
    let entry = this.pending.get(key);
    if (!entry) {
      if (this.pending.size >= PENDING_KEYS_MAX) {
        this.dropped++;
        return;
      }
      this.pending.set(key, (entry = { tenantId: tenant, minuteMs, total: 0, errors: 0 }));
    }
    entry.total++;
    if (statusCode >= 500) entry.errors++;
  }

  async flush(): Promise<void> {
    if (this.flushing) await this.flushing;
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    this.flushing = (async () => {
      try {
        await this.db
          .insertInto('reliability_api_requests')
          .values(batch.map((b) => ({ tenant_id: b.tenantId, minute_ms: b.minuteMs, total: b.total, errors: b.errors })))
          .onConflict((oc) =>
            oc.columns(['tenant_id', 'minute_ms']).doUpdateSet({
              total: sql<number>`reliability_api_requests.total + excluded.total`,
              errors: sql<number>`reliability_api_requests.errors + excluded.errors`,
            }),
          )
          .execute();
      } catch (error) {
        // Put the counts back so the next flush carries them.
        for (const b of batch) {
          const key = `${b.tenantId}\u0000${b.minuteMs}`;
          const entry = this.pending.get(key);
          if (entry) {
            entry.total += b.total;
            entry.errors += b.errors;
          } else this.pending.set(key, b);
        }
        throw error;
      } finally {
        this.flushing = undefined;
      }
    })();
    await this.flushing;
  }
}
