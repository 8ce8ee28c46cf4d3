import { sql } from 'kysely';
import { nameId } from '@fastgpu/contracts';
import { readCheckpoint, type AnyDatabase } from '@fastgpu/db';
import type { EventPublisher } from '@fastgpu/messaging';
import type { ReliabilityConfig } from '../reliability.config';
import { currentSloStates } from '../slo/slo-states';
import type { SloState } from '../slo/slo';
import { SLA_PROJECTION } from './sla.projection';
import {
  breaches,
  buildSlaReport,
  periodBounds,
  type IncidentFacts,
  type InterruptionFacts,
  type IssuedCredit,
  type NodeFacts,
  type ServedReport,
  type SlaFacts,
  type SlaReport,
} from './sla.report';

/** Tenants in one report request at most (a platform-wide view of a month). */
export const REPORT_TENANTS_MAX = 10_000;
/** Interruptions listed in one report at most; beyond this the report says it was cut. */
export const REPORT_INTERRUPTIONS_MAX = 50_000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Db = AnyDatabase | import('kysely').Transaction<any>;

/**
 * The shell around the SLA report: reads facts out of the read model in one repeatable-read
 * transaction together with the projection's checkpoint (so the report names the exact event
 * window it saw), builds reports, and closes months: the final report is stored once, and each
 * breach becomes an `SlaCreditIssued` citing that report's hash and window end sequence.
 */
export class SlaService {
  constructor(
    private readonly db: AnyDatabase,
    private readonly config: ReliabilityConfig,
    private readonly publisher?: EventPublisher,
  ) {}

  private policy() {
    return { allocationAvailability: this.config.sla.allocationAvailability, apiAvailability: this.config.sla.apiAvailability, requeueTargetMs: this.config.requeueTargetMs };
  }

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

  /**
   * Reports for a month: the stored final report when the month is closed, else a provisional
   * one as of `nowMs`. `tenantId` null means every tenant with activity.
   */
  async reports(period: string, tenantId: string | null, nowMs: number): Promise<ServedReport[]> {
    const tenants = tenantId ? [tenantId] : await this.tenantsWithActivity(period);
    const sloCache = new Map<number, Promise<SloState[]>>();
    const out: ServedReport[] = [];
    for (const tenant of tenants) {
      const snapshot = await this.db.selectFrom('reliability_sla_report_snapshots').select('report_json').where('tenant_id', '=', tenant).where('period', '=', period).executeTakeFirst();
      const report = snapshot ? (JSON.parse(snapshot.report_json as string) as SlaReport) : await this.build(tenant, period, nowMs, false, sloCache);
      out.push({ ...report, credits: await this.credits(tenant, period) });
    }
    return out;
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

  /**
   * The platform's SLO states at a report's end, computed once per instant however many tenant
   * reports carry them (they are the same for every tenant).
   */
  private slosAt(asOfMs: number, cache: Map<number, Promise<SloState[]>>): Promise<SloState[]> {
    let states = cache.get(asOfMs);
    if (!states) cache.set(asOfMs, (states = currentSloStates(this.db, this.config, asOfMs)));
    return states;
  }

  /** Builds one report from the read model as it stands, with the checkpoint it was read at. */
  async build(tenantId: string, period: string, nowMs: number, final: boolean, sloCache = new Map<number, Promise<SloState[]>>()): Promise<SlaReport> {
    const { endMs } = periodBounds(period);
    const asOfMs = final ? endMs : Math.min(nowMs, endMs);
    const facts = await this.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute((trx) => this.loadFacts(trx, tenantId, period, asOfMs, final));
    return buildSlaReport({ ...facts, slos: await this.slosAt(asOfMs, sloCache) }, this.policy());
  }

  private async loadFacts(db: Db, tenantId: string, period: string, asOfMs: number, final: boolean): Promise<Omit<SlaFacts, 'slos'>> {
    const { startMs } = periodBounds(period);
    const endMs = asOfMs;
    const checkpoint = await readCheckpoint(db as AnyDatabase, SLA_PROJECTION);
    const windowEndSequence = checkpoint ? Number(checkpoint.last_sequence) : 0;

    const allocated = await sql<{ gpu_ms: string | null }>`
      select sum(gpus::numeric * (least(coalesce(ended_at_ms, ${endMs}), ${endMs}) - greatest(placed_at_ms, ${startMs}))) as gpu_ms
      from reliability_sla_attempts
      where tenant_id = ${tenantId} and capacity_type <> 'preemptible'
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

  /**
   * Closes a month for the given tenants (default: all with activity): stores the final report
   * once (the first instance to close it wins; a standby reads the stored one back) and issues
   * one credit per breached metric, with a deterministic id, citing that report.
   */
  async closePeriod(period: string, nowMs: number, tenantIds?: string[]): Promise<Array<{ tenantId: string; report: SlaReport; credits: string[] }>> {
    if (!this.publisher) throw new Error('closing a period needs a publisher');
    const { endMs } = periodBounds(period);
    if (nowMs < endMs) throw new Error(`period ${period} has not ended yet`);
    const tenants = tenantIds ?? (await this.tenantsWithActivity(period));
    const sloCache = new Map<number, Promise<SloState[]>>();
    const closed: Array<{ tenantId: string; report: SlaReport; credits: string[] }> = [];
    for (const tenantId of tenants) {
      const built = await this.build(tenantId, period, nowMs, true, sloCache);
      await this.db
        .insertInto('reliability_sla_report_snapshots')
        .values({ tenant_id: tenantId, period, window_end_sequence: built.windowEndSequence, report_hash: built.hash, report_json: JSON.stringify(built) })
        .onConflict((oc) => oc.columns(['tenant_id', 'period']).doNothing())
        .execute();
      const stored = await this.db.selectFrom('reliability_sla_report_snapshots').select('report_json').where('tenant_id', '=', tenantId).where('period', '=', period).executeTakeFirstOrThrow();
      const report = JSON.parse(stored.report_json as string) as SlaReport;
      const credits: string[] = [];
      const issued = new Set((await this.credits(tenantId, period)).map((c) => c.creditId));
      for (const breach of breaches(report)) {
        const creditId = nameId('SlaCreditIssued', tenantId, period, breach.metric);
        credits.push(creditId);
        if (issued.has(creditId)) continue;
        const event = this.publisher.build(
          'SlaCreditIssued',
          { creditId, tenantId, period, ...breach, reportHash: report.hash, windowEndSequence: report.windowEndSequence, issuedAt: new Date(nowMs).toISOString() },
          { id: creditId, time: new Date(nowMs).toISOString(), tenantId, correlationId: creditId },
        );
        await this.publisher.publish(event);
      }
      await this.db.updateTable('reliability_sla_report_snapshots').set({ credits_published_at: sql`now()` }).where('tenant_id', '=', tenantId).where('period', '=', period).execute();
      closed.push({ tenantId, report, credits });
    }
    return closed;
  }

  /** Tenants of a month without a final report, or whose credits were not all published yet. */
  async tenantsToClose(period: string): Promise<string[]> {
    const active = await this.tenantsWithActivity(period);
    if (active.length === 0) return [];
    const closed = await this.db.selectFrom('reliability_sla_report_snapshots').select('tenant_id').where('period', '=', period).where('credits_published_at', 'is not', null).execute();
    const done = new Set(closed.map((r) => r.tenant_id as string));
    return active.filter((t) => !done.has(t));
  }
}
