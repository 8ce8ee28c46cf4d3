import { sql } from 'kysely';
import type { DomainEvent, EventType, StoredEvent } from '@fastgpu/contracts';
import type { Projection, ProjectionContext, ProjectionTransaction } from '@fastgpu/messaging';
import { judgeReport, type Placement } from '../fencing/fencing.decider';

/**
 * The SLA read model, folded from the domain log by a ProjectionRunner (so it rebuilds like
 * every projection; every table goes through `context.table`). One row per job, per sub-task
 * attempt (placement, lease epoch, end, interruption and when the work resumed), per node,
 * per node incident, per SLA credit, and per SLI minute. Node reports are judged with the same
 * fencing rule as the liveness loop, so stale reports never count.
 */
export const SLA_PROJECTION = 'reliability-sla';

export const SliName = { jobStartLatency: 'job-start-latency', meteringFreshness: 'metering-freshness' } as const;
export type SliName = (typeof SliName)[keyof typeof SliName];

export interface SlaProjectionOptions {
  jobStartLatencyThresholdMs: number;
  meteringFreshnessThresholdMs: number;
}

export const InterruptionCause = { nodeLost: 'node-lost', preempted: 'preempted', drained: 'drained', platformFailure: 'platform-failure', requeued: 'requeued' } as const;
export type InterruptionCause = (typeof InterruptionCause)[keyof typeof InterruptionCause];

const types: ReadonlySet<EventType> = new Set<EventType>([
  'JobSubmitted',
  'SubtaskPlaced',
  'SubtaskStarted',
  'SubtaskCompleted',
  'SubtaskFailed',
  'SubtaskPreempted',
  'SubtaskRequeued',
  'SubtaskAbandoned',
  'JobCompleted',
  'NodeRegistered',
  'NodeLost',
  'NodeRecovered',
  'NodeDrained',
  'NodeUndrained',
  'ReportRejected',
  'SlaCreditIssued',
  'UsageRecorded',
]);

const MINUTE_MS = 60_000;
const ms = (instant: string) => Date.parse(instant);

interface AttemptRow {
  subtask_id: string;
  attempt: number;
  job_id: string;
  tenant_id: string;
  node_id: string;
  lease_epoch: number;
  placed_at_ms: number;
  ended_at_ms: number | null;
  revoked_reason: string | null;
  interruption_cause: string | null;
  interrupted_at_ms: number | null;
}

export function slaProjection(options: SlaProjectionOptions): Projection {
  return {
    name: SLA_PROJECTION,
    types,
    async apply(trx, events, context) {
      const writer = new SlaWriter(trx, context, options);
      for (const stored of events) await writer.apply(stored);
    },
  };
}

class SlaWriter {
  constructor(
    private readonly trx: ProjectionTransaction,
    private readonly context: ProjectionContext,
    private readonly options: SlaProjectionOptions,
  ) {}

  private t(name: string): string {
    return this.context.table(name);
  }

  async apply({ event, sequence }: StoredEvent): Promise<void> {
    switch (event.type) {
      case 'JobSubmitted':
        return this.jobSubmitted(event, sequence);
      case 'SubtaskPlaced':
        return this.subtaskPlaced(event, sequence);
      case 'SubtaskStarted':
      case 'SubtaskCompleted':
      case 'SubtaskFailed':
        return this.nodeReport(event);
      case 'SubtaskPreempted':
        return this.preempted(event);
      case 'SubtaskRequeued':
        return this.requeued(event);
      case 'SubtaskAbandoned':
        return this.abandoned(event);
      case 'JobCompleted':
        return this.jobCompleted(event);
      case 'NodeRegistered':
        return this.nodeRegistered(event);
      case 'NodeLost':
        return this.nodeLost(event, sequence);
      case 'NodeRecovered':
        return this.closeIncident(event.data.nodeId, 'lost', ms(event.data.recoveredAt));
      case 'NodeDrained':
        return this.openIncident(event.id, event.data.nodeId, 'drained', ms(event.data.drainedAt), null, event.data.reason, event.data.automatic, sequence);
      case 'NodeUndrained':
        return this.closeIncident(event.data.nodeId, 'drained', ms(event.data.undrainedAt));
      case 'ReportRejected':
        return this.reportRejected(event);
      case 'SlaCreditIssued':
        return this.creditIssued(event, sequence);
      case 'UsageRecorded':
        return this.usageRecorded(event);
      default:
        return;
    }
  }

