import { sql, type Kysely } from 'kysely';
import { CapacityType } from '@fastgpu/contracts';
import { readCheckpoint, type Queryable, type ReliabilityDatabase } from '@fastgpu/db';
import type { ReliabilityConfig } from '../reliability.config';
import { currentSloStates } from '../slo/slo-states';
import type { SloState } from '../slo/slo';
import { SLA_PROJECTION } from './sla.projection';
import { periodBounds } from './sla.period';
import { type IncidentFacts, type InterruptionFacts, type IssuedCredit, type NodeFacts, type SlaFacts, type SlaReport } from './sla.report';

/** Tenants in one report request at most (a platform-wide view of a month). */
export const REPORT_TENANTS_MAX = 10_000;
/** Interruptions listed in one report at most; beyond this the report says it was cut. */
export const REPORT_INTERRUPTIONS_MAX = 50_000;

/**
 * The SQL of the SLA report: the facts of a tenant's month out of the read model (in one
 * repeatable-read transaction together with the projection's checkpoint, so a report names the
 * exact event window it saw), the stored final reports, and the credits issued.
 */
export class SlaRepository {
  constructor(private readonly db: Kysely<ReliabilityDatabase>) {}

  /** Tenants with anything to report in the month: allocations, finished jobs, or API requests. */
  async tenantsWithActivity(period: string): Promise<string[]> {
    const { startMs, endMs } = periodBounds(period);
    const { rows } = await sql<{ tenant_id: string }>`
      select tenant_id from reliability_sla_attempts where placed_at_ms < ${endMs} and coalesce(ended_at_ms, resumed_at_ms, ${endMs}) >= ${startMs}
      union select tenant_id from reliability_sla_jobs where completed_at_ms >= ${startMs} and completed_at_ms < ${endMs}
      union select tenant_id from reliability_api_requests where minute_ms >= ${startMs} and minute_ms < ${endMs} and tenant_id <> '_platform'
      order by tenant_id limit ${REPORT_TENANTS_MAX}`.execute(this.db);
    return rows.map((r) => r.tenant_id);
  }

  /** Tenants whose final report of the month is stored and whose credits were all published. */
  async tenantsClosed(period: string): Promise<string[]> {
    const closed = await this.db.selectFrom('reliability_sla_report_snapshots').select('tenant_id').where('period', '=', period).where('credits_published_at', 'is not', null).execute();
    return closed.map((r) => r.tenant_id);
  }

  /** The final report a month was closed with, if it was. */
  async storedReport(tenantId: string, period: string): Promise<SlaReport | undefined> {
    const snapshot = await this.db.selectFrom('reliability_sla_report_snapshots').select('report_json').where('tenant_id', '=', tenantId).where('period', '=', period).executeTakeFirst();
    return snapshot ? (JSON.parse(snapshot.report_json) as SlaReport) : undefined;
  }

  /** Stores a month's final report unless one is stored already (the first instance to close it wins), and returns the stored one. */
  async storeFinalReport(report: SlaReport): Promise<SlaReport> {
    await this.db
      .insertInto('reliability_sla_report_snapshots')
      .values({ tenant_id: report.tenantId, period: report.period, window_end_sequence: report.windowEndSequence, report_hash: report.hash, report_json: JSON.stringify(report) })
      .onConflict((oc) => oc.columns(['tenant_id', 'period']).doNothing())
      .execute();
    const stored = await this.storedReport(report.tenantId, report.period);
    if (!stored) throw new Error(`the final SLA report of ${report.tenantId} for ${report.period} was not stored`);
    return stored;
  }

  async markCreditsPublished(tenantId: string, period: string): Promise<void> {
    await this.db.updateTable('reliability_sla_report_snapshots').set({ credits_published_at: sql`now()` }).where('tenant_id', '=', tenantId).where('period', '=', period).execute();
  }

  async credits(tenantId: string, period: string): Promise<IssuedCredit[]> {
    const rows = await this.db.selectFrom('reliability_sla_credits').selectAll().where('tenant_id', '=', tenantId).where('period', '=', period).orderBy('sequence').execute();
    return rows.map((r) => ({
      creditId: r.credit_id,
      metric: r.metric,
      measured: r.measured,
      target: r.target,
      creditPercent: Number(r.credit_percent),
      reportHash: r.report_hash,
      windowEndSequence: Number(r.window_end_sequence),
      issuedAt: new Date(Number(r.issued_at_ms)).toISOString(),
    }));
  }

  /** The platform's SLO states at an instant. */
  sloStates(config: Pick<ReliabilityConfig, 'slo'>, atMs: number): Promise<SloState[]> {
    return currentSloStates(this.db, config, atMs);
  }

  /** A tenant's facts of a month up to `asOfMs`, read in one repeatable-read transaction with the checkpoint. */
  facts(tenantId: string, period: string, asOfMs: number, final: boolean): Promise<Omit<SlaFacts, 'slos'>> {
    return this.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute((trx) => loadFacts(trx, tenantId, period, asOfMs, final));
  }
}

