import { z } from 'zod';
import { INCREMENT_MS_DEFAULT, MINIMUM_MS_DEFAULT, TIERS_MAX, tierModeSchema } from './pricing';
import { MULTI_LINE_TEXT_MESSAGE, MULTI_LINE_TEXT_PATTERN, SINGLE_LINE_TEXT_MESSAGE, SINGLE_LINE_TEXT_PATTERN } from './text';

/**
 * The event catalogue: every domain fact FastGPU records, as a typed, validated schema.
 * Published versions are never edited: a breaking change adds `vN+1` and an upcaster in
 * `upcasters.ts`. Times are UTC ISO-8601 instants with milliseconds; GPU time is integer ms.
 *
 * Free text follows libs/contracts text.ts (docs/adr/0004-storable-event-text.md): events are
 * built with the shared text rule (`eventCatalogue`, used by `makeEvent`), so nothing reaches
 * the log that a projection cannot store; stored events are read with the rule every version
 * was ever appliable under (`storedEventSchemas`, used by `decodeEvent`): the same bounds,
 * without U+0000, which no projection could store, so such an event is dead-lettered on read
 * instead of wedging a projection at its sequence.
 */

/** Ids appear in NATS subjects, so they are single subject tokens. */
export const idSchema = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, 'must contain only letters, digits, "-" and "_"');
const id = idSchema;
const instant = z.iso.datetime({ offset: false });
const nonNegativeInt = z.number().int().nonnegative();
const positiveInt = z.number().int().positive();

export const PriorityClass = { high: 'high', standard: 'standard', preemptible: 'preemptible' } as const;
export type PriorityClass = (typeof PriorityClass)[keyof typeof PriorityClass];
export const priorityClassSchema = z.enum(PriorityClass);

export const CapacityType = { onDemand: 'on-demand', preemptible: 'preemptible', reserved: 'reserved' } as const;
export type CapacityType = (typeof CapacityType)[keyof typeof CapacityType];
export const capacityTypeSchema = z.enum(CapacityType);

export const Role = { tenant: 'tenant', finance: 'finance', sre: 'sre', admin: 'admin' } as const;
export type Role = (typeof Role)[keyof typeof Role];
export const roleSchema = z.enum(Role);

/** Who caused a failure: the tenant's code or the platform (node loss, preemption by us, health drain). */
export const faultSchema = z.enum(['user', 'platform']);

/**
 * How a run ended, as the node agent saw it (`SubtaskFailed.failureKind`, docs/node-protocol.md):
 * `exit-code` (non-zero exit), `signal` (killed by a signal the agent did not send), `oom` (killed
 * by the kernel's OOM killer), `timeout` (the workload's timeout; the agent killed it), `exec`
 * (the command could not be started), `result` (its result missing or over the limit): user
 * faults; `agent` (the agent could not run it or keep its output) and `agent-restart` (the agent
 * restarted and the process was gone): platform faults.
 */
export const failureKindSchema = z.enum(['exit-code', 'signal', 'oom', 'timeout', 'exec', 'result', 'agent', 'agent-restart']);
export type FailureKind = z.infer<typeof failureKindSchema>;

/** How a set of schemas checks free text: `line` for one line, `lines` for text that may span lines. */
interface TextRule {
  line(maxLength?: number, minLength?: number): z.ZodString;
  lines(maxLength?: number, minLength?: number): z.ZodString;
}

function boundedString(maxLength: number | undefined, minLength: number): z.ZodString {
  const text = minLength > 0 ? z.string().min(minLength) : z.string();
  return maxLength === undefined ? text : text.max(maxLength);
}

/**
 * The rule events are built with: text.ts's `singleLineText` / `multiLineText` patterns (no
 * control characters but TAB/LF/CR in multi-line text, no lone surrogates), with each field's
 * published bounds (a few fields never had a maximum and keep none).
 */
