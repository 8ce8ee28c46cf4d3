/**
 * Task division: a job becomes sub-tasks. Pure: the same request always gives the same split.
 * A job names either a sub-task count (each runs the declared runtime) or total GPU-hours,
 * which are divided exactly: full sub-tasks of the declared runtime, the last one shorter,
 * so that Σ gpus × runtime = the GPU-hours asked for (to the millisecond, rounded up).
 */
export const SUBTASKS_PER_JOB_MAX = 10_000;
const MS_PER_HOUR = 3_600_000n;

export interface DivisionInput {
  gpusPerSubtask: number;
  runtimeMs: number;
  subtaskCount?: number;
  /** Decimal string of GPU-hours. */
  totalGpuHours?: string;
}

export interface PlannedSubtask {
  index: number;
  gpus: number;
  runtimeMs: number;
}

export class DivisionError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** GPU-hours as a decimal string → exact GPU-milliseconds (rounded up to the millisecond). */
export function gpuHoursToGpuMs(gpuHours: string): bigint {
  const match = /^(\d{1,9})(?:\.(\d{1,12}))?$/.exec(gpuHours);
  if (!match) throw new DivisionError('totalGpuHours', 'must be a positive decimal number of GPU-hours with at most 12 decimals');
  const fraction = (match[2] ?? '').padEnd(12, '0');
  const scaled = BigInt(match[1]!) * 10n ** 12n + BigInt(fraction);
  const numerator = scaled * MS_PER_HOUR;
  const denominator = 10n ** 12n;
  return (numerator + denominator - 1n) / denominator;
}

export function divideJob(input: DivisionInput): PlannedSubtask[] {
  const { gpusPerSubtask, runtimeMs } = input;
  if ((input.subtaskCount === undefined) === (input.totalGpuHours === undefined)) {
    throw new DivisionError('subtaskCount', 'give exactly one of subtaskCount and totalGpuHours');
  }
  if (input.subtaskCount !== undefined) {
    if (input.subtaskCount > SUBTASKS_PER_JOB_MAX) throw new DivisionError('subtaskCount', `at most ${SUBTASKS_PER_JOB_MAX} sub-tasks per job`);
    return Array.from({ length: input.subtaskCount }, (_, index) => ({ index, gpus: gpusPerSubtask, runtimeMs }));
  }
  const totalGpuMs = gpuHoursToGpuMs(input.totalGpuHours!);
  if (totalGpuMs === 0n) throw new DivisionError('totalGpuHours', 'must be greater than zero');
  const perSubtaskGpuMs = BigInt(gpusPerSubtask) * BigInt(runtimeMs);
  const fullCount = totalGpuMs / perSubtaskGpuMs;
  const remainderGpuMs = totalGpuMs % perSubtaskGpuMs;
  const count = Number(fullCount) + (remainderGpuMs > 0n ? 1 : 0);
  if (count > SUBTASKS_PER_JOB_MAX) throw new DivisionError('totalGpuHours', `divides into ${count} sub-tasks; at most ${SUBTASKS_PER_JOB_MAX} (raise runtimeSeconds or gpusPerSubtask)`);
  const subtasks: PlannedSubtask[] = [];
  for (let index = 0; index < Number(fullCount); index++) subtasks.push({ index, gpus: gpusPerSubtask, runtimeMs });
  if (remainderGpuMs > 0n) {
    // The last sub-task runs the remainder, rounded up to whole milliseconds per GPU.
    const lastRuntimeMs = Number((remainderGpuMs + BigInt(gpusPerSubtask) - 1n) / BigInt(gpusPerSubtask));
    subtasks.push({ index: subtasks.length, gpus: gpusPerSubtask, runtimeMs: lastRuntimeMs });
  }
  return subtasks;
}
