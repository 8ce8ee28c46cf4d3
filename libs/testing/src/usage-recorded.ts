import type { EventData } from '@fastgpu/contracts';
import { gpuMs } from '@fastgpu/money';

/**
 * A `UsageRecorded` as metering announces it, for tests that feed billing: one allocation of
 * `gpus` GPUs (default 1) over [startAt, endAt) on an a100, on demand, project p1, with job and
 * sub-task named after the usage, and its GPU-ms taken by the one rule (libs/money `gpuMs`).
 * `extra` overrides any field.
 */
export function usageRecordedData(tenantId: string, usageId: string, startAt: string, endAt: string, extra: Partial<EventData<'UsageRecorded'>> = {}): EventData<'UsageRecorded'> {
  const gpus = extra.gpus ?? 1;
  return {
    usageId,
    tenantId,
    projectId: 'p1',
    jobId: `job-${usageId}`,
    subtaskId: `st-${usageId}`,
    attempt: 1,
    gpuModel: 'a100',
    capacityType: 'on-demand',
    gpus,
    startAt,
    endAt,
    gpuMs: gpuMs(gpus, Date.parse(startAt), Date.parse(endAt)),
    interrupted: false,
    sourceSequences: [],
    ...extra,
  };
}