  private async jobSubmitted(event: DomainEvent<'JobSubmitted'>, sequence: number): Promise<void> {
    const d = event.data;
    await this.trx
      .insertInto(this.t('reliability_sla_jobs'))
      .values({ job_id: d.jobId, tenant_id: d.tenantId, project_id: d.projectId, capacity_type: d.capacityType, submitted_at_ms: ms(d.submittedAt), sequence })
      .onConflict((oc) => oc.column('job_id').doNothing())
      .execute();
  }

  private async attempt(subtaskId: string, attempt?: number): Promise<AttemptRow | undefined> {
    let query = this.trx.selectFrom(this.t('reliability_sla_attempts')).selectAll().where('subtask_id', '=', subtaskId);
    query = attempt === undefined ? query.orderBy('attempt', 'desc').limit(1) : query.where('attempt', '=', attempt);
    return (await query.executeTakeFirst()) as AttemptRow | undefined;
  }

  private async subtaskPlaced(event: DomainEvent<'SubtaskPlaced'>, sequence: number): Promise<void> {
    const d = event.data;
    const placedAtMs = ms(d.placedAt);
    let queueWaitMs: number | null = null;
    if (d.attempt === 1) {
      const job = await this.trx.selectFrom(this.t('reliability_sla_jobs')).select('submitted_at_ms').where('job_id', '=', d.jobId).executeTakeFirst();
      if (job) {
        queueWaitMs = Math.max(0, placedAtMs - Number(job.submitted_at_ms));
        await this.countSli(SliName.jobStartLatency, placedAtMs, queueWaitMs <= this.options.jobStartLatencyThresholdMs);
      }
    }
    // The work of this sub-task runs again: interruptions before this placement end here.
    await this.trx
      .updateTable(this.t('reliability_sla_attempts'))
      .set({ resumed_at_ms: sql<number>`greatest(interrupted_at_ms, ${placedAtMs})`, resumed_by: 'placement' })
      .where('subtask_id', '=', d.subtaskId)
      .where('attempt', '<', d.attempt)
      .where('interrupted_at_ms', 'is not', null)
      .where('resumed_at_ms', 'is', null)
      .execute();
    // A placement that still holds its lease when a newer one appears is superseded.
    await this.trx
      .updateTable(this.t('reliability_sla_attempts'))
      .set({ revoked_reason: `superseded by attempt ${d.attempt}` })
      .where('subtask_id', '=', d.subtaskId)
      .where('attempt', '<', d.attempt)
      .where('revoked_reason', 'is', null)
      .execute();
    await this.trx
      .insertInto(this.t('reliability_sla_attempts'))
      .values({
        subtask_id: d.subtaskId,
        attempt: d.attempt,
        job_id: d.jobId,
        tenant_id: d.tenantId,
        node_id: d.nodeId,
        gpus: d.gpus,
        capacity_type: d.capacityType,
        lease_epoch: d.leaseEpoch,
        placed_at_ms: placedAtMs,
        queue_wait_ms: queueWaitMs,
        sequence,
      })
      .onConflict((oc) => oc.columns(['subtask_id', 'attempt']).doNothing())
      .execute();
  }

  private async nodeReport(event: DomainEvent<'SubtaskStarted'> | DomainEvent<'SubtaskCompleted'> | DomainEvent<'SubtaskFailed'>): Promise<void> {
    const d = event.data;
    const row = await this.attempt(d.subtaskId);
    const placement: Placement | undefined = row && {
      subtaskId: row.subtask_id,
      jobId: row.job_id,
      tenantId: row.tenant_id,
      attempt: row.attempt,
      leaseEpoch: row.lease_epoch,
      nodeId: row.node_id,
      placedAtMs: Number(row.placed_at_ms),
      revokedReason: row.revoked_reason ?? undefined,
    };
    if (!row || !judgeReport(placement, d).ok) return; // stale: rejected by the liveness loop, never counted
    const placedAtMs = Number(row.placed_at_ms);
    const where = this.trx.updateTable(this.t('reliability_sla_attempts')).where('subtask_id', '=', d.subtaskId).where('attempt', '=', d.attempt);
    if (event.type === 'SubtaskStarted') {
      await where.set({ started_at_ms: Math.max(placedAtMs, ms(event.data.startedAt)) }).where('started_at_ms', 'is', null).execute();
      return;
    }
    if (row.ended_at_ms !== null) return;
    const endedAtMs = Math.max(placedAtMs, ms(event.data.endedAt));
    if (event.type === 'SubtaskCompleted') {
      await where.set({ ended_at_ms: endedAtMs, end_kind: 'completed' }).execute();
      return;
    }
    const platform = event.data.fault === 'platform';
    await where
      .set({
        ended_at_ms: endedAtMs,
        end_kind: platform ? 'failed-platform' : 'failed-user',
        ...(platform ? { interruption_cause: InterruptionCause.platformFailure, interrupted_at_ms: endedAtMs } : {}),
      })
      .execute();
  }

