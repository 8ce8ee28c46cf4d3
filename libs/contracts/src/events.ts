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

export const {
  TenantCreated,
  ApiKeyIssued,
  ApiKeyRevoked,
  retryPolicySchema,
  dependencySchema,
  JobSubmitted,
  SubtaskCreated,
  JobCancelRequested,
  JobResultsAggregated,
  LeaseRequested,
  LeaseReleaseRequested,
  SubtaskPlaced,
  SubtaskPreempted,
  SubtaskRequeued,
  SubtaskAbandoned,
  JobCompleted,
  LeaseGranted,
  LeaseReleased,
  NodeRegistered,
  SubtaskStarted,
  SubtaskCompleted,
  SubtaskFailed,
  NodeLost,
  NodeRecovered,
  NodeDrained,
  NodeUndrained,
  schedulingPolicy,
  SchedulingPolicySet,
  ReportRejected,
  SlaCreditIssued,
  UsageRecorded,
  ExternalAllocationStarted,
  ExternalAllocationStopped,
  ExternalAllocationReportedLate,
  LateUsageRecorded,
  priceTierSchema,
  priceSchema,
  PriceBookPublished,
  InvoiceFinalized,
  InvoicePaid,
  InvoiceVoided,
  CreditNoteIssued,
  CreditGranted,
  TaxRatesSet,
  BillingPeriodClosed,
  InvoiceDraftDeleted,
  InvoiceReissued,
  LateUsageBilled,
  LateUsageDismissed,
  TenantBillingProfileSet,
} = written;

/** Every event type with its current schema version and payload schema. */
export const eventCatalogue = {
  TenantCreated: { version: 1, schema: TenantCreated },
  ApiKeyIssued: { version: 1, schema: ApiKeyIssued },
  ApiKeyRevoked: { version: 1, schema: ApiKeyRevoked },
  JobSubmitted: { version: 2, schema: JobSubmitted },
  SubtaskCreated: { version: 1, schema: SubtaskCreated },
  JobCancelRequested: { version: 1, schema: JobCancelRequested },
  JobResultsAggregated: { version: 1, schema: JobResultsAggregated },
  LeaseRequested: { version: 1, schema: LeaseRequested },
  LeaseReleaseRequested: { version: 1, schema: LeaseReleaseRequested },
  SubtaskPlaced: { version: 1, schema: SubtaskPlaced },
  SubtaskPreempted: { version: 1, schema: SubtaskPreempted },
  SubtaskRequeued: { version: 1, schema: SubtaskRequeued },
  SubtaskAbandoned: { version: 1, schema: SubtaskAbandoned },
  JobCompleted: { version: 1, schema: JobCompleted },
  LeaseGranted: { version: 1, schema: LeaseGranted },
  LeaseReleased: { version: 1, schema: LeaseReleased },
  NodeRegistered: { version: 1, schema: NodeRegistered },
  SubtaskStarted: { version: 1, schema: SubtaskStarted },
  SubtaskCompleted: { version: 1, schema: SubtaskCompleted },
  SubtaskFailed: { version: 1, schema: SubtaskFailed },
  NodeLost: { version: 1, schema: NodeLost },
  NodeRecovered: { version: 1, schema: NodeRecovered },
  NodeDrained: { version: 1, schema: NodeDrained },
  NodeUndrained: { version: 1, schema: NodeUndrained },
  SchedulingPolicySet: { version: 1, schema: SchedulingPolicySet },
  ReportRejected: { version: 1, schema: ReportRejected },
  SlaCreditIssued: { version: 1, schema: SlaCreditIssued },
  UsageRecorded: { version: 1, schema: UsageRecorded },
  ExternalAllocationStarted: { version: 1, schema: ExternalAllocationStarted },
  ExternalAllocationStopped: { version: 1, schema: ExternalAllocationStopped },
  ExternalAllocationReportedLate: { version: 1, schema: ExternalAllocationReportedLate },
  LateUsageRecorded: { version: 1, schema: LateUsageRecorded },
  PriceBookPublished: { version: 1, schema: PriceBookPublished },
  InvoiceFinalized: { version: 1, schema: InvoiceFinalized },
  InvoicePaid: { version: 1, schema: InvoicePaid },
  InvoiceVoided: { version: 1, schema: InvoiceVoided },
  CreditNoteIssued: { version: 1, schema: CreditNoteIssued },
  CreditGranted: { version: 1, schema: CreditGranted },
  TaxRatesSet: { version: 1, schema: TaxRatesSet },
  BillingPeriodClosed: { version: 1, schema: BillingPeriodClosed },
  InvoiceDraftDeleted: { version: 1, schema: InvoiceDraftDeleted },
  InvoiceReissued: { version: 1, schema: InvoiceReissued },
  LateUsageBilled: { version: 1, schema: LateUsageBilled },
  LateUsageDismissed: { version: 1, schema: LateUsageDismissed },
  TenantBillingProfileSet: { version: 1, schema: TenantBillingProfileSet },
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
 * The events of a placed sub-task's life, from placement to its end or return to the queue:
 * every read model of sub-tasks (intake's jobs, reliability's SLA, the scheduler) folds all of them.
 */
export const subtaskPlacementEventTypes = [
  'SubtaskPlaced',
  'SubtaskStarted',
  'SubtaskCompleted',
  'SubtaskFailed',
  'SubtaskPreempted',
  'SubtaskRequeued',
  'SubtaskAbandoned',
] as const satisfies readonly EventType[];
