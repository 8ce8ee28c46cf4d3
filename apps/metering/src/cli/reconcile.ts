import { sql, type Kysely } from 'kysely';
import type { MeteringDatabase } from '@fastgpu/db';

/** Differing jobs listed with their attempts at most (the count is always complete). */
export const RECONCILE_DETAILS_MAX = 200;

export interface AttemptUsage {
  subtaskId: string;
  attempt: number;
  gpuMs: number | null;
  endReason: string | null;
  interrupted: boolean;
}

export interface JobDifference {
  jobId: string;
  tenantId: string;
  outcome: string;
  gpuMsObserved: number;
  gpuMsMetered: number;
  /** metered − observed */
  deltaGpuMs: number;
  /** Attempts metering still holds open (started, not ended) for this job. */
  openAttempts: number;
  attempts: AttemptUsage[];
}

export interface ReconcileReport {
  jobsCompared: number;
  jobsMatching: number;
  differences: JobDifference[];
  differencesTotal: number;
  /** Jobs with metered usage and no JobCompleted yet (not compared). */
  jobsNotCompleted: number;
}

/**
 * Checks metered GPU-ms per job against the scheduler's record (`JobCompleted.gpuMsObserved`,
 * the GPU-ms it saw run over all attempts) and lists every job where they differ, with the
 * attempts metering saw.
 */
export async function reconcileJobs(db: Kysely<MeteringDatabase>, options: { tenantId?: string } = {}): Promise<ReconcileReport> {
  const tenantFilter = options.tenantId ? sql`AND o.tenant_id = ${options.tenantId}` : sql``;
  const { rows } = await sql<{ job_id: string; tenant_id: string; outcome: string; gpu_ms_observed: number; gpu_ms_metered: number; open_attempts: number }>`
    WITH metered AS (
      SELECT job_id, sum(gpu_ms)::int8 AS gpu_ms FROM metering_usage_hourly WHERE job_id <> '' GROUP BY job_id
    ), open AS (
      SELECT job_id, count(*)::int8 AS n FROM metering_allocations
      WHERE kind = 'subtask' AND gpu_ms IS NULL AND start_ms IS NOT NULL GROUP BY job_id
    )
    SELECT o.job_id, o.tenant_id, o.outcome, o.gpu_ms_observed, coalesce(m.gpu_ms, 0)::int8 AS gpu_ms_metered, coalesce(op.n, 0)::int8 AS open_attempts
    FROM metering_job_observations o
    LEFT JOIN metered m ON m.job_id = o.job_id
    LEFT JOIN open op ON op.job_id = o.job_id
    WHERE true ${tenantFilter}
    ORDER BY o.job_id`.execute(db);
  const differing = rows.filter((r) => Number(r.gpu_ms_metered) !== Number(r.gpu_ms_observed) || Number(r.open_attempts) > 0);
  const detailed = differing.slice(0, RECONCILE_DETAILS_MAX);
  const attempts = new Map<string, AttemptUsage[]>();
  if (detailed.length) {
    const { rows: attemptRows } = await sql<{ job_id: string; subtask_id: string; attempt: number; gpu_ms: number | null; end_reason: string | null; interrupted: boolean }>`
      SELECT job_id, subtask_id, attempt, gpu_ms, end_reason, interrupted FROM metering_allocations
      WHERE kind = 'subtask' AND job_id = ANY(${detailed.map((d) => d.job_id)}::text[])
      ORDER BY job_id, subtask_id, attempt`.execute(db);
    for (const r of attemptRows) {
      const list = attempts.get(r.job_id) ?? [];
      list.push({ subtaskId: r.subtask_id, attempt: Number(r.attempt), gpuMs: r.gpu_ms === null ? null : Number(r.gpu_ms), endReason: r.end_reason, interrupted: r.interrupted });
      attempts.set(r.job_id, list);
    }
  }
  const notCompleted = await sql<{ n: number }>`
    SELECT count(DISTINCT job_id)::int8 AS n FROM metering_allocations a
    WHERE kind = 'subtask' AND job_id <> '' AND NOT EXISTS (SELECT 1 FROM metering_job_observations o WHERE o.job_id = a.job_id)
    ${options.tenantId ? sql`AND a.tenant_id = ${options.tenantId}` : sql``}`.execute(db);
  return {
    jobsCompared: rows.length,
    jobsMatching: rows.length - differing.length,
    differencesTotal: differing.length,
    jobsNotCompleted: Number(notCompleted.rows[0]?.n ?? 0),
    differences: detailed.map((d) => ({
      jobId: d.job_id,
      tenantId: d.tenant_id,
      outcome: d.outcome,
      gpuMsObserved: Number(d.gpu_ms_observed),
      gpuMsMetered: Number(d.gpu_ms_metered),
      deltaGpuMs: Number(d.gpu_ms_metered) - Number(d.gpu_ms_observed),
      openAttempts: Number(d.open_attempts),
      attempts: attempts.get(d.job_id) ?? [],
    })),
  };
}

export function formatReconcileReport(report: ReconcileReport): string[] {
  const lines = [
    `jobs compared: ${report.jobsCompared}, matching: ${report.jobsMatching}, different: ${report.differencesTotal}, with usage but not completed: ${report.jobsNotCompleted}`,
  ];
  for (const d of report.differences) {
    lines.push(`  job ${d.jobId} (tenant ${d.tenantId}, ${d.outcome}): metered ${d.gpuMsMetered} GPU-ms, scheduler observed ${d.gpuMsObserved}, delta ${d.deltaGpuMs >= 0 ? '+' : ''}${d.deltaGpuMs}${d.openAttempts ? `, ${d.openAttempts} attempt(s) still open` : ''}`);
    for (const a of d.attempts) lines.push(`    ${a.subtaskId} attempt ${a.attempt}: ${a.gpuMs === null ? 'open' : `${a.gpuMs} GPU-ms`}${a.endReason ? `, ${a.endReason}` : ''}${a.interrupted ? ', interrupted' : ''}`);
  }
  if (report.differencesTotal > report.differences.length) lines.push(`  … ${report.differencesTotal - report.differences.length} more`);
  return lines;
}

/** `reconcile [--tenant <id>]`: prints the report; exit code 1 when any job differs. */
export async function runReconcile(args: string[], db: Kysely<MeteringDatabase>, io: { out(line: string): void }): Promise<number> {
  const tenantIndex = args.indexOf('--tenant');
  const tenantId = tenantIndex >= 0 ? args[tenantIndex + 1] : undefined;
  const report = await reconcileJobs(db, tenantId ? { tenantId } : {});
  for (const line of formatReconcileReport(report)) io.out(line);
  return report.differencesTotal ? 1 : 0;
}
