import { sql, type Insertable } from 'kysely';
import { judgeNodeReport, subtaskPlacementEventTypes, type DomainEvent, type EventType, type StoredEvent } from '@fastgpu/contracts';
import type { JobsTable, SubtasksTable } from '@fastgpu/db';
import type { Projection, ProjectionContext, ProjectionTransaction } from '@fastgpu/messaging';
import { recordRejectedNodeReport } from '@fastgpu/observability';

/**
 * The jobs read model behind GET /v1/jobs/{id}: a job's state and its sub-tasks' states,
 * folded from intake, scheduler and node-agent events. A node report counts only when it matches
 * the sub-task's current placement by the rule every consumer of node reports shares (libs/contracts
 * `judgeNodeReport`: node, sub-task, attempt, lease epoch); any other changes nothing.
 */
export const JOB_STATES = ['pending', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export type SubtaskState = 'pending' | 'placed' | 'running' | 'succeeded' | 'failed' | 'preempted' | 'cancelled';

const types: EventType[] = [
  'JobSubmitted',
  'SubtaskCreated',
  ...subtaskPlacementEventTypes,
  'JobCancelRequested',
  'JobCompleted',
];

/** Rows inserted in one statement per batch: submissions are the bulk of the traffic. */
interface PendingInserts {
  jobs: Array<Insertable<JobsTable>>;
  subtasks: Array<Insertable<SubtasksTable>>;
}

async function flushInserts(trx: ProjectionTransaction, pending: PendingInserts, ctx: ProjectionContext): Promise<void> {
  if (pending.jobs.length) {
    await trx.insertInto(ctx.table('jobs')).values(pending.jobs).onConflict((oc) => oc.column('job_id').doNothing()).execute();
    pending.jobs = [];
  }
  if (pending.subtasks.length) {
    await trx.insertInto(ctx.table('subtasks')).values(pending.subtasks).onConflict((oc) => oc.column('subtask_id').doNothing()).execute();
    pending.subtasks = [];
  }
}

/** Largest multi-row insert (Postgres allows 65,535 parameters; a subtask row has 7). */
const INSERT_ROWS_MAX = 5000;

/** Whether a node report matches the sub-task's current placement (placed or running); a refusal is counted and logged when live. */
async function reportAccepted(trx: ProjectionTransaction, stored: StoredEvent, report: DomainEvent<'SubtaskStarted' | 'SubtaskCompleted' | 'SubtaskFailed'>, ctx: ProjectionContext): Promise<boolean> {
  const d = report.data;
  const row = await trx.selectFrom(ctx.table('subtasks')).select(['node_id', 'attempt', 'lease_epoch', 'state']).where('subtask_id', '=', d.subtaskId).executeTakeFirst();
  const current = row && (row.state === 'placed' || row.state === 'running') && row.node_id !== null ? { nodeId: row.node_id, subtaskId: d.subtaskId, attempt: Number(row.attempt), leaseEpoch: Number(row.lease_epoch) } : undefined;
  const judgement = judgeNodeReport(current, { ...d, subject: stored.subject });
  if (!judgement.ok && ctx.live) recordRejectedNodeReport({ consumer: 'intake-jobs', eventId: report.id, sequence: stored.sequence, type: report.type, nodeId: d.nodeId, subject: stored.subject, subtaskId: d.subtaskId, code: judgement.code, reason: judgement.reason });
  return judgement.ok;
}

async function applyUpdate(trx: ProjectionTransaction, stored: StoredEvent, ctx: ProjectionContext): Promise<void> {
  const jobs = ctx.table('jobs');
  const subtasks = ctx.table('subtasks');
  const { event, sequence } = stored;
  switch (event.type) {
    case 'SubtaskPlaced': {
      const d = event.data;
      await trx
        .updateTable(subtasks)
        .set({ state: 'placed', attempt: d.attempt, lease_epoch: d.leaseEpoch, node_id: d.nodeId, gpu_model: d.gpuModel, placed_at: new Date(d.placedAt), started_at: null, ended_at: null, exit_code: null, reason: null })
        .where('subtask_id', '=', d.subtaskId)
        .where('attempt', '<', d.attempt)
        .execute();
      await trx.updateTable(jobs).set({ state: 'running', last_sequence: sequence }).where('job_id', '=', d.jobId).where('state', '=', 'pending').execute();
      return;
    }
    case 'SubtaskStarted': {
      const d = event.data;
      if (!(await reportAccepted(trx, stored, event, ctx))) return;
      await trx.updateTable(subtasks).set({ state: 'running', started_at: new Date(d.startedAt) }).where('subtask_id', '=', d.subtaskId).where('lease_epoch', '=', d.leaseEpoch).where('state', '=', 'placed').execute();
      return;
    }
    case 'SubtaskCompleted':
    case 'SubtaskFailed': {
      const d = event.data;
      if (!(await reportAccepted(trx, stored, event, ctx))) return;
      const failed = event.type === 'SubtaskFailed';
      await trx
        .updateTable(subtasks)
        .set({ state: failed ? 'failed' : 'succeeded', ended_at: new Date(d.endedAt), exit_code: d.exitCode, reason: event.type === 'SubtaskFailed' ? event.data.reason : null })
        .where('subtask_id', '=', d.subtaskId)
        .where('lease_epoch', '=', d.leaseEpoch)
        .where('state', 'in', ['placed', 'running'])
        .execute();
      return;
    }
    case 'SubtaskPreempted': {
      const d = event.data;
      await trx.updateTable(subtasks).set({ state: d.fault === 'user' ? 'cancelled' : 'preempted', ended_at: new Date(d.preemptedAt), reason: d.reason }).where('subtask_id', '=', d.subtaskId).where('lease_epoch', '=', d.leaseEpoch).execute();
      return;
    }
    case 'SubtaskRequeued': {
      const d = event.data;
      await trx.updateTable(subtasks).set({ state: 'pending', reason: d.reason }).where('subtask_id', '=', d.subtaskId).where('attempt', '=', d.previousAttempt).execute();
      return;
    }
    case 'SubtaskAbandoned': {
      const d = event.data;
      await trx.updateTable(subtasks).set({ state: 'failed', reason: d.reason }).where('subtask_id', '=', d.subtaskId).execute();
      return;
    }
    case 'JobCancelRequested': {
      const d = event.data;
      await trx.updateTable(jobs).set({ state: 'cancelling', last_sequence: sequence }).where('job_id', '=', d.jobId).where('state', 'in', ['pending', 'running']).execute();
      return;
    }
    case 'JobCompleted': {
      const d = event.data;
      await trx
        .updateTable(jobs)
        .set({ state: d.outcome, completed_at: new Date(d.completedAt), outcome_reason: d.reason ?? null, gpu_ms_observed: d.gpuMsObserved, last_sequence: sequence })
        .where('job_id', '=', d.jobId)
        .execute();
      await trx.updateTable(subtasks).set({ state: 'cancelled' }).where('job_id', '=', d.jobId).where('state', 'in', ['pending', 'placed']).where(sql<boolean>`${d.outcome} = 'cancelled'`).execute();
      return;
    }
    default:
      return;
  }
}

export const jobsProjection: Projection = {
  name: 'intake-jobs',
  types: new Set(types),
  async apply(trx, events, ctx) {
    // Inserts are gathered and written before the next update, so order is kept: a sub-task
    // created and placed in the same batch is inserted before its placement is applied.
    const pending: PendingInserts = { jobs: [], subtasks: [] };
    for (const stored of events) {
      const { event, sequence } = stored;
      if (event.type === 'JobSubmitted') {
        const d = event.data;
        pending.jobs.push({ job_id: d.jobId, tenant_id: d.tenantId, project_id: d.projectId, name: d.name ?? null, spec: JSON.stringify(d), state: 'pending', submitted_at: new Date(d.submittedAt), last_sequence: sequence });
      } else if (event.type === 'SubtaskCreated') {
        const d = event.data;
        pending.subtasks.push({ subtask_id: d.subtaskId, job_id: d.jobId, tenant_id: d.tenantId, index: d.index, gpus: d.gpus, runtime_ms: d.runtimeMs, state: 'pending' });
      } else {
        await flushInserts(trx, pending, ctx);
        await applyUpdate(trx, stored, ctx);
      }
      if (pending.jobs.length + pending.subtasks.length >= INSERT_ROWS_MAX) await flushInserts(trx, pending, ctx);
    }
    await flushInserts(trx, pending, ctx);
  },
};

/** Tables this projection owns, for rebuilds. */
export const jobsProjectionTables = ['jobs', 'subtasks'] as const;
