import { z } from 'zod';
import { failureKindSchema, faultSchema, gpuModelText, id, instant, nonNegativeInt, periodSchema, positiveInt, subtaskAttemptFields, type TextRule } from './events-fields';

/**
 * Events of the nodes: what node agents report (registration, a sub-task's start and end) and
 * what reliability decides about nodes (lost, recovered, drained, a rejected report) and SLA
 * credits. Built by events.ts with each text rule.
 */
export function nodeEventSchemas(text: TextRule) {
  const gpuModel = gpuModelText(text);
  const NodeRegistered = z.object({
    nodeId: id,
    gpuModel,
    gpuCount: positiveInt,
    gpuMemoryGb: positiveInt,
    labels: z.record(text.line(), text.line()).default({}),
    /** Grows when an agent starts without its earlier work (docs/node-protocol.md, "Lifecycle"): a new one ends what the node ran. */
    agentEpoch: positiveInt,
    registeredAt: instant,
  });
  const SubtaskStarted = z.object({ ...subtaskAttemptFields, startedAt: instant });
  const SubtaskCompleted = z.object({ ...subtaskAttemptFields, exitCode: z.literal(0), endedAt: instant });
  const SubtaskFailed = z.object({
    ...subtaskAttemptFields,
    exitCode: z.number().int(),
    fault: faultSchema,
    reason: text.lines(500),
    /** Additive, optional field: absent in reports of the simulator and of agents written before it. */
    failureKind: failureKindSchema.optional(),
    endedAt: instant,
  });

  const NodeLost = z.object({ nodeId: id, lastHeartbeatAt: instant, detectedAt: instant, reason: text.lines(500) });
  const NodeRecovered = z.object({ nodeId: id, agentEpoch: positiveInt, recoveredAt: instant });
  const NodeDrained = z.object({ nodeId: id, reason: text.lines(500), drainedAt: instant, automatic: z.boolean() });
  const NodeUndrained = z.object({ nodeId: id, undrainedAt: instant });

  const ReportRejected = z.object({
    nodeId: id,
    subtaskId: id.optional(),
    reportType: text.line(64),
    reason: text.lines(500),
    rejectedAt: instant,
  });
  const SlaCreditIssued = z.object({
    creditId: id,
    tenantId: id,
    period: periodSchema,
    metric: text.line(64),
    measured: text.line(32),
    target: text.line(32),
    creditPercent: z.number().int().min(0).max(100),
    reportHash: text.line(64),
    windowEndSequence: nonNegativeInt,
    issuedAt: instant,
  });
  return {
    NodeRegistered,
    SubtaskStarted,
    SubtaskCompleted,
    SubtaskFailed,
    NodeLost,
    NodeRecovered,
    NodeDrained,
    NodeUndrained,
    ReportRejected,
    SlaCreditIssued,
  };
}
