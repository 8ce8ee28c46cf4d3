import type { z } from 'zod';
import { billingEventSchemas } from './events-billing';
import { storedText, writtenText, type TextRule } from './events-fields';
import { intakeEventSchemas } from './events-intake';
import { meteringEventSchemas } from './events-metering';
import { nodeEventSchemas } from './events-nodes';
import { schedulerEventSchemas } from './events-scheduler';

/**
 * The event catalogue: every domain fact FastGPU records, as a typed, validated schema.
 * Published versions are never edited: a breaking change adds `vN+1` and an upcaster in
 * `upcasters.ts`. Times are UTC ISO-8601 instants with milliseconds; GPU time is integer ms.
 *
 * The payload schemas are written per topic: `events-intake.ts` (tenants, keys, jobs, lease
 * requests), `events-scheduler.ts` (placements, granted leases, the scheduling policy),
 * `events-nodes.ts` (node agents' reports, reliability's node and SLA events),
 * `events-metering.ts` (usage) and `events-billing.ts` (price books, invoices, finance actions),
 * from the fields of `events-fields.ts`. This file puts them together and is the one surface
 * the rest of the code imports them from.
 *
 * Free text follows libs/contracts text.ts (docs/adr/0004-storable-event-text.md): events are
 * built with the shared text rule (`eventCatalogue`, used by `makeEvent`), so nothing reaches
 * the log that a projection cannot store; stored events are read with the rule every version
 * was ever appliable under (`storedEventSchemas`, used by `decodeEvent`): the same bounds,
 * without U+0000, which no projection could store, so such an event is dead-lettered on read
 * instead of wedging a projection at its sequence.
 */

export {
  CapacityType,
  capacityTypeSchema,
  failureKindSchema,
  faultSchema,
  idSchema,
  periodSchema,
  PriorityClass,
  priorityClassSchema,
  Role,
  roleSchema,
  STORABLE_TEXT_MESSAGE,
  STORABLE_TEXT_PATTERN,
  type FailureKind,
} from './events-fields';

/** Every payload schema, with free text checked by `text`: built twice, for writing and for reading. */
function defineEventSchemas(text: TextRule) {
  return { ...intakeEventSchemas(text), ...schedulerEventSchemas(text), ...nodeEventSchemas(text), ...meteringEventSchemas(text), ...billingEventSchemas(text) };
}

const written = defineEventSchemas(writtenText);
const stored = defineEventSchemas(storedText);

/**
 * The parts of event payloads that requests and responses reuse (a job's retry policy and
 * dependencies, the scheduling policy, a price and its tiers). An event's own payload schema is
 * `eventCatalogue[type].schema`.
 */
export const { retryPolicySchema, dependencySchema, schedulingPolicy, priceSchema, priceTierSchema } = written;

