import { z } from 'zod';

/**
 * The event catalogue: every domain fact FastGPU records, as a typed, validated schema.
 * Published versions are never edited: a breaking change adds `vN+1` and an upcaster in
 * `upcasters.ts`. Times are UTC ISO-8601 instants with milliseconds; GPU time is integer ms.
 */

/** Ids appear in NATS subjects, so they are single subject tokens. */
export const idSchema = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, 'must contain only letters, digits, "-" and "_"');
const id = idSchema;
const instant = z.iso.datetime({ offset: false });
const gpuModel = z.string().min(1).max(64);
const nonNegativeInt = z.number().int().nonnegative();
const positiveInt = z.number().int().positive();

export const PriorityClass = { high: 'high', standard: 'standard', preemptible: 'preemptible' } as const;
export type PriorityClass = (typeof PriorityClass)[keyof typeof PriorityClass];
export const priorityClassSchema = z.enum(['high', 'standard', 'preemptible']);

export const CapacityType = { onDemand: 'on-demand', preemptible: 'preemptible', reserved: 'reserved' } as const;
export type CapacityType = (typeof CapacityType)[keyof typeof CapacityType];
export const capacityTypeSchema = z.enum(['on-demand', 'preemptible', 'reserved']);

export const Role = { tenant: 'tenant', finance: 'finance', sre: 'sre', admin: 'admin' } as const;
export type Role = (typeof Role)[keyof typeof Role];
export const roleSchema = z.enum(['tenant', 'finance', 'sre', 'admin']);

/** Who caused a failure: the tenant's code or the platform (node loss, preemption by us, health drain). */
export const faultSchema = z.enum(['user', 'platform']);

// ---------------------------------------------------------------- intake: tenants and keys
export const TenantCreated = z.object({
  tenantId: id,
  name: z.string().min(1).max(200),
  billingTimeZone: z.string().min(1).max(64),
  currency: z.string().length(3),
  createdAt: instant,
});
export const ApiKeyIssued = z.object({
  keyId: id,
  tenantId: id.nullable(),
  role: roleSchema,
  /** SHA-256 of the secret, hex. The secret itself is shown once and never stored. */
  secretHash: z.string().length(64),
  label: z.string().max(200).optional(),
  issuedAt: instant,
});
export const ApiKeyRevoked = z.object({ keyId: id, tenantId: id.nullable(), revokedAt: instant, reason: z.string().max(500) });

// ---------------------------------------------------------------- intake: jobs
export const retryPolicySchema = z.object({
  /** Attempts for the job's own (user) failures, including the first. */
  maxAttempts: z.number().int().min(1).max(10),
  /** Exit codes that are retried; empty means any non-zero exit code. */
  retryOnExitCodes: z.array(z.number().int()).max(64),
});
export const dependencySchema = z.object({ jobId: id, condition: z.enum(['afterSuccess', 'afterAny']) });

export const JobSubmitted = z.object({
  jobId: id,
  tenantId: id,
  projectId: id,
  name: z.string().max(200).optional(),
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
  gangTopologyKey: z.string().max(64).optional(),
  capacityType: capacityTypeSchema,
  deadline: instant.optional(),
  dependsOn: z.array(dependencySchema).max(64).default([]),
  retryPolicy: retryPolicySchema.optional(),
  idempotencyKey: z.string().max(256).optional(),
  submittedAt: instant,
});
export const SubtaskCreated = z.object({
  jobId: id,
  tenantId: id,
  subtaskId: id,
  index: nonNegativeInt,
  gpus: positiveInt,
  gpuModels: z.array(gpuModel).min(1),
  runtimeMs: positiveInt,
});
export const JobCancelRequested = z.object({ jobId: id, tenantId: id, requestedAt: instant, reason: z.string().max(500) });

// ---------------------------------------------------------------- intake: leases
export const LeaseRequested = z.object({
  leaseId: id,
  tenantId: id,
  projectId: id,
  gpuModels: z.array(gpuModel).min(1).max(16),
  gpus: positiveInt,
  capacityType: capacityTypeSchema,
  priorityClass: priorityClassSchema,
  requestedAt: instant,
});
export const LeaseReleaseRequested = z.object({ leaseId: id, tenantId: id, requestedAt: instant });

