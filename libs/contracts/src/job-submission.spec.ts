/**
 * Proves the one job request rule every edge shares: task division (counts, exact GPU-hour
 * splits with a shorter last sub-task, its limits, checked before any array is made), the
 * checks after the schema (preemption, gang topology, deadline against the given instant), and
 * that the schema takes the storable-text rule on every free-text field and id; a job's workload
 * (argv or an asked-for shell, inputs one per sub-task or chunked, what each sub-task receives,
 * what is refused with its field) and the replay of v1 JobSubmitted events without one.
 */
import { assert, describe, expect, it } from 'vitest';
import { decodeEvent, encodeEvent } from './codec';
import { checkJobRequest, divideJob, gpuHoursToGpuMs, JobRequestError, submitJobRequest, SUBTASKS_PER_JOB_MAX, DEPENDENCIES_PER_JOB_MAX } from './job-submission';
import { subtaskWorkload, Workload } from './node-protocol';

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

describe('a job\'s workload', () => {
  const nowMs = Date.now();
  const { subtaskCount: _count, ...noCount } = base;
  const check = (body: unknown) => checkJobRequest(submitJobRequest.parse(body), nowMs);
  const fieldOf = (body: unknown): string | undefined => {
    const parsed = submitJobRequest.safeParse(body);
    if (!parsed.success) return parsed.error.issues[0]!.path.join('.');
    try {
      checkJobRequest(parsed.data, nowMs);
      return undefined;
    } catch (error) {
      return (error as JobRequestError).field;
    }
  };

  it('records argv, defaults and the timeout (default: the declared runtime), and gives each sub-task its index and count', () => {
    const checked = check({ ...base, workload: { command: ['python3', 'train.py', '--epochs', '3'], env: { EPOCHS: '3' }, secrets: [{ env: 'HF_TOKEN', secret: 'hugging-face' }] } });
    expect(checked.workload).toEqual({ command: ['python3', 'train.py', '--epochs', '3'], shell: false, env: { EPOCHS: '3' }, secrets: [{ env: 'HF_TOKEN', secret: 'hugging-face' }], timeoutMs: 60_000, resultPath: 'result.out', resultBytesMax: 64 * 1024 * 1024, aggregate: 'none' });
    const workload = subtaskWorkload(checked.workload!, 2, checked.subtasks.length);
    expect(workload).toMatchObject({ command: ['python3', 'train.py', '--epochs', '3'], subtaskIndex: 2, subtaskCount: 3, timeoutMs: 60_000 });
    expect(workload.input).toBeUndefined();
    expect(Workload.safeParse(workload).success).toBe(true);
    expect(check({ ...base, workload: { command: ['x'], timeoutSeconds: 5 } }).workload!.timeoutMs).toBe(5000);
  });

  it('runs a shell only when asked, with the command as one script', () => {
    const checked = check({ ...base, workload: { command: ['echo "$FASTGPU_SUBTASK_INDEX" > "$FASTGPU_RESULT_PATH"'], shell: true } });
    expect(subtaskWorkload(checked.workload!, 0, 3).command).toEqual(['/bin/sh', '-c', 'echo "$FASTGPU_SUBTASK_INDEX" > "$FASTGPU_RESULT_PATH"']);
    expect(fieldOf({ ...base, workload: { command: ['echo', 'two'], shell: true } })).toBe('workload.command');
    expect(fieldOf({ ...base, workload: { command: ['echo\nrm'] } })).toBe('workload.command.0');
  });

  it('divides by inputs: one item per sub-task, or chunks given as a JSON array', () => {
    const one = check({ ...noCount, workload: { command: ['x'], inputs: ['a', 'b', 'c'] } });
    expect(one.subtasks).toHaveLength(3);
    expect([0, 1, 2].map((i) => subtaskWorkload(one.workload!, i, 3).input)).toEqual(['a', 'b', 'c']);
    const chunked = check({ ...noCount, workload: { command: ['x'], inputs: ['a', 'b', 'c', 'd', 'e'], inputsPerSubtask: 2 } });
    expect(chunked.subtasks).toHaveLength(3);
    expect([0, 1, 2].map((i) => subtaskWorkload(chunked.workload!, i, 3).input)).toEqual(['["a","b"]', '["c","d"]', '["e"]']);
    // A count that agrees is accepted; one that does not, or GPU-hours, names its field.
    expect(check({ ...base, workload: { command: ['x'], inputs: ['a', 'b', 'c'] } }).subtasks).toHaveLength(3);
    expect(fieldOf({ ...base, subtaskCount: 2, workload: { command: ['x'], inputs: ['a', 'b', 'c'] } })).toBe('subtaskCount');
    expect(fieldOf({ ...noCount, totalGpuHours: '1', workload: { command: ['x'], inputs: ['a'] } })).toBe('totalGpuHours');
    expect(fieldOf({ ...base, workload: { command: ['x'], inputsPerSubtask: 2 } })).toBe('workload.inputsPerSubtask');
    // A chunk must fit one sub-task's input.
    expect(fieldOf({ ...noCount, workload: { command: ['x'], inputs: ['y'.repeat(40_000), 'y'.repeat(40_000)], inputsPerSubtask: 2 } })).toBe('workload.inputsPerSubtask');
  });

  it('refuses a container image while no node runs containers, the agent\'s variables, and secrets given by value', () => {
    expect(fieldOf({ ...base, workload: { command: ['x'], image: 'pytorch/pytorch:2.4' } })).toBe('workload.image');
    expect(fieldOf({ ...base, workload: { command: ['x'], env: { CUDA_VISIBLE_DEVICES: '0' } } })).toBe('workload.env.CUDA_VISIBLE_DEVICES');
    expect(fieldOf({ ...base, workload: { command: ['x'], env: { FASTGPU_INPUT: 'x' } } })).toBe('workload.env.FASTGPU_INPUT');
    expect(fieldOf({ ...base, workload: { command: ['x'], secrets: [{ env: 'T', secret: 'hf', value: 'hunter2' }] } })).toBe('workload.secrets.0');
    expect(fieldOf({ ...base, workload: { command: ['x'], resultPath: '../etc/passwd' } })).toBe('workload.resultPath');
    expect(fieldOf({ ...base, workload: { command: ['x'], aggregate: 'zip' } })).toBe('workload.aggregate');
    expect(fieldOf({ ...base, workload: { command: ['x'], env: { A: 'b\u0000' } } })).toBe('workload.env.A');
    expect(fieldOf({ ...base, workload: { command: ['x'], inputs: ['y'.repeat(60_000), 'y'.repeat(60_000), 'y'.repeat(60_000), 'y'.repeat(60_000), 'y'.repeat(60_000), 'y'.repeat(60_000), 'y'.repeat(60_000), 'y'.repeat(60_000), 'y'.repeat(60_000)] } })).toBe('workload');
  });
});

describe('JobSubmitted v1 events', () => {
  it('replay as v2 jobs without a workload', () => {
    const v1 = {
      specversion: '1.0', id: '0190a000-0000-7000-8000-000000000009', source: 'fastgpu/intake', type: 'JobSubmitted', subject: 'fastgpu.evt.intake.job.j1', time: '2026-11-01T00:00:00.000Z', datacontenttype: 'application/json', tenantid: 'acme', correlationid: 'j1', schemaversion: 1,
      data: { jobId: 'j1', tenantId: 'acme', projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeMs: 1000, priorityClass: 'standard', priority: 0, preemptible: false, gang: false, capacityType: 'on-demand', dependsOn: [], workload: { command: ['never', 'read', 'by', 'v1'] }, submittedAt: '2026-11-01T00:00:00.000Z' },
    };
    const decoded = decodeEvent(encodeEvent(v1 as never));
    assert(decoded.ok && decoded.event.type === 'JobSubmitted');
    expect(decoded.event.schemaversion).toBe(2);
    expect(decoded.event.data.workload).toBeUndefined();
    expect(decoded.event.data.jobId).toBe('j1');
  });
});
