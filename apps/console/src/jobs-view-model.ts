import type { JobSummary } from './types';

/**
 * The jobs table's row processing, pure and in plain arrays: filter, sort, group. TanStack Table's
 * own client row models build a row object per record (seconds for 100,000 jobs on a loaded
 * machine); here each stage is one pass or one sort over the records, memoised stage by stage in
 * the view, and the table library renders only the rows in the scroll window.
 */
export type SortKey = 'jobId' | 'tenantId' | 'projectId' | 'state' | 'submittedAt' | 'completedAt' | 'gpuMsObserved' | 'name';
export type GroupKey = '' | 'projectId' | 'state' | 'tenantId';

export interface JobsSort {
  id: SortKey;
  desc: boolean;
}

export type DisplayItem = { kind: 'group'; key: string; value: string; count: number; expanded: boolean } | { kind: 'job'; job: JobSummary };

/** A row's searchable text, computed once per row object (rows are replaced, never changed, when a job changes). */
const haystacks = new WeakMap<JobSummary, string>();
function haystack(job: JobSummary): string {
  let text = haystacks.get(job);
  if (text === undefined) {
    text = `${job.jobId}\u0000${job.name ?? ''}\u0000${job.projectId}\u0000${job.tenantId}\u0000${job.state}`.toLowerCase();
    haystacks.set(job, text);
  }
  return text;
}

/** The rows whose id, name, project, tenant or state contains `text` (case-insensitive) and whose state is `state` (any when empty). */
export function filterJobs(rows: readonly JobSummary[], text: string, state: string): readonly JobSummary[] {
  const needle = text.trim().toLowerCase();
  if (!needle && !state) return rows;
  return rows.filter((job) => (!state || job.state === state) && (!needle || haystack(job).includes(needle)));
}

/** Rows sorted by one column; missing values (null) last in either direction; ties keep their order. */
export function sortJobs(rows: readonly JobSummary[], sort: JobsSort | null): readonly JobSummary[] {
  if (!sort) return rows;
  const { id, desc } = sort;
  const direction = desc ? -1 : 1;
  return rows.slice().sort((a, b) => {
    const x = a[id];
    const y = b[id];
    if (x === y) return 0;
    if (x === null) return 1;
    if (y === null) return -1;
    return (x < y ? -1 : 1) * direction;
  });
}

/**
 * The table's lines: the rows, or with a group key a heading line per value (in order of first
 * appearance in the sorted rows) followed by its rows unless the group is collapsed.
 */
export function displayItems(rows: readonly JobSummary[], groupBy: GroupKey, collapsed: ReadonlySet<string>): DisplayItem[] {
  if (!groupBy) return rows.map((job) => ({ kind: 'job', job }));
  const groups = new Map<string, JobSummary[]>();
  for (const job of rows) {
    const value = job[groupBy];
    let members = groups.get(value);
    if (!members) groups.set(value, (members = []));
    members.push(job);
  }
  const items: DisplayItem[] = [];
  for (const [value, members] of groups) {
    const expanded = !collapsed.has(value);
    items.push({ kind: 'group', key: `group:${value}`, value, count: members.length, expanded });
    if (expanded) for (const job of members) items.push({ kind: 'job', job });
  }
  return items;
}
