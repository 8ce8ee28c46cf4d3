import type { LiveEvent } from './live';
import type { JobSummary } from './types';

/**
 * How live events change a job's summary row, the way the jobs read model folds them
 * (apps/intake jobs.projection.ts): submitted → pending; the first placement → running; a cancel
 * request → cancelling; JobCompleted → its outcome. Pure: answers the new row, or undefined when
 * the event does not change it (or names no job).
 */
export function nextJobRow(row: JobSummary | undefined, event: LiveEvent): JobSummary | undefined {
  const d = event.data;
  switch (event.type) {
    case 'JobSubmitted': {
      if (row || typeof d.jobId !== 'string') return undefined;
      return {
        jobId: d.jobId,
        tenantId: typeof d.tenantId === 'string' ? d.tenantId : (event.tenantId ?? ''),
        projectId: typeof d.projectId === 'string' ? d.projectId : '',
        name: typeof d.name === 'string' ? d.name : null,
        state: 'pending',
        reason: null,
        submittedAt: typeof d.submittedAt === 'string' ? d.submittedAt : event.time,
        completedAt: null,
        gpuMsObserved: null,
      };
    }
    case 'SubtaskPlaced':
      return row && row.state === 'pending' ? { ...row, state: 'running' } : undefined;
    case 'JobCancelRequested':
      return row && (row.state === 'pending' || row.state === 'running') ? { ...row, state: 'cancelling' } : undefined;
    case 'JobCompleted': {
      if (!row || typeof d.outcome !== 'string') return undefined;
      return {
        ...row,
        state: d.outcome,
        reason: typeof d.reason === 'string' ? d.reason : row.reason,
        completedAt: typeof d.completedAt === 'string' ? d.completedAt : event.time,
        gpuMsObserved: typeof d.gpuMsObserved === 'number' ? d.gpuMsObserved : row.gpuMsObserved,
      };
    }
    default:
      return undefined;
  }
}

/**
 * Applies a batch of events to the rows (newest first) and their index by job id. Answers the
 * same array when nothing changed, so memoised row models are not recomputed for nothing.
 */
export function applyJobEvents(rows: readonly JobSummary[], index: Map<string, number>, events: readonly LiveEvent[]): readonly JobSummary[] {
  let next: JobSummary[] | undefined;
  const added: JobSummary[] = [];
  for (const event of events) {
    const jobId = event.data.jobId;
    if (typeof jobId !== 'string') continue;
    const at = index.get(jobId);
    const current = at === undefined ? added.find((r) => r.jobId === jobId) : (next ?? rows)[at];
    const changed = nextJobRow(current, event);
    if (!changed) continue;
    if (at === undefined && !current) {
      added.push(changed);
    } else if (at === undefined) {
      added[added.indexOf(current as JobSummary)] = changed;
    } else {
      next ??= rows.slice();
      next[at] = changed;
    }
  }
  if (added.length === 0) return next ?? rows;
  const merged = [...added.reverse(), ...(next ?? rows)];
  index.clear();
  merged.forEach((row, i) => index.set(row.jobId, i));
  return merged;
}