async function loadFacts(db: Queryable<ReliabilityDatabase>, tenantId: string, period: string, asOfMs: number, final: boolean): Promise<Omit<SlaFacts, 'slos'>> {
  const { startMs } = periodBounds(period);
  const endMs = asOfMs;
  const checkpoint = await readCheckpoint(db, SLA_PROJECTION);
  const windowEndSequence = checkpoint ? Number(checkpoint.last_sequence) : 0;

  const allocated = await sql<{ gpu_ms: string | null }>`
    select sum(gpus::numeric * (least(coalesce(ended_at_ms, ${endMs}), ${endMs}) - greatest(placed_at_ms, ${startMs}))) as gpu_ms
    from reliability_sla_attempts
    where tenant_id = ${tenantId} and capacity_type <> ${CapacityType.preemptible}
      and placed_at_ms < ${endMs} and coalesce(ended_at_ms, ${endMs}) > ${startMs}`.execute(db);

  const interruptions = await db
    .selectFrom('reliability_sla_attempts')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('interrupted_at_ms', 'is not', null)
    .where('interrupted_at_ms', '<', endMs)
    .where(sql<boolean>`coalesce(resumed_at_ms, ${endMs}) >= ${startMs}`)
    .orderBy('interrupted_at_ms')
    .limit(REPORT_INTERRUPTIONS_MAX)
    // The fold sets interruption_cause together with interrupted_at_ms (sla.fold.ts endAttempt).
    .$narrowType<{ interruption_cause: string; interrupted_at_ms: number }>()
    .execute();

  const jobs = await sql<{ succeeded: number; failed_user: number; failed_platform: number; cancelled: number }>`
    select count(*) filter (where outcome = 'succeeded') as succeeded,
           count(*) filter (where outcome = 'failed' and not platform_fault) as failed_user,
           count(*) filter (where outcome = 'failed' and platform_fault) as failed_platform,
           count(*) filter (where outcome = 'cancelled') as cancelled
    from reliability_sla_jobs
    where tenant_id = ${tenantId} and completed_at_ms >= ${startMs} and completed_at_ms < ${endMs}`.execute(db);

  const wait = await sql<{ count: number; p50: number | null; p95: number | null; p99: number | null }>`
    select count(*) as count,
           percentile_disc(0.5) within group (order by queue_wait_ms) as p50,
           percentile_disc(0.95) within group (order by queue_wait_ms) as p95,
           percentile_disc(0.99) within group (order by queue_wait_ms) as p99
    from reliability_sla_attempts
    where tenant_id = ${tenantId} and attempt = 1 and queue_wait_ms is not null
      and placed_at_ms >= ${startMs} and placed_at_ms < ${endMs}`.execute(db);

  const api = await sql<{ total: string | null; errors: string | null }>`
    select sum(total) as total, sum(errors) as errors from reliability_api_requests
    where tenant_id = ${tenantId} and minute_ms >= ${startMs} and minute_ms < ${endMs}`.execute(db);

  // The nodes that held this tenant's work in the window, with their incidents.
  const nodeRows = await sql<{ node_id: string; gpu_model: string; gpu_count: number; registered_at_ms: number; reports_rejected: number; heartbeats_rejected: number }>`
    select n.* from reliability_sla_nodes n
    where n.node_id in (select distinct node_id from reliability_sla_attempts
                        where tenant_id = ${tenantId} and placed_at_ms < ${endMs} and coalesce(ended_at_ms, ${endMs}) > ${startMs})
    order by n.node_id`.execute(db);
  const nodeIds = nodeRows.rows.map((n) => n.node_id);
  const incidentRows = nodeIds.length
    ? await db
        .selectFrom('reliability_sla_incidents')
        .selectAll()
        .where('node_id', 'in', nodeIds)
        .where('started_at_ms', '<', endMs)
        .where(sql<boolean>`coalesce(ended_at_ms, ${endMs}) > ${startMs}`)
        .execute()
    : [];
  const nodes: NodeFacts[] = nodeRows.rows.map((n) => ({
    nodeId: n.node_id,
    gpuModel: n.gpu_model,
    gpuCount: Number(n.gpu_count),
    registeredAtMs: Number(n.registered_at_ms),
    reportsRejected: Number(n.reports_rejected),
    heartbeatsRejected: Number(n.heartbeats_rejected),
    incidents: incidentRows
      .filter((i) => i.node_id === n.node_id)
      .map(
        (i): IncidentFacts => ({
          incidentId: i.incident_id,
          kind: i.kind,
          startedAtMs: Number(i.started_at_ms),
          endedAtMs: i.ended_at_ms === null ? null : Number(i.ended_at_ms),
          detectedAtMs: i.detected_at_ms === null ? null : Number(i.detected_at_ms),
          reason: i.reason,
          automatic: i.automatic,
        }),
      ),
  }));

  const j = jobs.rows[0]!;
  const w = wait.rows[0]!;
  return {
    tenantId,
    period,
    asOfMs,
    final,
    windowEndSequence,
    allocatedGpuMs: allocated.rows[0]?.gpu_ms ?? '0',
    interruptions: interruptions.map(
      (r): InterruptionFacts => ({
        subtaskId: r.subtask_id,
        jobId: r.job_id,
        attempt: Number(r.attempt),
        nodeId: r.node_id,
        gpus: Number(r.gpus),
        capacityType: r.capacity_type,
        cause: r.interruption_cause,
        startedAtMs: r.started_at_ms === null ? null : Number(r.started_at_ms),
        placedAtMs: Number(r.placed_at_ms),
        interruptedAtMs: Number(r.interrupted_at_ms),
        resumedAtMs: r.resumed_at_ms === null ? null : Number(r.resumed_at_ms),
        resumedBy: r.resumed_by,
      }),
    ),
    jobs: { succeeded: Number(j.succeeded), failedUser: Number(j.failed_user), failedPlatform: Number(j.failed_platform), cancelled: Number(j.cancelled) },
    queueWait: { count: Number(w.count), p50: w.p50 === null ? null : Number(w.p50), p95: w.p95 === null ? null : Number(w.p95), p99: w.p99 === null ? null : Number(w.p99) },
    apiRequests: { total: Number(api.rows[0]?.total ?? 0), errors: Number(api.rows[0]?.errors ?? 0) },
    nodes,
  };
}
