/**
 * Proves that the scheduler resolves job dependencies within the tenant only (defence in depth:
 * intake refuses another tenant's job id at submission, and these rules hold if one reaches the
 * log anyway), as given (events in the log) / when (a cycle) / then (the decided events):
 * - a finished job's outcome is kept with its tenant; another tenant's finished job is unknown to
 *   a dependent, so it neither fails it (afterSuccess on a failed job) nor releases it (afterAny,
 *   afterSuccess on a succeeded job), before or after the dependent's submission, while the same
 *   dependency within the tenant does both;
 * - explanations and feasibility answer another tenant's job, live or finished, like a missing one.
 */
import { describe, expect, it } from 'vitest';
import { completedOutcome } from './dependencies';
import { explain, feasibility } from './questions';
import { evolve } from './scheduler.evolve';
import { initialState } from './scheduler.state';
import { at, ofType, placements, SchedulerLog } from './scheduler.testkit';

/** Given: acme's job `first` ran on n1 and ended (`fail`: with exit code 1), and its JobCompleted is in the log. */
function firstEnded(fail: boolean): SchedulerLog {
  const log = new SchedulerLog().node('n1').job({ jobId: 'first', tenantId: 'acme' });
  log.cycle(at(1));
  log.started('first-0', 2);
  if (fail) log.failed('first-0', 3, 1);
  else log.completed('first-0', 3);
  const done = log.cycle(at(4));
  expect(ofType(done, 'JobCompleted').map((d) => [d.data.jobId, d.data.tenantId, d.data.outcome])).toEqual([['first', 'acme', fail ? 'failed' : 'succeeded']]);
  return log;
}

describe('dependencies resolve within the tenant', () => {
  it('keeps each finished job with its tenant, also when the log is folded again', () => {
    const log = firstEnded(true);
    expect(log.state.completedJobs.get('first')).toEqual({ tenantId: 'acme', outcome: 'failed' });
    expect(completedOutcome(log.state, 'acme', 'first')).toBe('failed');
    expect(completedOutcome(log.state, 'beta', 'first')).toBeUndefined();
    const replayed = initialState();
    for (const stored of log.events) evolve(replayed, stored);
    expect([...replayed.completedJobs]).toEqual([...log.state.completedJobs]);
  });

  it('does not fail a dependent on another tenant\'s failed job, and fails the tenant\'s own', () => {
    // Given acme's `first` failed; when beta and acme each submit a job that needs it to succeed…
    const log = firstEnded(true);
    log.job({ jobId: 'beta-strict', tenantId: 'beta', dependsOn: [{ jobId: 'first', condition: 'afterSuccess' }] });
    log.job({ jobId: 'acme-strict', tenantId: 'acme', dependsOn: [{ jobId: 'first', condition: 'afterSuccess' }] });
    const result = log.cycle(at(5));
    // …then only acme's fails, with the dependency's outcome; beta's waits for a job it cannot see.
    expect(ofType(result, 'JobCompleted').map((d) => [d.data.jobId, d.data.outcome])).toEqual([['acme-strict', 'failed']]);
    expect(ofType(result, 'JobCompleted')[0]!.data.reason).toMatch(/dependency first ended failed/);
    expect(placements(result)).toEqual([]);
    expect(result.waiting.get('beta-strict')).toMatchObject({ code: 'dependency', reason: 'waiting for job first to end (afterSuccess)' });
    // Later cycles change nothing for beta: another tenant's outcome never reaches it.
    const later = log.cycle(at(60));
    expect(later.decisions).toEqual([]);
    expect(log.state.jobs.get('beta-strict')).toBeDefined();
  });

  it('does not release a dependent on another tenant\'s finished job, and releases the tenant\'s own', () => {
    // Given acme's `first` succeeded before the dependents were submitted…
    const log = firstEnded(false);
    log.job({ jobId: 'beta-any', tenantId: 'beta', dependsOn: [{ jobId: 'first', condition: 'afterAny' }] });
    log.job({ jobId: 'beta-success', tenantId: 'beta', dependsOn: [{ jobId: 'first', condition: 'afterSuccess' }] });
    log.job({ jobId: 'acme-success', tenantId: 'acme', dependsOn: [{ jobId: 'first', condition: 'afterSuccess' }] });
    const result = log.cycle(at(5));
    // …then only acme's runs.
    expect(placements(result)).toEqual([['acme-success-0', 'n1']]);
    expect(result.waiting.get('beta-any')?.code).toBe('dependency');
    expect(result.waiting.get('beta-success')?.code).toBe('dependency');
  });

  it('does not release a dependent submitted before another tenant\'s job finishes', () => {
    // Given beta's job waits on `first` while acme's `first` still runs…
    const log = new SchedulerLog().node('n1').job({ jobId: 'first', tenantId: 'acme' });
    log.cycle(at(1));
    log.job({ jobId: 'beta-any', tenantId: 'beta', dependsOn: [{ jobId: 'first', condition: 'afterAny' }] });
    log.job({ jobId: 'acme-any', tenantId: 'acme', dependsOn: [{ jobId: 'first', condition: 'afterAny' }] });
    expect(placements(log.cycle(at(2)))).toEqual([]);
    // …when `first` ends, then acme's dependent runs and beta's keeps waiting.
    log.started('first-0', 3).completed('first-0', 4);
    log.cycle(at(5));
    const result = log.cycle(at(6));
    expect(placements(result)).toEqual([['acme-any-0', 'n1']]);
    expect(result.waiting.get('beta-any')?.code).toBe('dependency');
  });

  it('explains and checks feasibility of another tenant\'s job like a missing one', () => {
    const log = firstEnded(false).job({ jobId: 'running', tenantId: 'acme', gpus: 8 });
    const cycle = log.cycle(at(5));
    expect(explain(log.state, 'first', 'acme', cycle.waiting)).toMatchObject({ state: 'completed' });
    expect(explain(log.state, 'first', 'beta', cycle.waiting)).toEqual(explain(log.state, 'never-was', 'beta', cycle.waiting));
    expect(explain(log.state, 'first', 'beta', cycle.waiting)).toEqual({ state: 'unknown' });
    const request = { gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1 };
    for (const jobId of ['first', 'running']) {
      expect(feasibility(log.state, { ...request, tenantId: 'acme', dependsOn: [{ jobId }] })).toEqual({ feasible: true });
      const foreign = feasibility(log.state, { ...request, tenantId: 'beta', dependsOn: [{ jobId }] });
      expect(foreign).toEqual({ feasible: false, field: 'dependsOn', reason: `depends on unknown job ${jobId}` });
      // The same answer as for a job id nobody has.
      expect(feasibility(log.state, { ...request, tenantId: 'beta', dependsOn: [{ jobId: 'never-was' }] })).toEqual({ ...foreign, reason: 'depends on unknown job never-was' });
    }
  });
});
