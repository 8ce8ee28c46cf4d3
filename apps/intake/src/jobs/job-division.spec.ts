/** Proves task division: counts, exact GPU-hour splits with a shorter last sub-task, and its limits. */
import { describe, expect, it } from 'vitest';
import { divideJob, gpuHoursToGpuMs, SUBTASKS_PER_JOB_MAX } from './job-division';

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
  });
});