const writtenText: TextRule = {
  line: (maxLength, minLength = 0) => boundedString(maxLength, minLength).regex(SINGLE_LINE_TEXT_PATTERN, SINGLE_LINE_TEXT_MESSAGE),
  lines: (maxLength, minLength = 0) => boundedString(maxLength, minLength).regex(MULTI_LINE_TEXT_PATTERN, MULTI_LINE_TEXT_MESSAGE),
};

/** No U+0000: PostgreSQL cannot store it in text or jsonb. The control character is the point here. */
// eslint-disable-next-line no-control-regex
export const STORABLE_TEXT_PATTERN = /^[^\u0000]*$/;
export const STORABLE_TEXT_MESSAGE = 'must not contain U+0000 (no projection can store it)';

/**
 * The rule stored events are read with: the bounds every published version had, minus exactly
 * what no projection could ever have applied (U+0000). Text that was storable when it was
 * published stays readable, so no event that a projection applied becomes unreadable.
 */
const storedText: TextRule = {
  line: (maxLength, minLength = 0) => boundedString(maxLength, minLength).regex(STORABLE_TEXT_PATTERN, STORABLE_TEXT_MESSAGE),
  lines: (maxLength, minLength = 0) => boundedString(maxLength, minLength).regex(STORABLE_TEXT_PATTERN, STORABLE_TEXT_MESSAGE),
};

