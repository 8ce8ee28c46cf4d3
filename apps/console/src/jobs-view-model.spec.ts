/**
 * Proves the jobs table's processing: the text filter matches id, name, project, tenant or state
 * case-insensitively and combines with the state filter; sorting orders by one column either way
 * with missing values last and leaves its input as it was; grouping puts a heading line with its
 * count before each group's rows and leaves collapsed groups' rows out.
 */
import { describe, expect, it } from 'vitest';
import { displayItems, filterJobs, sortJobs } from './jobs-view-model';
import type { JobSummary } from './types';

const job = (jobId: string, projectId: string, state: string, submittedAt: string, completedAt: string | null = null, name: string | null = null): JobSummary => ({ jobId, tenantId: 'acme', projectId, name, state, reason: null, submittedAt, completedAt, gpuMsObserved: null });
const rows = [
  job('j1', 'vision', 'running', '2026-03-01T10:00:00.000Z', null, 'Train-ResNet'),
  job('j2', 'nlp', 'succeeded', '2026-03-01T11:00:00.000Z', '2026-03-01T12:00:00.000Z'),
  job('j3', 'vision', 'pending', '2026-03-01T09:00:00.000Z'),
];
const ids = (list: readonly JobSummary[]) => list.map((j) => j.jobId);

describe('filterJobs', () => {
  it('matches text in any searchable field, case-insensitively, and the state exactly', () => {
    expect(ids(filterJobs(rows, 'resnet', ''))).toEqual(['j1']);
    expect(ids(filterJobs(rows, 'VISION', ''))).toEqual(['j1', 'j3']);
    expect(ids(filterJobs(rows, 'vision', 'pending'))).toEqual(['j3']);
    expect(ids(filterJobs(rows, '', 'succeeded'))).toEqual(['j2']);
    expect(filterJobs(rows, '  ', '')).toBe(rows);
  });
});

describe('sortJobs', () => {
  it('sorts either way with nulls last and leaves the input alone', () => {
    expect(ids(sortJobs(rows, { id: 'submittedAt', desc: true }))).toEqual(['j2', 'j1', 'j3']);
    expect(ids(sortJobs(rows, { id: 'submittedAt', desc: false }))).toEqual(['j3', 'j1', 'j2']);
    expect(ids(sortJobs(rows, { id: 'completedAt', desc: false }))).toEqual(['j2', 'j1', 'j3']);
    expect(ids(sortJobs(rows, { id: 'completedAt', desc: true }))).toEqual(['j2', 'j1', 'j3']);
    expect(ids(rows)).toEqual(['j1', 'j2', 'j3']);
  });
});

describe('displayItems', () => {
  it('heads each group with its count and leaves out collapsed groups', () => {
    const items = displayItems(rows, 'projectId', new Set(['nlp']));
    expect(items.map((i) => (i.kind === 'group' ? `[${i.value} ${i.count}${i.expanded ? '' : ' closed'}]` : i.job.jobId))).toEqual(['[vision 2]', 'j1', 'j3', '[nlp 1 closed]']);
    expect(displayItems(rows, '', new Set()).map((i) => i.kind)).toEqual(['job', 'job', 'job']);
  });
});
