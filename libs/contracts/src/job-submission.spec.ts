/**
 * Proves the one job request rule every edge shares: task division (counts, exact GPU-hour
 * splits with a shorter last sub-task, its limits, checked before any array is made), the
 * checks after the schema (preemption, gang topology, deadline against the given instant), and
 * that the schema takes the storable-text rule on every free-text field and id.
 */
import { describe, expect, it } from 'vitest';
import { checkJobRequest, divideJob, gpuHoursToGpuMs, submitJobRequest, SUBTASKS_PER_JOB_MAX, DEPENDENCIES_PER_JOB_MAX } from './job-submission';

const base = { projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 3, runtimeSeconds: 60 };

describe('divideJob', () => {
  it('makes N sub-tasks of the declared runtime when a count is given', () => {
    expect(divideJob({ gpusPerSubtask: 4, runtimeMs: 60_000, subtaskCount: 3 })).toEqual([
      { index: 0, gpus: 4, runtimeMs: 60_000 },
      { index: 1, gpus: 4, runtimeMs: 60_000 },
      { index: 2, gpus: 4, runtimeMs: 60_000 },
    ]);
  });

  it('divides total GPU-hours exactly, the last sub-task taking the remainder', () => {
    // 10 GPU-hours with 4 GPUs × 1 h per sub-task: two full sub-tasks (8 GPU-h) and one of 30 min.
    const subtasks = divideJob({ gpusPerSubtask: 4, runtimeMs: 3_600_000, totalGpuHours: '10' });
    expect(subtasks.map((s) => s.runtimeMs)).toEqual([3_600_000, 3_600_000, 1_800_000]);
    expect(subtasks.reduce((sum, s) => sum + s.gpus * s.runtimeMs, 0)).toBe(10 * 3_600_000);
  });

  it('converts decimal GPU-hours without float error', () => {
    expect(gpuHoursToGpuMs('0.1')).toBe(360_000n);
    expect(gpuHoursToGpuMs('1.0000001')).toBe(3_600_001n); // 0.36 ms rounds up to a whole ms
  });

  it('refuses both or neither of count and GPU-hours, and jobs too large to divide', () => {
    expect(() => divideJob({ gpusPerSubtask: 1, runtimeMs: 1000 })).toThrow(/exactly one/);
    expect(() => divideJob({ gpusPerSubtask: 1, runtimeMs: 1000, subtaskCount: 1, totalGpuHours: '1' })).toThrow(/exactly one/);
    expect(() => divideJob({ gpusPerSubtask: 1, runtimeMs: 1000, subtaskCount: SUBTASKS_PER_JOB_MAX + 1 })).toThrow(/at most/);
    expect(() => divideJob({ gpusPerSubtask: 1, runtimeMs: 1000, totalGpuHours: '1000' })).toThrow(/sub-tasks/);
    expect(() => divideJob({ gpusPerSubtask: 1, runtimeMs: 1000, totalGpuHours: '-1' })).toThrow(/positive decimal/);
    // 999,999,999 GPU-hours of 1 ms sub-tasks: refused from the count alone.
    expect(() => divideJob({ gpusPerSubtask: 1, runtimeMs: 1, totalGpuHours: '999999999' })).toThrow(/at most 10000/);
  });
});

describe('checkJobRequest', () => {
  const nowMs = Date.now();
  const parse = (body: unknown) => submitJobRequest.parse(body);

  it('plans sub-tasks and defaults capacity from preemption', () => {
    const checked = checkJobRequest(parse({ ...base, priorityClass: 'preemptible' }), nowMs);
    expect(checked).toMatchObject({ preemptible: true, capacityType: 'preemptible', runtimeMs: 60_000 });
    expect(checked.subtasks).toHaveLength(3);
  });

  it('names the field of each inconsistency', () => {
    const field = (body: unknown) => {
      try {
        checkJobRequest(parse(body), nowMs);
        return undefined;
      } catch (error) {
        return (error as { field?: string }).field;
      }
    };
    expect(field({ ...base, priorityClass: 'preemptible', preemptible: false })).toBe('preemptible');
    expect(field({ ...base, gangTopologyKey: 'rack' })).toBe('gangTopologyKey');
    expect(field({ ...base, deadline: new Date(nowMs - 1000).toISOString() })).toBe('deadline');
    expect(field({ ...base, deadline: new Date(nowMs + 60_000).toISOString() })).toBeUndefined();
    expect(field({ ...base, totalGpuHours: '2' })).toBe('subtaskCount');
  });
});

describe('submitJobRequest', () => {
  const firstIssue = (body: unknown) => submitJobRequest.safeParse(body).error?.issues[0];

  it('refuses control characters and lone surrogates in every free-text field and id, as text', () => {
    for (const bad of ['a\u0000b', 'a\u0007b', 'a\nb', 'a\u009fb', 'a\ud800b']) {
      for (const body of [
        { ...base, name: bad },
        { ...base, projectId: bad },
        { ...base, gpuModels: ['a100', bad] },
        { ...base, gang: true, gangTopologyKey: bad },
        { ...base, dependsOn: [{ jobId: bad, condition: 'afterAny' }] },
      ]) {
        const issue = firstIssue(body);
        expect(issue, JSON.stringify(body)).toMatchObject({ code: 'invalid_format', message: expect.stringMatching(/control characters/) });
      }
    }
    expect(firstIssue({ ...base, name: 'Ünïcödé 🚀 name' })).toBeUndefined();
  });

  it('bounds every list and count by the shared limits', () => {
    expect(firstIssue({ ...base, subtaskCount: SUBTASKS_PER_JOB_MAX + 1 })?.path).toEqual(['subtaskCount']);
    const many = Array.from({ length: DEPENDENCIES_PER_JOB_MAX + 1 }, (_, i) => ({ jobId: `j${i}`, condition: 'afterAny' }));
    expect(firstIssue({ ...base, dependsOn: many })?.path).toEqual(['dependsOn']);
    expect(firstIssue({ ...base, surprise: 1 })?.code).toBe('unrecognized_keys');
  });
});
