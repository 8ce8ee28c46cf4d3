import { sql, type Insertable } from 'kysely';
import { subtaskPlacementEventTypes, type EventType, type StoredEvent } from '@fastgpu/contracts';
import type { Database } from '@fastgpu/db';
import type { Projection, ProjectionContext, ProjectionTransaction } from '@fastgpu/messaging';
import { attemptKey, foldSla, keysOf, type AttemptRow, type IncidentRow, type JobRow, type NodeRow, type SlaChanges, type SlaFoldOptions, type SlaRows } from './sla.fold';

export { InterruptionCause, SliName, type SlaFoldOptions as SlaProjectionOptions } from './sla.fold';

/**
 * The SLA read model, folded from the domain log by a ProjectionRunner (so it rebuilds like
 * every projection; every table goes through `context.table`). Per batch: load every row the
 * batch can touch in a few queries, fold the batch in memory (`foldSla`, pure), write the changed
 * rows back with one multi-row upsert per table.
 */
export const SLA_PROJECTION = 'reliability-sla';

const types: ReadonlySet<EventType> = new Set<EventType>([
  'JobSubmitted',
  ...subtaskPlacementEventTypes,
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

/** Rows per multi-row statement (bounded by Postgres' 65 535 bind parameters at 19 columns). */
const WRITE_ROWS_MAX = 1_000;

const jobColumns = ['job_id', 'tenant_id', 'project_id', 'capacity_type', 'submitted_at_ms', 'outcome', 'completed_at_ms', 'platform_fault', 'sequence'] as const;
const attemptColumns = [
  'subtask_id',
  'attempt',
  'job_id',
  'tenant_id',
  'node_id',
  'gpus',
  'capacity_type',
  'lease_epoch',
  'placed_at_ms',
  'queue_wait_ms',
  'started_at_ms',
  'ended_at_ms',
  'end_kind',
  'revoked_reason',
  'interruption_cause',
  'interrupted_at_ms',
  'resumed_at_ms',
  'resumed_by',
  'sequence',
] as const;
const nodeColumns = ['node_id', 'gpu_model', 'gpu_count', 'registered_at_ms', 'reports_rejected', 'heartbeats_rejected'] as const;
const incidentColumns = ['incident_id', 'node_id', 'kind', 'started_at_ms', 'detected_at_ms', 'ended_at_ms', 'reason', 'automatic', 'sequence'] as const;

export function slaProjection(options: SlaFoldOptions): Projection {
  return {
    name: SLA_PROJECTION,
    types,
    async apply(trx, events, context) {
      const rows = await load(trx, context, events);
      const changes = foldSla(rows, events, options);
      await write(trx, context, rows, changes);
    },
  };
}

// int8 columns arrive as numbers (libs/db normalises them once).
async function load(trx: ProjectionTransaction, context: ProjectionContext, events: readonly StoredEvent[]): Promise<SlaRows> {
  const t = <N extends string>(name: N) => context.table(name);
  const keys = keysOf(events);
  const rows: SlaRows = { jobs: new Map(), attempts: new Map(), nodes: new Map(), incidents: new Map() };
  const jobIds = [...keys.jobIds];
  const subtaskIds = [...keys.subtaskIds];
  const completed = [...keys.completedJobIds];
  const lost = [...keys.lostNodeIds];
  const nodeIds = [...keys.nodeIds];
  if (jobIds.length) {
    for (const row of (await trx.selectFrom(t('reliability_sla_jobs')).selectAll().where('job_id', 'in', jobIds).execute()) as JobRow[]) rows.jobs.set(row.job_id, row);
  }
  if (subtaskIds.length || completed.length || lost.length) {
    const attempts = (await trx
      .selectFrom(t('reliability_sla_attempts'))
      .selectAll()
      .where((eb) =>
        eb.or([
          ...(subtaskIds.length ? [eb('subtask_id', 'in', subtaskIds)] : []),
          ...(completed.length ? [eb('job_id', 'in', completed)] : []),
          ...(lost.length ? [eb.and([eb('node_id', 'in', lost), eb('ended_at_ms', 'is', null)])] : []),
        ]),
      )
      .execute()) as AttemptRow[];
    for (const row of attempts) rows.attempts.set(attemptKey(row.subtask_id, row.attempt), row);
  }
  if (nodeIds.length) {
    for (const row of (await trx.selectFrom(t('reliability_sla_nodes')).selectAll().where('node_id', 'in', nodeIds).execute()) as NodeRow[]) rows.nodes.set(row.node_id, row);
    const open = (await trx.selectFrom(t('reliability_sla_incidents')).selectAll().where('node_id', 'in', nodeIds).where('ended_at_ms', 'is', null).execute()) as IncidentRow[];
    for (const row of open) rows.incidents.set(row.incident_id, row);
  }
  return rows;
}

type SlaTable = 'reliability_sla_jobs' | 'reliability_sla_attempts' | 'reliability_sla_nodes' | 'reliability_sla_incidents';
type ColumnOf<N extends SlaTable> = keyof Database[N] & string;

async function upsert<N extends SlaTable>(trx: ProjectionTransaction, table: N, keyColumns: readonly ColumnOf<N>[], columns: readonly ColumnOf<N>[], values: Insertable<Database[N]>[]): Promise<void> {
  // Every column but the key takes the proposed row's value. Kysely cannot check a column set built
  // at run time against a table that is a type parameter; each name is a ColumnOf<N>.
  const excludedSet = Object.fromEntries(columns.filter((c) => !keyColumns.includes(c)).map((c) => [c, sql.ref(`excluded.${c}`)]));
  for (let start = 0; start < values.length; start += WRITE_ROWS_MAX) {
    const slice = values.slice(start, start + WRITE_ROWS_MAX);
    await trx
      .insertInto(table)
      .values(slice)
      .onConflict((oc) => oc.columns(keyColumns).doUpdateSet(excludedSet as never))
      .execute();
  }
}

async function write(trx: ProjectionTransaction, context: ProjectionContext, rows: SlaRows, changes: SlaChanges): Promise<void> {
  const t = <N extends string>(name: N) => context.table(name);
  const pick = <T>(map: Map<string, T>, keys: Set<string>) => [...keys].sort().map((key) => map.get(key)!);
  await upsert(trx, t('reliability_sla_jobs'), ['job_id'], jobColumns, pick(rows.jobs, changes.jobs));
  await upsert(trx, t('reliability_sla_attempts'), ['subtask_id', 'attempt'], attemptColumns, pick(rows.attempts, changes.attempts));
  await upsert(trx, t('reliability_sla_nodes'), ['node_id'], nodeColumns, pick(rows.nodes, changes.nodes));
  await upsert(trx, t('reliability_sla_incidents'), ['incident_id'], incidentColumns, pick(rows.incidents, changes.incidents));
  if (changes.credits.length) {
    await trx
      .insertInto(t('reliability_sla_credits'))
      .values(changes.credits)
      .onConflict((oc) => oc.column('credit_id').doNothing())
      .execute();
  }
  const minutes = [...changes.sliMinutes.values()];
  const sliTable = t('reliability_sli_minutes');
  for (let start = 0; start < minutes.length; start += WRITE_ROWS_MAX) {
    await trx
      .insertInto(sliTable)
      .values(minutes.slice(start, start + WRITE_ROWS_MAX))
      .onConflict((oc) =>
        oc.columns(['sli', 'minute_ms']).doUpdateSet({
          total: sql<number>`${sql.ref(`${sliTable}.total`)} + excluded.total`,
          good: sql<number>`${sql.ref(`${sliTable}.good`)} + excluded.good`,
        }),
      )
      .execute();
  }
}
