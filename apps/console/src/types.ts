/**
 * The API's answers the console reads. Where the routes' zod schemas live in libs/contracts
 * (console-views.ts: leases, the fleet) the types are derived from them; a type-only import, so
 * nothing of it reaches the bundle. The others restate the routes' OpenAPI schemas
 * (/docs/openapi.json) until their schemas move there too.
 */
import type { z } from 'zod';
import type { fleetHolderSchema, fleetResponse, leaseView } from '../../../libs/contracts/src/console-views';

export type Role = 'tenant' | 'finance' | 'sre' | 'admin';

export interface Me {
  keyId: string;
  role: Role;
  tenantId: string | null;
}

export const JOB_STATES = ['pending', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface JobSummary {
  jobId: string;
  tenantId: string;
  projectId: string;
  name: string | null;
  state: string;
  reason: string | null;
  submittedAt: string;
  completedAt: string | null;
  gpuMsObserved: number | null;
}

export interface Subtask {
  subtaskId: string;
  index: number;
  gpus: number;
  runtimeMs: number;
  state: string;
  attempt: number;
  nodeId: string | null;
  gpuModel: string | null;
  placedAt: string | null;
  startedAt: string | null;
  endedAt: string | null;
  exitCode: number | null;
  reason: string | null;
}

export interface Scheduling {
  state?: string;
  waiting?: string;
  code?: string;
  queuePosition?: number;
  pendingSubtasks?: number;
  runningSubtasks?: number;
  reservation?: { startAt?: string; holder?: boolean };
}

export interface JobView extends JobSummary {
  spec: Record<string, unknown>;
  subtasks: Subtask[];
  scheduling?: Scheduling;
}

export interface JobsPage {
  jobs: JobSummary[];
  nextCursor: string | null;
}

/** A lease, as libs/contracts (console-views.ts) defines the API's answer. */
export type Lease = z.output<typeof leaseView>;

export interface LeasesPage {
  leases: Lease[];
  nextCursor: string | null;
}

export type UsageDimension = 'tenant' | 'project' | 'job' | 'model' | 'capacityType';

export interface UsageRow {
  windowStart: string;
  windowEnd: string;
  localStart: string;
  tenant?: string;
  project?: string;
  model?: string;
  capacityType?: string;
  gpuMs: number;
  interruptedGpuMs: number;
  accruedGpuMs: number;
}

export interface UsageAnswer {
  from: string;
  to: string;
  window: 'hour' | 'day' | 'month';
  timeZone: string;
  groupBy: string[];
  totalGpuMs: number;
  windowCount: number;
  nextCursor: string | null;
  rows: UsageRow[];
}

export type InvoiceStatus = 'draft' | 'finalized' | 'paid' | 'void';

export interface InvoiceSummary {
  invoiceId: string;
  tenantId: string;
  period: string;
  status: InvoiceStatus;
  number: string | null;
  revision: number;
  currency: string;
  subtotal: string;
  total: string;
  amountDue: string;
  credited: string;
  balanceDue: string;
  finalizedAt: string | null;
  cutoffSequence: number;
  priceBookVersion: number | null;
  validationErrors: number;
}

export interface InvoiceLine {
  line: number;
  kind: string;
  description: string;
  servicePeriod: string;
  gpuModel: string | null;
  capacityType: string | null;
  quantityGpuHours: string | null;
  unitPrice: string | null;
  amount: string;
}

export interface InvoiceDocument {
  invoiceId: string;
  number: string | null;
  status: 'draft' | 'finalized';
  tenant: { tenantId: string; name: string; billingTimeZone: string };
  currency: string;
  period: string;
  periodStart: string;
  periodEnd: string;
  cutoffSequence: number;
  lines: InvoiceLine[];
  subtotal: string;
  taxes: { name: string; rate: string; taxableAmount: string; amount: string }[];
  total: string;
  amountDue: string;
  validationErrors: { usageId: string; message: string }[];
}

export interface InvoiceAction {
  kind: string;
  actor: string;
  reason: string;
  at: string;
  eventId: string;
  eventSequence: number;
}

export interface CreditNote {
  creditNoteId: string;
  number: string;
  amount: string;
  currency: string;
  issuedAt: string;
  reason: string;
}

export interface InvoiceStatusView extends InvoiceSummary {
  creditNotes: CreditNote[];
  actions: InvoiceAction[];
}

export interface Evidence {
  invoiceId: string;
  line: InvoiceLine;
  usage: {
    usageId: string;
    eventSequence: number;
    sourceSequences: number[];
    projectId: string;
    jobId: string | null;
    subtaskId: string | null;
    attempt: number | null;
    leaseId: string | null;
    gpuModel: string;
    gpus: number;
    startAt: string;
    endAt: string;
    gpuMs: number;
    interrupted: boolean;
  }[];
  slaCredits: { creditId: string; eventSequence: number; period: string; percent: number }[];
  eventSequences: number[];
}

export interface ReviewItem {
  kind: string;
  tenantId: string;
  referenceId: string;
  servicePeriod: string;
  eventId: string;
  piece: number;
  eventSequence: number;
  reason: string;
  status: 'open' | 'billed' | 'dismissed';
  resolvedInvoiceId: string | null;
  gpuModel?: string;
  gpus?: number;
  startAt?: string;
  endAt?: string;
  gpuMs?: number;
}

export interface PriceBook {
  priceBookId: string;
  version: number;
  currency: string;
  effectiveFrom: string;
  prices: { gpuModel: string; capacityType: string; pricePerGpuHour: string; incrementMs: number; minimumMs: number; tierMode?: string }[];
  publishedBy: string;
  publishedAt: string;
}

export interface SlaAvailability {
  availabilityPercent: string | null;
  targetPercent: string;
  met: boolean;
  creditPercent: number;
}

export interface SlaReport {
  tenantId: string;
  period: string;
  asOf: string;
  final: boolean;
  allocationAvailability: SlaAvailability;
  apiAvailability: SlaAvailability;
}

/** The fleet, as libs/contracts (console-views.ts) defines GET /v1/fleet's answer. */
export type FleetNode = z.output<typeof fleetResponse>['nodes'][number];
export type GpuHolder = z.output<typeof fleetHolderSchema>;
export type NodeState = FleetNode['state'];

export interface SchedulerStatus {
  leader: boolean;
  caughtUp: boolean;
  lastSequence: number;
  cycles: number;
  placements: number;
  preemptions: number;
  lastCycleMs: number;
  nodes: number;
  queuedJobs: number;
}

export interface DeadLetter {
  seq: number;
  time: string;
  subject: string;
  consumer: string;
  reason: string;
  payload: unknown;
}

export interface QueueItem {
  jobId: string;
  tenantId: string;
  projectId: string;
  priorityClass: string;
  priority: number;
  submittedAt: string;
  pendingSubtasks: number;
  runningSubtasks: number;
  queuePosition: number | null;
  waiting: string | null;
  code: string | null;
}

export interface SloAlert {
  name: string;
  severity: 'page' | 'ticket';
  factor: string;
  shortWindowMs: number;
  longWindowMs: number;
  shortBurnRate: string;
  longBurnRate: string;
  firing: boolean;
}

export interface Slo {
  slo: string;
  objectivePercent: string;
  period: { total: number; bad: number };
  budgetConsumed: string;
  budgetRemaining: string;
  currentBurnRate: string;
  status: 'ok' | 'ticket' | 'page';
  alerts: SloAlert[];
}
