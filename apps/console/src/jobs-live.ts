import type { LiveEvent } from './live';
import type { JobSummary } from './types';

/**
 * How live events change a job's summary row, the way the jobs read model folds them
 * (apps/intake jobs.projection.ts): submitted → pending; the first placement → running; a cancel
 * request → cancelling; JobCompleted → its outcome. Pure: answers the new row, or undefined when
 * the event does not change it (or names no job).
 */
export function nextJobRow(row: JobSummary | undefined, event: LiveEvent): JobSummary | undefined {
  return Object.hasOwn(rowChanges, event.type) ? rowChanges[event.type as keyof typeof rowChanges](row, event) : undefined;
}

/** Each event type that changes a row, and how. */
const rowChanges = {
  JobSubmitted(row: JobSummary | undefined, event: LiveEvent): JobSummary | undefined {
    const d = event.data;
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
  },
  SubtaskPlaced: (row: JobSummary | undefined): JobSummary | undefined => (row && row.state === 'pending' ? { ...row, state: 'running' } : undefined),
  JobCancelRequested: (row: JobSummary | undefined): JobSummary | undefined => (row && (row.state === 'pending' || row.state === 'running') ? { ...row, state: 'cancelling' } : undefined),
  JobCompleted(row: JobSummary | undefined, event: LiveEvent): JobSummary | undefined {
    const d = event.data;
    if (!row || typeof d.outcome !== 'string') return undefined;
    return {
      ...row,
      state: d.outcome,
      reason: typeof d.reason === 'string' ? d.reason : row.reason,
      completedAt: typeof d.completedAt === 'string' ? d.completedAt : event.time,
      gpuMsObserved: typeof d.gpuMsObserved === 'number' ? d.gpuMsObserved : row.gpuMsObserved,
    };
  },
} as const;

/** Jobs whose live state is kept while their page has not loaded yet; past it the oldest is forgotten. */
export const UNLOADED_JOBS_MAX = 100_000;

/**
 * The live events of jobs whose page has not loaded yet (the table loads newest first, in pages,
 * while the feed already runs): per job id, the latest event of each kind that changes a row, so
 * a page read before such an event (or from a read model that had not folded it) shows the
 * current state once it arrives. Bounded: UNLOADED_JOBS_MAX jobs, one event per type that changes a row.
 */
export class UnloadedJobEvents {
  private readonly byJob = new Map<string, Map<string, LiveEvent>>();

  constructor(private readonly jobsMax = UNLOADED_JOBS_MAX) {}

  get size(): number {
    return this.byJob.size;
  }

  /** Keeps an event of a job not loaded (a submission is not kept: it adds its row itself). */
  keep(jobId: string, event: LiveEvent): void {
    if (event.type === 'JobSubmitted' || !Object.hasOwn(rowChanges, event.type)) return;
    let kept = this.byJob.get(jobId);
    if (!kept) {
      if (this.byJob.size >= this.jobsMax) {
        const oldest = this.byJob.keys().next();
        if (!oldest.done) this.byJob.delete(oldest.value);
      }
      kept = new Map();
      this.byJob.set(jobId, kept);
    }
    kept.set(event.type, event);
  }

  /** The row a page gave, with the events kept for its job applied in log order; forgets them. */
  merge(row: JobSummary): JobSummary {
    const kept = this.byJob.get(row.jobId);
    if (!kept) return row;
    this.byJob.delete(row.jobId);
    let merged = row;
    for (const event of [...kept.values()].sort((a, b) => a.seq - b.seq)) merged = nextJobRow(merged, event) ?? merged;
    return merged;
  }

  clear(): void {
    this.byJob.clear();
  }
}

/**
 * Applies a batch of events to the rows (newest first) and their index by job id. Answers the
 * same array when nothing changed, so memoised row models are not recomputed for nothing. Events
 * of a job not loaded (nor submitted in the batch) go to `unloaded`, when given, for its page.
 */
export function applyJobEvents(rows: readonly JobSummary[], index: Map<string, number>, events: readonly LiveEvent[], unloaded?: UnloadedJobEvents): readonly JobSummary[] {
  let next: JobSummary[] | undefined;
  const added: JobSummary[] = [];
  for (const event of events) {
    const jobId = event.data.jobId;
    if (typeof jobId !== 'string') continue;
    const at = index.get(jobId);
    const current = at === undefined ? added.find((r) => r.jobId === jobId) : (next ?? rows)[at];
    const changed = nextJobRow(current, event);
    if (!changed) {
      if (at === undefined && !current) unloaded?.keep(jobId, event);
      continue;
    }
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