// ---------------------------------------------------------------- scheduler
export const SubtaskPlaced = z.object({
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
export const SubtaskPreempted = z.object({
  jobId: id,
  tenantId: id,
  subtaskId: id,
  attempt: positiveInt,
  nodeId: id,
  leaseEpoch: positiveInt,
  reason: z.string().max(500),
  preemptedByJobId: id.optional(),
  /**
   * Who caused the stop: `platform` (preemption by us, gang restart: credited back as an
   * interruption) or `user` (the tenant cancelled the job: not credited). Additive, optional
   * field: absent means `platform` (events written before it existed were all platform stops).
   */
  fault: faultSchema.optional(),
  preemptedAt: instant,
});
export const SubtaskRequeued = z.object({
  jobId: id,
  tenantId: id,
  subtaskId: id,
  previousAttempt: positiveInt,
  reason: z.string().max(500),
  requeuedAt: instant,
});
export const SubtaskAbandoned = z.object({
  jobId: id,
  tenantId: id,
  subtaskId: id,
  attempt: positiveInt,
  reason: z.string().max(500),
  abandonedAt: instant,
});
export const JobCompleted = z.object({
  jobId: id,
  tenantId: id,
  projectId: id,
  outcome: z.enum(['succeeded', 'failed', 'cancelled']),
  reason: z.string().max(500).optional(),
  subtasksSucceeded: nonNegativeInt,
  subtasksFailed: nonNegativeInt,
  subtasksCancelled: nonNegativeInt,
  /** Sum of GPU-ms the scheduler saw run for this job (all attempts), for reconciliation. */
  gpuMsObserved: nonNegativeInt,
  completedAt: instant,
});
export const LeaseGranted = z.object({
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
export const LeaseReleased = z.object({
  leaseId: id,
  tenantId: id,
  nodeId: id,
  leaseEpoch: positiveInt,
  reason: z.string().max(500),
  releasedAt: instant,
});

// ---------------------------------------------------------------- node agents
export const NodeRegistered = z.object({
  nodeId: id,
  gpuModel,
  gpuCount: positiveInt,
  gpuMemoryGb: positiveInt,
  labels: z.record(z.string(), z.string()).default({}),
  /** Grows each time the agent (re)starts; reports carry it. */
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
export const SubtaskStarted = z.object({ ...subtaskReport, startedAt: instant });
export const SubtaskCompleted = z.object({ ...subtaskReport, exitCode: z.literal(0), endedAt: instant });
export const SubtaskFailed = z.object({
  ...subtaskReport,
  exitCode: z.number().int(),
  fault: faultSchema,
  reason: z.string().max(500),
  endedAt: instant,
});

// ---------------------------------------------------------------- reliability
export const NodeLost = z.object({ nodeId: id, lastHeartbeatAt: instant, detectedAt: instant, reason: z.string().max(500) });
export const NodeRecovered = z.object({ nodeId: id, agentEpoch: positiveInt, recoveredAt: instant });
export const NodeDrained = z.object({ nodeId: id, reason: z.string().max(500), drainedAt: instant, automatic: z.boolean() });
export const NodeUndrained = z.object({ nodeId: id, undrainedAt: instant });

// ---------------------------------------------------------------- scheduler: policy
/**
 * The scheduling policy in force from this event on (the whole policy, not a patch): a
 * fair-share weight per tenant and, per GPU model, a nominal quota in GPUs with an optional
 * borrowing limit. Decisions depend on it, so it is in the log: the same log gives the same
 * decisions whatever the configuration of the process replaying it.
 */
export const schedulingPolicy = z.object({
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
export const SchedulingPolicySet = z.object({ policy: schedulingPolicy, setAt: instant, actor: id, reason: z.string().min(1).max(500) });
export const ReportRejected = z.object({
  nodeId: id,
  subtaskId: id.optional(),
  reportType: z.string().max(64),
  reason: z.string().max(500),
  rejectedAt: instant,
});
export const SlaCreditIssued = z.object({
  creditId: id,
  tenantId: id,
  period: z.string().regex(/^\d{4}-\d{2}$/),
  metric: z.string().max(64),
  measured: z.string().max(32),
  target: z.string().max(32),
  creditPercent: z.number().int().min(0).max(100),
  reportHash: z.string().max(64),
  windowEndSequence: nonNegativeInt,
  issuedAt: instant,
});

// ---------------------------------------------------------------- metering
export const UsageRecorded = z.object({
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
export const ExternalAllocationStarted = z.object({
  allocationId: id,
  tenantId: id,
  projectId: id,
  gpuModel,
  gpus: positiveInt,
  capacityType: capacityTypeSchema,
  startedAt: instant,
});
export const ExternalAllocationStopped = z.object({ allocationId: id, tenantId: id, stoppedAt: instant });

// ---------------------------------------------------------------- billing
const decimalString = z.string().regex(/^\d+(\.\d+)?$/);
export const priceTierSchema = z.object({
  /** Upper bound of the tier in GPU-hours per billing period; null = unbounded (the last tier). */
  upToGpuHours: z.number().int().positive().nullable(),
  pricePerGpuHour: decimalString,
});
export const priceSchema = z.object({
  gpuModel,
  capacityType: capacityTypeSchema,
  /** Decimal string, price per GPU-hour in the book's currency (the flat price, or the first tier's). */
  pricePerGpuHour: decimalString,
  /** Billing increment per allocation, default 1000 ms (per second, rounded up). */
  incrementMs: positiveInt.default(1000),
  /** Minimum billed duration per allocation, default 60 s. */
  minimumMs: nonNegativeInt.default(60_000),
  /** Tiers reset every billing period: graduated prices each tier's part, volume prices all at the reached tier. */
  tierMode: z.enum(['graduated', 'volume']).optional(),
  tiers: z.array(priceTierSchema).min(1).max(32).optional(),
});
export const PriceBookPublished = z.object({
  priceBookId: id,
  version: positiveInt,
  currency: z.string().length(3),
  effectiveFrom: instant,
  prices: z.array(priceSchema).min(1).max(1000),
  publishedBy: id,
  publishedAt: instant,
});
export const InvoiceFinalized = z.object({
  invoiceId: id,
  tenantId: id,
  period: z.string().regex(/^\d{4}-\d{2}$/),
  number: z.string().max(64),
  total: z.string(),
  currency: z.string().length(3),
  cutoffSequence: nonNegativeInt,
  priceBookVersion: positiveInt,
  sha256: z.string().length(64),
  actor: id,
  reason: z.string().max(500),
  finalizedAt: instant,
});

/** Finance actions: audited (actor and reason), each an event on the invoice's or tenant's subject. */
const audit = { actor: id, reason: z.string().min(1).max(500) };
export const InvoicePaid = z.object({ invoiceId: id, tenantId: id, amount: decimalString, currency: z.string().length(3), paymentReference: z.string().max(200).optional(), paidAt: instant, ...audit });
export const InvoiceVoided = z.object({ invoiceId: id, tenantId: id, number: z.string().max(64), voidedAt: instant, ...audit });
export const CreditNoteIssued = z.object({ creditNoteId: id, invoiceId: id, tenantId: id, number: z.string().max(64), amount: decimalString, currency: z.string().length(3), issuedAt: instant, ...audit });
export const CreditGranted = z.object({
  grantId: id,
  tenantId: id,
  amount: decimalString,
  currency: z.string().length(3),
  /** Higher is used first. */
  priority: z.number().int().min(0).max(1000),
  expiresAt: instant.nullable(),
  grantedAt: instant,
  ...audit,
});
export const TaxRatesSet = z.object({
  tenantId: id,
  rates: z.array(z.object({ name: z.string().min(1).max(64), rate: z.string().regex(/^(0(\.\d+)?|1(\.0+)?)$/) })).max(8),
  /** When the rates were set. Without `effectiveFrom`, they apply to invoices finalized from then on. */
  effectiveAt: instant,
  /**
   * Optional: the instant the rates take effect (may be in the future). An invoice is taxed at the
   * rates in force at the end of its billing period (the last instant of the period).
   */
  effectiveFrom: instant.optional(),
  ...audit,
});

/** Every event type with its current schema version and payload schema. */
export const eventCatalogue = {
  TenantCreated: { version: 1, schema: TenantCreated },
  ApiKeyIssued: { version: 1, schema: ApiKeyIssued },
  ApiKeyRevoked: { version: 1, schema: ApiKeyRevoked },
  JobSubmitted: { version: 1, schema: JobSubmitted },
  SubtaskCreated: { version: 1, schema: SubtaskCreated },
  JobCancelRequested: { version: 1, schema: JobCancelRequested },
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
  PriceBookPublished: { version: 1, schema: PriceBookPublished },
  InvoiceFinalized: { version: 1, schema: InvoiceFinalized },
  InvoicePaid: { version: 1, schema: InvoicePaid },
  InvoiceVoided: { version: 1, schema: InvoiceVoided },
  CreditNoteIssued: { version: 1, schema: CreditNoteIssued },
  CreditGranted: { version: 1, schema: CreditGranted },
  TaxRatesSet: { version: 1, schema: TaxRatesSet },
} as const;

export type EventType = keyof typeof eventCatalogue;
export const EventType = Object.fromEntries(Object.keys(eventCatalogue).map((k) => [k, k])) as { [K in EventType]: K };
export type EventData<T extends EventType> = z.infer<(typeof eventCatalogue)[T]['schema']>;
export const eventTypes = Object.keys(eventCatalogue) as EventType[];
export function isEventType(type: string): type is EventType {
  return Object.hasOwn(eventCatalogue, type);
}