  private async endAttempt(row: AttemptRow, atMs: number, endKind: string, cause: InterruptionCause, revokedReason: string): Promise<void> {
    const endedAtMs = Math.max(Number(row.placed_at_ms), atMs);
    await this.trx
      .updateTable(this.t('reliability_sla_attempts'))
      .set({ ended_at_ms: endedAtMs, end_kind: endKind, interruption_cause: cause, interrupted_at_ms: endedAtMs, revoked_reason: revokedReason })
      .where('subtask_id', '=', row.subtask_id)
      .where('attempt', '=', row.attempt)
      .execute();
  }

  private async preempted(event: DomainEvent<'SubtaskPreempted'>): Promise<void> {
    const d = event.data;
    const row = await this.attempt(d.subtaskId, d.attempt);
    if (!row || row.lease_epoch !== d.leaseEpoch || row.ended_at_ms !== null) return;
    // A preemption while the node is drained for health is a drain, not a priority decision.
    const drain = await this.trx
      .selectFrom(this.t('reliability_sla_incidents'))
      .select('incident_id')
      .where('node_id', '=', d.nodeId)
      .where('kind', '=', 'drained')
      .where('ended_at_ms', 'is', null)
      .executeTakeFirst();
    await this.endAttempt(row, ms(d.preemptedAt), 'preempted', drain ? InterruptionCause.drained : InterruptionCause.preempted, `preempted: ${d.reason}`);
  }

  private async requeued(event: DomainEvent<'SubtaskRequeued'>): Promise<void> {
    const d = event.data;
    const row = await this.attempt(d.subtaskId, d.previousAttempt);
    if (!row) return;
    if (row.ended_at_ms === null) {
      await this.endAttempt(row, ms(d.requeuedAt), 'requeued', InterruptionCause.requeued, `requeued: ${d.reason}`);
      return;
    }
    if (!row.revoked_reason) {
      await this.trx
        .updateTable(this.t('reliability_sla_attempts'))
        .set({ revoked_reason: `requeued: ${d.reason}` })
        .where('subtask_id', '=', d.subtaskId)
        .where('attempt', '=', d.previousAttempt)
        .execute();
    }
  }