/** Every event type with its current schema version and payload schema. */
export const eventCatalogue = {
  TenantCreated: { version: 1, schema: written.TenantCreated },
  ApiKeyIssued: { version: 1, schema: written.ApiKeyIssued },
  ApiKeyRevoked: { version: 1, schema: written.ApiKeyRevoked },
  JobSubmitted: { version: 2, schema: written.JobSubmitted },
  SubtaskCreated: { version: 1, schema: written.SubtaskCreated },
  JobCancelRequested: { version: 1, schema: written.JobCancelRequested },
  JobResultsAggregated: { version: 1, schema: written.JobResultsAggregated },
  LeaseRequested: { version: 1, schema: written.LeaseRequested },
  LeaseReleaseRequested: { version: 1, schema: written.LeaseReleaseRequested },
  SubtaskPlaced: { version: 1, schema: written.SubtaskPlaced },
  SubtaskPreempted: { version: 1, schema: written.SubtaskPreempted },
  SubtaskRequeued: { version: 1, schema: written.SubtaskRequeued },
  SubtaskAbandoned: { version: 1, schema: written.SubtaskAbandoned },
  JobCompleted: { version: 1, schema: written.JobCompleted },
  LeaseGranted: { version: 1, schema: written.LeaseGranted },
  LeaseReleased: { version: 1, schema: written.LeaseReleased },
  NodeRegistered: { version: 1, schema: written.NodeRegistered },
  SubtaskStarted: { version: 1, schema: written.SubtaskStarted },
  SubtaskCompleted: { version: 1, schema: written.SubtaskCompleted },
  SubtaskFailed: { version: 1, schema: written.SubtaskFailed },
  NodeLost: { version: 1, schema: written.NodeLost },
  NodeRecovered: { version: 1, schema: written.NodeRecovered },
  NodeDrained: { version: 1, schema: written.NodeDrained },
  NodeUndrained: { version: 1, schema: written.NodeUndrained },
  SchedulingPolicySet: { version: 1, schema: written.SchedulingPolicySet },
  ReportRejected: { version: 1, schema: written.ReportRejected },
  SlaCreditIssued: { version: 1, schema: written.SlaCreditIssued },
  UsageRecorded: { version: 1, schema: written.UsageRecorded },
  ExternalAllocationStarted: { version: 1, schema: written.ExternalAllocationStarted },
  ExternalAllocationStopped: { version: 1, schema: written.ExternalAllocationStopped },
  ExternalAllocationReportedLate: { version: 1, schema: written.ExternalAllocationReportedLate },
  LateUsageRecorded: { version: 1, schema: written.LateUsageRecorded },
  PriceBookPublished: { version: 1, schema: written.PriceBookPublished },
  InvoiceFinalized: { version: 1, schema: written.InvoiceFinalized },
  InvoicePaid: { version: 1, schema: written.InvoicePaid },
  InvoiceVoided: { version: 1, schema: written.InvoiceVoided },
  CreditNoteIssued: { version: 1, schema: written.CreditNoteIssued },
  CreditGranted: { version: 1, schema: written.CreditGranted },
  TaxRatesSet: { version: 1, schema: written.TaxRatesSet },
  BillingPeriodClosed: { version: 1, schema: written.BillingPeriodClosed },
  InvoiceDraftDeleted: { version: 1, schema: written.InvoiceDraftDeleted },
  InvoiceReissued: { version: 1, schema: written.InvoiceReissued },
  LateUsageBilled: { version: 1, schema: written.LateUsageBilled },
  LateUsageDismissed: { version: 1, schema: written.LateUsageDismissed },
  TenantBillingProfileSet: { version: 1, schema: written.TenantBillingProfileSet },
} as const;

/**
 * The payload schemas stored events are decoded with (`decodeEvent`), per type: the current
 * version's bounds with the read rule for text (see `storedText`). Building uses `eventCatalogue`.
 */
export const storedEventSchemas: { readonly [K in keyof typeof eventCatalogue]: z.ZodType<z.output<(typeof eventCatalogue)[K]['schema']>> } = Object.fromEntries(
  Object.keys(eventCatalogue).map((type) => [type, stored[type as keyof typeof stored]]),
) as never;

export type EventType = keyof typeof eventCatalogue;
export const EventType = Object.fromEntries(Object.keys(eventCatalogue).map((k) => [k, k])) as { [K in EventType]: K };
export type EventData<T extends EventType> = z.infer<(typeof eventCatalogue)[T]['schema']>;
export const eventTypes = Object.keys(eventCatalogue) as EventType[];
export function isEventType(type: string): type is EventType {
  return Object.hasOwn(eventCatalogue, type);
}

/**
 * The events of one attempt of a placed sub-task, from its placement to its end or its return to
 * the queue: each opens or ends the GPU allocation of the attempt.
 */
export const subtaskAttemptEventTypes = ['SubtaskPlaced', 'SubtaskStarted', 'SubtaskCompleted', 'SubtaskFailed', 'SubtaskPreempted', 'SubtaskRequeued'] as const satisfies readonly EventType[];

/**
 * The events of a placed sub-task's life, from placement to its end or return to the queue:
 * every read model of sub-tasks (intake's jobs, reliability's SLA, the scheduler) folds all of them.
 */
export const subtaskPlacementEventTypes = [...subtaskAttemptEventTypes, 'SubtaskAbandoned'] as const satisfies readonly EventType[];

/**
 * The events that open or end a GPU allocation (a sub-task's attempt, a lease, an external
 * allocation; allocation-key.ts names each): metering's usage fold and billing's accrual both read
 * all of them (with more of their own: a node's loss and restart, `UsageRecorded`).
 */
export const allocationEventTypes = [...subtaskAttemptEventTypes, 'LeaseGranted', 'LeaseReleased', 'ExternalAllocationStarted', 'ExternalAllocationStopped'] as const satisfies readonly EventType[];
