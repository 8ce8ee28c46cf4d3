import { Inject, Injectable } from '@nestjs/common';
import { sql } from 'kysely';
import { Counter, Gauge, type Registry } from 'prom-client';
import { metricsFor } from '@fastgpu/observability';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';

/**
 * Billing's Prometheus metrics, on the process registry (`GET /metrics`). Figures about the log
 * are read at scrape time from the ledger's audit trail (`billing_audit`), so they are exact,
 * survive restarts and agree with a rebuild; request figures are counted by this process.
 *
 * - `fastgpu_billing_events_deduplicated_total{type}`: events whose id was seen before with the
 *   same payload (nothing counted twice).
 * - `fastgpu_billing_event_conflicts_total{type}`: an id seen before with another payload (the
 *   first stands; the audit trail and the review queue say which).
 * - `fastgpu_billing_late_usage_total{disposition}`: usage events that arrived after their
 *   period's invoice was finalized: `adjustment` (on a later invoice) or `review`.
 * - `fastgpu_billing_invoices_held_by_missing_price`: draft invoices with usage that has no price
 *   (they cannot be finalized). Alert on `> 0` for longer than the grace period.
 * - `fastgpu_billing_idempotent_replays_total{action}`, `fastgpu_billing_idempotency_conflicts_total{action}`:
 *   requests answered from their Idempotency-Key, and keys reused with another body (409).
 */
@Injectable()
export class BillingMetrics {
  readonly idempotentReplays: Counter<'action'>;
  readonly idempotencyConflicts: Counter<'action'>;

  constructor(@Inject(RUNTIME) runtime: Runtime) {
    const registry = metricsFor(runtime).registry;
    const db = runtime.db;
    const auditCounts = async (outcome: string) =>
      (await sql<{ type: string; n: number }>`SELECT type, count(*)::int8 AS n FROM billing_audit WHERE outcome = ${outcome} GROUP BY type`.execute(db)).rows;
    once(registry, 'fastgpu_billing_events_deduplicated_total', () =>
      new Counter({
        name: 'fastgpu_billing_events_deduplicated_total',
        help: 'Billing events whose id was seen before with the same payload (counted once), by type',
        labelNames: ['type'],
        registers: [registry],
        async collect() {
          this.reset();
          for (const r of await auditCounts('duplicate')) this.inc({ type: r.type }, Number(r.n));
        },
      }),
    );
    once(registry, 'fastgpu_billing_event_conflicts_total', () =>
      new Counter({
        name: 'fastgpu_billing_event_conflicts_total',
        help: 'Billing events whose id was seen before with another payload (the first stands), by type',
        labelNames: ['type'],
        registers: [registry],
        async collect() {
          this.reset();
          for (const r of await auditCounts('conflict')) this.inc({ type: r.type }, Number(r.n));
        },
      }),
    );
    once(registry, 'fastgpu_billing_late_usage_total', () =>
      new Counter({
        name: 'fastgpu_billing_late_usage_total',
        help: 'Usage events that arrived after their period was finalized: as an adjustment on a later invoice, or to the review queue',
        labelNames: ['disposition'],
        registers: [registry],
        async collect() {
          this.reset();
          const { rows } = await sql<{ disposition: string; n: number }>`
            SELECT CASE WHEN invoice_id = '' THEN 'review' ELSE 'adjustment' END AS disposition, count(DISTINCT event_id)::int8 AS n
            FROM billing_audit WHERE outcome = 'late' GROUP BY 1`.execute(db);
          for (const r of rows) this.inc({ disposition: r.disposition }, Number(r.n));
        },
      }),
    );
    once(registry, 'fastgpu_billing_invoices_held_by_missing_price', () =>
      new Gauge({
        name: 'fastgpu_billing_invoices_held_by_missing_price',
        help: 'Draft invoices holding usage without a price (they stay drafts until a price covers it); alert when above 0 past the grace period',
        registers: [registry],
        async collect() {
          const { rows } = await sql<{ n: number }>`
            SELECT count(DISTINCT p.invoice_id)::int8 AS n FROM billing_rated_parts p
            JOIN billing_invoices i ON i.invoice_id = p.invoice_id
            WHERE i.status = 'draft' AND p.version IS NULL`.execute(db);
          this.set(Number(rows[0]?.n ?? 0));
        },
      }),
    );
    this.idempotentReplays = once(registry, 'fastgpu_billing_idempotent_replays_total', () => new Counter({ name: 'fastgpu_billing_idempotent_replays_total', help: 'Finance requests answered from their Idempotency-Key (same key, same body): nothing published', labelNames: ['action'], registers: [registry] }));
    this.idempotencyConflicts = once(registry, 'fastgpu_billing_idempotency_conflicts_total', () => new Counter({ name: 'fastgpu_billing_idempotency_conflicts_total', help: 'Finance requests refused with 409 because their Idempotency-Key was used for another body', labelNames: ['action'], registers: [registry] }));
  }
}

/** One metric per name and registry (a process may start the billing module more than once, e.g. in tests). */
function once<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}