  private async abandoned(event: DomainEvent<'SubtaskAbandoned'>): Promise<void> {
    const d = event.data;
    const atMs = ms(d.abandonedAt);
    const row = await this.attempt(d.subtaskId, d.attempt);
    if (row && row.ended_at_ms === null) await this.endAttempt(row, atMs, 'abandoned', InterruptionCause.requeued, `abandoned: ${d.reason}`);
    await this.resumeOpenInterruptions(this.trx.updateTable(this.t('reliability_sla_attempts')).where('subtask_id', '=', d.subtaskId), atMs, 'abandoned');
    await this.trx.updateTable(this.t('reliability_sla_jobs')).set({ platform_fault: true }).where('job_id', '=', d.jobId).execute();
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private async resumeOpenInterruptions(update: any, atMs: number, by: string): Promise<void> {
    await update
      .set({ resumed_at_ms: sql<number>`greatest(interrupted_at_ms, ${atMs})`, resumed_by: by })
      .where('interrupted_at_ms', 'is not', null)
      .where('resumed_at_ms', 'is', null)
      .execute();
  }

  private async jobCompleted(event: DomainEvent<'JobCompleted'>): Promise<void> {
    const d = event.data;
    const atMs = ms(d.completedAt);
    const platformFailures = await this.trx
      .selectFrom(this.t('reliability_sla_attempts'))
      .select('subtask_id')
      .where('job_id', '=', d.jobId)
      .where('end_kind', '=', 'failed-platform')
      .limit(1)
      .executeTakeFirst();
    await this.trx
      .updateTable(this.t('reliability_sla_jobs'))
      .set({ outcome: d.outcome, completed_at_ms: atMs, ...(d.outcome === 'failed' && platformFailures ? { platform_fault: true } : {}) })
      .where('job_id', '=', d.jobId)
      .execute();
    await this.trx
      .updateTable(this.t('reliability_sla_attempts'))
      .set({ ended_at_ms: sql<number>`greatest(placed_at_ms, ${atMs})`, end_kind: 'job-ended' })
      .where('job_id', '=', d.jobId)
      .where('ended_at_ms', 'is', null)
      .execute();
    await this.resumeOpenInterruptions(this.trx.updateTable(this.t('reliability_sla_attempts')).where('job_id', '=', d.jobId), atMs, 'job-completed');
  }

  private async nodeRegistered(event: DomainEvent<'NodeRegistered'>): Promise<void> {
    const d = event.data;
    await this.trx
      .insertInto(this.t('reliability_sla_nodes'))
      .values({ node_id: d.nodeId, gpu_model: d.gpuModel, gpu_count: d.gpuCount, registered_at_ms: ms(d.registeredAt) })
      .onConflict((oc) => oc.column('node_id').doUpdateSet({ gpu_model: d.gpuModel, gpu_count: d.gpuCount }))
      .execute();
  }

  private async nodeLost(event: DomainEvent<'NodeLost'>, sequence: number): Promise<void> {
    const d = event.data;
    const lastHeartbeatAtMs = ms(d.lastHeartbeatAt);
    await this.openIncident(event.id, d.nodeId, 'lost', lastHeartbeatAtMs, ms(d.detectedAt), d.reason, true, sequence);
    const open = (await this.trx
      .selectFrom(this.t('reliability_sla_attempts'))
      .selectAll()
      .where('node_id', '=', d.nodeId)
      .where('ended_at_ms', 'is', null)
      .where('revoked_reason', 'is', null)
      .execute()) as AttemptRow[];
    // The node's work is billed up to its last heartbeat; the time after is the platform's fault.
    for (const row of open) await this.endAttempt(row, lastHeartbeatAtMs, 'node-lost', InterruptionCause.nodeLost, `node ${d.nodeId} lost`);
  }

  private async openIncident(id: string, nodeId: string, kind: 'lost' | 'drained', startedAtMs: number, detectedAtMs: number | null, reason: string, automatic: boolean, sequence: number): Promise<void> {
    await this.trx
      .insertInto(this.t('reliability_sla_incidents'))
      .values({ incident_id: id, node_id: nodeId, kind, started_at_ms: startedAtMs, detected_at_ms: detectedAtMs, reason, automatic, sequence })
      .onConflict((oc) => oc.column('incident_id').doNothing())
      .execute();
  }

  private async closeIncident(nodeId: string, kind: 'lost' | 'drained', endedAtMs: number): Promise<void> {
    await this.trx
      .updateTable(this.t('reliability_sla_incidents'))
      .set({ ended_at_ms: sql<number>`greatest(started_at_ms, ${endedAtMs})` })
      .where('node_id', '=', nodeId)
      .where('kind', '=', kind)
      .where('ended_at_ms', 'is', null)
      .execute();
  }

  private async reportRejected(event: DomainEvent<'ReportRejected'>): Promise<void> {
    const column = event.data.reportType === 'Heartbeat' ? 'heartbeats_rejected' : 'reports_rejected';
    await this.trx
      .updateTable(this.t('reliability_sla_nodes'))
      .set({ [column]: sql<number>`${sql.ref(column)} + 1` })
      .where('node_id', '=', event.data.nodeId)
      .execute();
  }

  private async creditIssued(event: DomainEvent<'SlaCreditIssued'>, sequence: number): Promise<void> {
    const d = event.data;
    await this.trx
      .insertInto(this.t('reliability_sla_credits'))
      .values({
        credit_id: d.creditId,
        tenant_id: d.tenantId,
        period: d.period,
        metric: d.metric,
        measured: d.measured,
        target: d.target,
        credit_percent: d.creditPercent,
        report_hash: d.reportHash,
        window_end_sequence: d.windowEndSequence,
        issued_at_ms: ms(d.issuedAt),
        sequence,
      })
      .onConflict((oc) => oc.column('credit_id').doNothing())
      .execute();
  }

  private async usageRecorded(event: DomainEvent<'UsageRecorded'>): Promise<void> {
    const recordedAtMs = ms(event.time);
    const lagMs = recordedAtMs - ms(event.data.endAt);
    await this.countSli(SliName.meteringFreshness, recordedAtMs, lagMs <= this.options.meteringFreshnessThresholdMs);
  }

  private async countSli(sli: SliName, atMs: number, good: boolean): Promise<void> {
    const minuteMs = atMs - (((atMs % MINUTE_MS) + MINUTE_MS) % MINUTE_MS);
    const goodCount = good ? 1 : 0;
    await this.trx
      .insertInto(this.t('reliability_sli_minutes'))
      .values({ sli, minute_ms: minuteMs, total: 1, good: goodCount })
      .onConflict((oc) =>
        oc.columns(['sli', 'minute_ms']).doUpdateSet({ total: sql<number>`${sql.ref(`${this.t('reliability_sli_minutes')}.total`)} + 1`, good: sql<number>`${sql.ref(`${this.t('reliability_sli_minutes')}.good`)} + ${goodCount}` }),
      )
      .execute();
  }
}
