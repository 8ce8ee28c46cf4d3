/**
 * Proves that live events change the jobs table's rows the way the jobs read model folds them
 * (apps/intake jobs.projection.ts): a submission adds a pending row on top, the first placement
 * makes it running, a cancel request cancelling, JobCompleted its outcome; events that change
 * nothing (a second placement, a job not loaded, an unrelated type) leave the very same array, so
 * the table's memoised row models are not recomputed. Events of a job whose page has not loaded yet
 * are kept (the latest of each kind, bounded) and merged into its row when the page arrives, so a
 * page read before them shows the current state.
 */
import { describe, expect, it } from 'vitest';
import { applyJobEvents, nextJobRow, UnloadedJobEvents } from './jobs-live';
import type { LiveEvent } from './live';
import type { JobSummary } from './types';

let seq = 0;
const event = (type: string, data: Record<string, unknown>): LiveEvent => ({ seq: ++seq, type, time: '2026-03-01T10:00:00.000Z', tenantId: 'acme', subject: `x.${type}`, data });
const row = (jobId: string, state = 'pending'): JobSummary => ({ jobId, tenantId: 'acme', projectId: 'p', name: null, state, reason: null, submittedAt: '2026-03-01T09:00:00.000Z', completedAt: null, gpuMsObserved: null });
const indexOf = (rows: readonly JobSummary[]) => new Map(rows.map((r, i) => [r.jobId, i]));

describe('nextJobRow', () => {
  it('follows pending → running → succeeded', () => {
    const placed = nextJobRow(row('j'), event('SubtaskPlaced', { jobId: 'j' }));
    expect(placed?.state).toBe('running');
    expect(nextJobRow(placed, event('SubtaskPlaced', { jobId: 'j' }))).toBeUndefined();
    const done = nextJobRow(placed, event('JobCompleted', { jobId: 'j', outcome: 'succeeded', completedAt: '2026-03-01T10:05:00.000Z', gpuMsObserved: 7200 }));
    expect(done).toMatchObject({ state: 'succeeded', completedAt: '2026-03-01T10:05:00.000Z', gpuMsObserved: 7200 });
  });

  it('marks a cancel request only on a job that has not ended', () => {
    expect(nextJobRow(row('j', 'running'), event('JobCancelRequested', { jobId: 'j' }))?.state).toBe('cancelling');
    expect(nextJobRow(row('j', 'succeeded'), event('JobCancelRequested', { jobId: 'j' }))).toBeUndefined();
  });

  it('adds a submitted job only when it is not known yet', () => {
    const submitted = event('JobSubmitted', { jobId: 'n', tenantId: 'acme', projectId: 'vision', name: 'train', submittedAt: '2026-03-01T10:00:00.000Z' });
    expect(nextJobRow(undefined, submitted)).toMatchObject({ jobId: 'n', projectId: 'vision', name: 'train', state: 'pending' });
    expect(nextJobRow(row('n'), submitted)).toBeUndefined();
  });
});

describe('applyJobEvents', () => {
  it('answers the same array when no event changes a row', () => {
    const rows = [row('a', 'running'), row('b', 'succeeded')];
    const same = applyJobEvents(rows, indexOf(rows), [event('SubtaskPlaced', { jobId: 'a' }), event('SubtaskStarted', { jobId: 'b' }), event('SubtaskPlaced', { jobId: 'unknown' }), event('NodeLost', { nodeId: 'n1' })]);
    expect(same).toBe(rows);
  });

  it('changes only the rows the events name and keeps the input untouched', () => {
    const rows = [row('a'), row('b')];
    const next = applyJobEvents(rows, indexOf(rows), [event('SubtaskPlaced', { jobId: 'b' })]);
    expect(next).not.toBe(rows);
    expect(next.map((r) => r.state)).toEqual(['pending', 'running']);
    expect(next[0]).toBe(rows[0]);
    expect(rows[1]?.state).toBe('pending');
  });

  it('puts new jobs on top, newest first, follows them within the batch and reindexes', () => {
    const rows = [row('old')];
    const index = indexOf(rows);
    const next = applyJobEvents(rows, index, [
      event('JobSubmitted', { jobId: 'n1', projectId: 'p', submittedAt: '2026-03-01T10:00:00.000Z' }),
      event('JobSubmitted', { jobId: 'n2', projectId: 'p', submittedAt: '2026-03-01T10:00:01.000Z' }),
      event('SubtaskPlaced', { jobId: 'n1' }),
    ]);
    expect(next.map((r) => `${r.jobId}:${r.state}`)).toEqual(['n2:pending', 'n1:running', 'old:pending']);
    expect([...index.entries()]).toEqual([['n2', 0], ['n1', 1], ['old', 2]]);
  });
});

describe('UnloadedJobEvents', () => {
  it("keeps a job's events until its page arrives, then the page's row shows them", () => {
    const rows = [row('loaded')];
    const unloaded = new UnloadedJobEvents();
    const placed = event('SubtaskPlaced', { jobId: 'later' });
    const completed = event('JobCompleted', { jobId: 'later', outcome: 'succeeded', completedAt: '2026-03-01T10:05:00.000Z', gpuMsObserved: 3600 });
    const same = applyJobEvents(rows, indexOf(rows), [placed, event('SubtaskStarted', { jobId: 'later' }), completed], unloaded);
    expect(same).toBe(rows);
    expect(unloaded.size).toBe(1);
    // The page was read before the events: the row it gives is still pending.
    expect(unloaded.merge(row('later'))).toMatchObject({ jobId: 'later', state: 'succeeded', completedAt: '2026-03-01T10:05:00.000Z', gpuMsObserved: 3600 });
    expect(unloaded.size).toBe(0);
    expect(unloaded.merge(row('later')).state).toBe('pending');
  });

  it('leaves a row the page already shows newer as it is, and rows without kept events untouched', () => {
    const unloaded = new UnloadedJobEvents();
    unloaded.keep('j', event('SubtaskPlaced', { jobId: 'j' }));
    unloaded.keep('j', event('JobCancelRequested', { jobId: 'j' }));
    const ended = row('j', 'cancelled');
    expect(unloaded.merge(ended)).toBe(ended);
    const other = row('other');
    expect(unloaded.merge(other)).toBe(other);
  });

  it('applies the kept events in log order, whatever order they came in', () => {
    const unloaded = new UnloadedJobEvents();
    const cancel = event('JobCancelRequested', { jobId: 'j' });
    const placed = { ...event('SubtaskPlaced', { jobId: 'j' }), seq: cancel.seq - 1 };
    unloaded.keep('j', cancel);
    unloaded.keep('j', placed);
    expect(unloaded.merge(row('j')).state).toBe('cancelling');
  });

  it('keeps no submission and no event that changes no row, and forgets the oldest job past its bound', () => {
    const unloaded = new UnloadedJobEvents(2);
    unloaded.keep('n', event('JobSubmitted', { jobId: 'n' }));
    unloaded.keep('n', event('SubtaskStarted', { jobId: 'n' }));
    expect(unloaded.size).toBe(0);
    for (const jobId of ['a', 'b', 'c']) unloaded.keep(jobId, event('SubtaskPlaced', { jobId }));
    expect(unloaded.size).toBe(2);
    expect(unloaded.merge(row('a')).state).toBe('pending');
    expect(unloaded.merge(row('c')).state).toBe('running');
  });
});