/** Every payload schema, with free text checked by `text`: built twice, for writing and for reading. */
function defineEventSchemas(text: TextRule) {
  const gpuModel = text.line(64, 1);

  // ---------------------------------------------------------------- intake: tenants and keys
  const TenantCreated = z.object({
    tenantId: id,
    name: text.line(200, 1),
    billingTimeZone: text.line(64, 1),
    currency: text.line(3, 3),
    createdAt: instant,
  });
  const ApiKeyIssued = z.object({
    keyId: id,
    tenantId: id.nullable(),
    role: roleSchema,
    /** SHA-256 of the secret, hex. The secret itself is shown once and never stored. */
    secretHash: text.line(64, 64),
    label: text.line(200).optional(),
    issuedAt: instant,
  });
  const ApiKeyRevoked = z.object({ keyId: id, tenantId: id.nullable(), revokedAt: instant, reason: text.lines(500) });

  // ---------------------------------------------------------------- intake: jobs
  const retryPolicySchema = z.object({
    /** Attempts for the job's own (user) failures, including the first. */
    maxAttempts: z.number().int().min(1).max(10),
    /** Exit codes that are retried; empty means any non-zero exit code. */
    retryOnExitCodes: z.array(z.number().int()).max(64),
  });
  const dependencySchema = z.object({ jobId: id, condition: z.enum(['afterSuccess', 'afterAny']) });
  /**
   * What a job runs (v2; the request's rules in job-submission.ts are checked at the edge): argv,
   * or one script for /bin/sh -c with `shell`; secrets by name only; paths relative to the
   * attempt's directory; the timeout per attempt; inputs (one per sub-task, or chunks of
   * `inputsPerSubtask`); the result file and its cap; the aggregation rule.
   */
  const jobWorkload = z.object({
    command: z.array(text.lines(16_384)).min(1).max(256),
    shell: z.boolean(),
    env: z.record(text.line(128, 1), text.lines(16_384)).optional(),
    secrets: z.array(z.object({ env: text.line(128, 1), secret: id })).max(32).optional(),
    workingDirectory: text.line(512, 1).optional(),
    timeoutMs: positiveInt,
    inputs: z.array(text.lines(65_536)).min(1).max(10_000).optional(),
    inputsPerSubtask: positiveInt.optional(),
    resultPath: text.line(512, 1),
    resultBytesMax: positiveInt,
    aggregate: z.enum(['concat', 'jsonl', 'none']),
  });

  /**
   * v2 adds `workload`. v1 events replay as jobs without one (upcasters.ts); the version is
   * raised so a process that knows only v1 refuses a v2 event instead of reading it without its
   * workload and placing sub-tasks that have nothing to run.
   */
  const JobSubmitted = z.object({
    jobId: id,
    tenantId: id,
    projectId: id,
    name: text.line(200).optional(),
    /** Allowed GPU models in order of preference (the first is preferred). */
    gpuModels: z.array(gpuModel).min(1).max(16),
    gpusPerSubtask: positiveInt,
    subtaskCount: positiveInt,
    /** Declared runtime of one sub-task ("execution time"), used for backfill and by the simulator. */
    runtimeMs: positiveInt,
    priorityClass: priorityClassSchema,
    /** Ordering within a class: higher first. */
    priority: z.number().int().min(0).max(1000),
    preemptible: z.boolean(),
    gang: z.boolean(),
    /** Optional topology label that a gang must share (e.g. "nvlink"). */
    gangTopologyKey: text.line(64).optional(),
    capacityType: capacityTypeSchema,
    deadline: instant.optional(),
    dependsOn: z.array(dependencySchema).max(64).default([]),
    retryPolicy: retryPolicySchema.optional(),
    idempotencyKey: text.line(256).optional(),
    /** What each sub-task runs on a node agent; absent: the job only holds its GPUs for its runtime (the simulator). */
    workload: jobWorkload.optional(),
    submittedAt: instant,
  });
  const SubtaskCreated = z.object({
    jobId: id,
    tenantId: id,
    subtaskId: id,
    index: nonNegativeInt,
    gpus: positiveInt,
    gpuModels: z.array(gpuModel).min(1),
    runtimeMs: positiveInt,
  });
  const JobCancelRequested = z.object({ jobId: id, tenantId: id, requestedAt: instant, reason: text.lines(500) });
  /**
   * A job whose sub-tasks all succeeded had its results aggregated by its workload's rule
   * (`concat`, `jsonl`): `stored` with the aggregate's size and SHA-256 (in the results bucket
   * as `<tenantId>/<jobId>/aggregate`), or `failed` with why (a result missing or expired, a
   * `jsonl` result that is not JSON Lines, the aggregate over its limit).
   */
  const JobResultsAggregated = z.object({
    jobId: id,
    tenantId: id,
    rule: z.enum(['concat', 'jsonl']),
    outcome: z.enum(['stored', 'failed']),
    subtaskCount: positiveInt,
    bytes: nonNegativeInt.optional(),
    sha256: text.line(64, 64).optional(),
    reason: text.lines(500).optional(),
    aggregatedAt: instant,
  });

  // ---------------------------------------------------------------- intake: leases
  const LeaseRequested = z.object({
    leaseId: id,
    tenantId: id,
    projectId: id,
    gpuModels: z.array(gpuModel).min(1).max(16),
    gpus: positiveInt,
    capacityType: capacityTypeSchema,
    priorityClass: priorityClassSchema,
    requestedAt: instant,
  });
  const LeaseReleaseRequested = z.object({ leaseId: id, tenantId: id, requestedAt: instant });

  // ---------------------------------------------------------------- scheduler
  const SubtaskPlaced = z.object({
    jobId: id,
    tenantId: id,
    projectId: id,
    subtaskId: id,
    /** 1 for the first placement; grows on every requeue. */
    attempt: positiveInt,
    nodeId: id,
    gpuModel,
    gpus: positiveInt,
    gpuIndices: z.array(nonNegativeInt),
    /** Fencing token: reports carrying another epoch for this sub-task are stale. */
    leaseEpoch: positiveInt,
    capacityType: capacityTypeSchema,
    runtimeMs: positiveInt,
    placedAt: instant,
  });
  const SubtaskPreempted = z.object({
    jobId: id,
    tenantId: id,
    subtaskId: id,
    attempt: positiveInt,
    nodeId: id,
    leaseEpoch: positiveInt,
    reason: text.lines(500),
    preemptedByJobId: id.optional(),
    /**
     * Who caused the stop: `platform` (preemption by us, gang restart: credited back as an
     * interruption) or `user` (the tenant cancelled the job: not credited). Additive, optional
     * field: absent means `platform` (events written before it existed were all platform stops).
     */
    fault: faultSchema.optional(),
    preemptedAt: instant,
  });
  const SubtaskRequeued = z.object({
    jobId: id,
    tenantId: id,
    subtaskId: id,
    previousAttempt: positiveInt,
    reason: text.lines(500),
    requeuedAt: instant,
  });
  const SubtaskAbandoned = z.object({
    jobId: id,
    tenantId: id,
    subtaskId: id,
    attempt: positiveInt,
    reason: text.lines(500),
    abandonedAt: instant,
  });
  const JobCompleted = z.object({
    jobId: id,
    tenantId: id,
    projectId: id,
    outcome: z.enum(['succeeded', 'failed', 'cancelled']),
    reason: text.lines(500).optional(),
    subtasksSucceeded: nonNegativeInt,
    subtasksFailed: nonNegativeInt,
    subtasksCancelled: nonNegativeInt,
    /** Sum of GPU-ms the scheduler saw run for this job (all attempts), for reconciliation. */
    gpuMsObserved: nonNegativeInt,
    completedAt: instant,
  });
  const LeaseGranted = z.object({
    leaseId: id,
    tenantId: id,
    projectId: id,
    nodeId: id,
    gpuModel,
    gpus: positiveInt,
    gpuIndices: z.array(nonNegativeInt),
    leaseEpoch: positiveInt,
    capacityType: capacityTypeSchema,
    grantedAt: instant,
  });
  const LeaseReleased = z.object({
    leaseId: id,
    tenantId: id,
    nodeId: id,
    leaseEpoch: positiveInt,
    reason: text.lines(500),
    releasedAt: instant,
  });

  // ---------------------------------------------------------------- node agents
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
  const subtaskReport = {
    jobId: id,
    tenantId: id,
    subtaskId: id,
    attempt: positiveInt,
    nodeId: id,
    leaseEpoch: positiveInt,
  };
  const SubtaskStarted = z.object({ ...subtaskReport, startedAt: instant });
  const SubtaskCompleted = z.object({ ...subtaskReport, exitCode: z.literal(0), endedAt: instant });
  const SubtaskFailed = z.object({
    ...subtaskReport,
    exitCode: z.number().int(),
    fault: faultSchema,
    reason: text.lines(500),
    /** Additive, optional field: absent in reports of the simulator and of agents written before it. */
    failureKind: failureKindSchema.optional(),
    endedAt: instant,
  });

  // ---------------------------------------------------------------- reliability
  const NodeLost = z.object({ nodeId: id, lastHeartbeatAt: instant, detectedAt: instant, reason: text.lines(500) });
  const NodeRecovered = z.object({ nodeId: id, agentEpoch: positiveInt, recoveredAt: instant });
  const NodeDrained = z.object({ nodeId: id, reason: text.lines(500), drainedAt: instant, automatic: z.boolean() });
  const NodeUndrained = z.object({ nodeId: id, undrainedAt: instant });

  // ---------------------------------------------------------------- scheduler: policy
  /**
   * The scheduling policy in force from this event on (the whole policy, not a patch): a
   * fair-share weight per tenant and, per GPU model, a nominal quota in GPUs with an optional
   * borrowing limit. Decisions depend on it, so it is in the log: the same log gives the same
   * decisions whatever the configuration of the process replaying it.
   */
  const schedulingPolicy = z.object({
    defaultWeight: z.number().positive(),
    /** Whether a tenant may use idle GPUs beyond its nominal quota (taken back by preemption when the owner needs them). */
    borrowing: z.boolean(),
    tenants: z.record(
      id,
      z.object({
        weight: z.number().positive().optional(),
        quotas: z.record(gpuModel, z.object({ nominal: nonNegativeInt, borrowingLimit: nonNegativeInt.optional() })),
      }),
    ),
  });
  const SchedulingPolicySet = z.object({ policy: schedulingPolicy, setAt: instant, actor: id, reason: text.lines(500, 1) });
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
    period: z.string().regex(/^\d{4}-\d{2}$/),
    metric: text.line(64),
    measured: text.line(32),
    target: text.line(32),
    creditPercent: z.number().int().min(0).max(100),
    reportHash: text.line(64),
    windowEndSequence: nonNegativeInt,
    issuedAt: instant,
  });

  // ---------------------------------------------------------------- metering
  const UsageRecorded = z.object({
    usageId: id,
    tenantId: id,
    projectId: id,
    jobId: id.optional(),
    subtaskId: id.optional(),
    attempt: positiveInt.optional(),
    leaseId: id.optional(),
    gpuModel,
    capacityType: capacityTypeSchema,
    gpus: positiveInt,
    startAt: instant,
    endAt: instant,
    /** gpus × (end − start), integer milliseconds. */
    gpuMs: nonNegativeInt,
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
    gpuModel,
    capacityType: capacityTypeSchema,
    gpus: positiveInt,
    startAt: instant,
    endAt: instant,
    /** gpus × (end − start), integer milliseconds. */
    gpuMs: nonNegativeInt,
    /** When FastGPU received the first late report of the allocation. */
    reportedLateAt: instant,
    sourceSequences: z.array(nonNegativeInt).max(64),
  });

  // ---------------------------------------------------------------- billing
  const decimalString = z.string().regex(/^\d+(\.\d+)?$/);
  const priceTierSchema = z.object({
    /** Upper bound of the tier in GPU-hours per billing period; null = unbounded (the last tier). */
    upToGpuHours: z.number().int().positive().nullable(),
    pricePerGpuHour: decimalString,
  });
  const priceSchema = z.object({
    gpuModel,
    capacityType: capacityTypeSchema,
    /** Decimal string, price per GPU-hour in the book's currency (the flat price, or the first tier's). */
    pricePerGpuHour: decimalString,
    /** Billing increment per allocation, default 1000 ms (per second, rounded up). */
    incrementMs: positiveInt.default(INCREMENT_MS_DEFAULT),
    /** Minimum billed duration per allocation, default 60 s. */
    minimumMs: nonNegativeInt.default(MINIMUM_MS_DEFAULT),
    /** Tiers reset every billing period: graduated prices each tier's part, volume prices all at the reached tier. */
    tierMode: tierModeSchema.optional(),
    tiers: z.array(priceTierSchema).min(1).max(TIERS_MAX).optional(),
  });
  const PriceBookPublished = z.object({
    priceBookId: id,
    version: positiveInt,
    currency: text.line(3, 3),
    effectiveFrom: instant,
    prices: z.array(priceSchema).min(1).max(1000),
    publishedBy: id,
    publishedAt: instant,
  });
  const InvoiceFinalized = z.object({
    invoiceId: id,
    tenantId: id,
    period: z.string().regex(/^\d{4}-\d{2}$/),
    number: text.line(64),
    total: text.line(),
    currency: text.line(3, 3),
    cutoffSequence: nonNegativeInt,
    priceBookVersion: positiveInt,
    sha256: text.line(64, 64),
    actor: id,
    reason: text.lines(500),
    finalizedAt: instant,
  });

  /** Finance actions: audited (actor and reason), each an event on the invoice's or tenant's subject. */
  const audit = { actor: id, reason: text.lines(500, 1) };
  const InvoicePaid = z.object({ invoiceId: id, tenantId: id, amount: decimalString, currency: text.line(3, 3), paymentReference: text.line(200).optional(), paidAt: instant, ...audit });
  const InvoiceVoided = z.object({ invoiceId: id, tenantId: id, number: text.line(64), voidedAt: instant, ...audit });
  /** One rate's tax on a credit note or one of its lines (positive: what is credited). */
  const creditNoteTaxSchema = z.object({ name: text.line(64, 1), rate: z.string().regex(/^(0(\.\d+)?|1(\.0+)?)$/), amount: decimalString });
  /** A credit-note line: what it credits of one invoice line (or of the whole invoice when `invoiceLine` is null). */
  const creditNoteLineSchema = z.object({
    line: positiveInt,
    invoiceLine: positiveInt.nullable(),
    description: text.line(300, 1),
    servicePeriod: z.string().regex(/^\d{4}-\d{2}$/).nullable(),
    quantityGpuHours: decimalString.nullable(),
    unitPrice: decimalString.nullable(),
    net: decimalString,
    taxes: z.array(creditNoteTaxSchema).max(8),
    total: decimalString,
  });
  /**
   * `amount` is the credit note's total (net + taxes). The optional fields were added for credit
   * notes as documents: without them (notes issued before), a note is one amount without a split.
   */
  const CreditNoteIssued = z.object({
    creditNoteId: id,
    invoiceId: id,
    tenantId: id,
    number: text.line(64),
    amount: decimalString,
    currency: text.line(3, 3),
    issuedAt: instant,
    ...audit,
    invoiceNumber: text.line(64).optional(),
    lines: z.array(creditNoteLineSchema).min(1).max(1000).optional(),
    net: decimalString.optional(),
    taxes: z.array(creditNoteTaxSchema).max(8).optional(),
    /** SHA-256 of the request it answers, for the Idempotency-Key rule (same key, other request: 409). */
    requestSha256: text.line(64, 64).optional(),
  });
  const CreditGranted = z.object({
    grantId: id,
    tenantId: id,
    amount: decimalString,
    currency: text.line(3, 3),
    /** Higher is used first. */
    priority: z.number().int().min(0).max(1000),
    expiresAt: instant.nullable(),
    grantedAt: instant,
    ...audit,
  });
  const TaxRatesSet = z.object({
    tenantId: id,
    rates: z.array(z.object({ name: text.line(64, 1), rate: z.string().regex(/^(0(\.\d+)?|1(\.0+)?)$/) })).max(8),
    /** When the rates were set. Without `effectiveFrom`, they apply to invoices finalized from then on. */
    effectiveAt: instant,
    /**
     * Optional: the instant the rates take effect (may be in the future). An invoice is taxed at the
     * rates in force at the end of its billing period (the last instant of the period).
     */
    effectiveFrom: instant.optional(),
    ...audit,
  });

  /**
   * Invoice lifecycle (docs/billing.md). A period close cuts the tenant's running allocations at
   * the period's end onto its invoices (accrual); a draft deletion uses no number and moves its
   * usage to a new draft or discards it; a reissue replaces a void invoice by a new draft; late
   * usage in the review queue is billed onto an open invoice or dismissed.
   */
  const BillingPeriodClosed = z.object({ tenantId: id, period: z.string().regex(/^\d{4}-\d{2}$/), closedAt: instant, ...audit });
  const InvoiceDraftDeleted = z.object({ invoiceId: id, tenantId: id, period: z.string().regex(/^\d{4}-\d{2}$/), usage: z.enum(['move', 'discard']), replacementInvoiceId: id.optional(), deletedAt: instant, ...audit });
  const InvoiceReissued = z.object({ invoiceId: id, tenantId: id, period: z.string().regex(/^\d{4}-\d{2}$/), number: text.line(64), replacementInvoiceId: id, reissuedAt: instant, ...audit });
  const reviewItem = { tenantId: id, usageEventId: id, piece: nonNegativeInt };
  const LateUsageBilled = z.object({ ...reviewItem, invoiceId: id, billedAt: instant, ...audit });
  const LateUsageDismissed = z.object({ ...reviewItem, dismissedAt: instant, ...audit });
  /**
   * A tenant's billing profile, set by finance: the buyer invoices and credit notes print. The last
   * one up to an invoice's cutoff is the one its document holds (docs/billing.md, "Buyer details").
   */
  const TenantBillingProfileSet = z.object({
    tenantId: id,
    legalName: text.line(200, 1),
    addressLines: z.array(text.line(200, 1)).min(1).max(6),
    /** ISO 3166-1 alpha-2 (checked at the edge, as currencies are). */
    country: text.line(2, 2),
    taxId: text.line(64, 1).optional(),
    setAt: instant,
    ...audit,
  });
  return {
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
  };
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
