import { z } from 'zod';
import { capacityTypeSchema, gpuModelText, id, instant, nonNegativeInt, positiveInt, usedIntervalFields, type TextRule } from './events-fields';

/**
 * Metering's events: usage of closed allocations, external allocations and their late reports,
 * late usage. Built by events.ts with each text rule.
 */
export function meteringEventSchemas(text: TextRule) {
  const gpuModel = gpuModelText(text);
  const UsageRecorded = z.object({
    usageId: id,
    tenantId: id,
    projectId: id,
    jobId: id.optional(),
    subtaskId: id.optional(),
    attempt: positiveInt.optional(),
    leaseId: id.optional(),
    ...usedIntervalFields(text),
    /** Whether the allocation ended by a platform interruption (credited back automatically). */
    interrupted: z.boolean(),
    /** Stream sequences of the events this usage was derived from. */
    sourceSequences: z.array(nonNegativeInt).max(64),
  });
  /** External usage reported by services that schedule GPUs elsewhere. */
  const ExternalAllocationStarted = z.object({
    allocationId: id,
    tenantId: id,
    projectId: id,
    gpuModel,
    gpus: positiveInt,
    capacityType: capacityTypeSchema,
    startedAt: instant,
  });
  const ExternalAllocationStopped = z.object({ allocationId: id, tenantId: id, stoppedAt: instant });
  /**
   * An external start or stop report older than the lateness horizon when FastGPU received it
   * (`POST /v1/events` answers `accepted-late`): kept in the log for finance, never metered into
   * billable usage. `report` says which it is; a start carries the allocation's dimensions.
   */
  const ExternalAllocationReportedLate = z.object({
    allocationId: id,
    tenantId: id,
    report: z.enum(['started', 'stopped']),
    projectId: id.optional(),
    gpuModel: gpuModel.optional(),
    gpus: positiveInt.optional(),
    capacityType: capacityTypeSchema.optional(),
    /** The producer time of the report (the allocation's start or stop). */
    at: instant,
    /** When FastGPU received the report. */
    receivedAt: instant,
  });
  /**
   * The usage of an external allocation that was reported late, closed like `UsageRecorded` but
   * never billed automatically: finance bills it onto an open invoice or dismisses it.
   */
  const LateUsageRecorded = z.object({
    usageId: id,
    tenantId: id,
    projectId: id,
    allocationId: id,
    ...usedIntervalFields(text),
    /** When FastGPU received the first late report of the allocation. */
    reportedLateAt: instant,
    sourceSequences: z.array(nonNegativeInt).max(64),
  });
  return { UsageRecorded, ExternalAllocationStarted, ExternalAllocationStopped, ExternalAllocationReportedLate, LateUsageRecorded };
}
