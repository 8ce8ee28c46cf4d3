import type { EventType, Role } from '@fastgpu/contracts';

/**
 * Who sees an event type on the live feed (GET /v1/live), besides sre and admin, who see every
 * event: `tenant` — the tenant the event's envelope names (`tenantid`), and only that tenant;
 * `finance` — finance keys, for every tenant (usage, invoices, credits, price books).
 * A record over every event type, so a new event type does not type-check until someone decides
 * who may see it; anything not given to a tenant or finance is for platform roles only.
 */
export interface LiveAudience {
  tenant: boolean;
  finance: boolean;
}

const platform: LiveAudience = { tenant: false, finance: false };
const tenant: LiveAudience = { tenant: true, finance: false };
const money: LiveAudience = { tenant: true, finance: true };
const financeOnly: LiveAudience = { tenant: false, finance: true };

export const liveAudience: Readonly<Record<EventType, LiveAudience>> = {
  TenantCreated: platform,
  // Key events carry the secret's hash: never on a tenant's or finance's feed.
  ApiKeyIssued: platform,
  ApiKeyRevoked: platform,
  JobSubmitted: tenant,
  SubtaskCreated: tenant,
  JobCancelRequested: tenant,
  JobResultsAggregated: tenant,
  LeaseRequested: tenant,
  LeaseReleaseRequested: tenant,
  SubtaskPlaced: tenant,
  SubtaskPreempted: tenant,
  SubtaskRequeued: tenant,
  SubtaskAbandoned: tenant,
  JobCompleted: tenant,
  LeaseGranted: tenant,
  LeaseReleased: tenant,
  NodeRegistered: platform,
  SubtaskStarted: tenant,
  SubtaskCompleted: tenant,
  SubtaskFailed: tenant,
  NodeLost: platform,
  NodeRecovered: platform,
  NodeDrained: platform,
  NodeUndrained: platform,
  SchedulingPolicySet: platform,
  ReportRejected: platform,
  SlaCreditIssued: money,
  UsageRecorded: money,
  ExternalAllocationStarted: money,
  ExternalAllocationStopped: money,
  ExternalAllocationReportedLate: money,
  LateUsageRecorded: money,
  PriceBookPublished: financeOnly,
  InvoiceFinalized: money,
  InvoicePaid: money,
  InvoiceVoided: money,
  CreditNoteIssued: money,
  CreditGranted: money,
  TaxRatesSet: financeOnly,
  BillingPeriodClosed: financeOnly,
  InvoiceDraftDeleted: money,
  InvoiceReissued: money,
  // The review queue's decisions are finance's work, not the tenant's.
  LateUsageBilled: financeOnly,
  LateUsageDismissed: financeOnly,
  TenantBillingProfileSet: financeOnly,
};

/** Who is watching: the role and, for a tenant key, its tenant (from the credential only). */
export interface LiveViewer {
  role: Role;
  tenantId: string | null;
}

/** The event types a viewer may receive (the cheap test, on the message's type header, before decoding). */
export function liveTypesFor(viewer: LiveViewer): ReadonlySet<string> {
  const types = Object.keys(liveAudience) as EventType[];
  switch (viewer.role) {
    case 'admin':
    case 'sre':
      return new Set(types);
    case 'finance':
      return new Set(types.filter((type) => liveAudience[type].finance));
    case 'tenant':
      return new Set(viewer.tenantId === null ? [] : types.filter((type) => liveAudience[type].tenant));
    default: {
      const unreachable: never = viewer.role;
      return unreachable;
    }
  }
}

/**
 * Whether a decoded event goes to a viewer: its type is one the viewer may see, and for a tenant
 * the envelope names that tenant (an event without a tenant never reaches a tenant).
 */
export function mayReceive(viewer: LiveViewer, types: ReadonlySet<string>, event: { type: string; tenantid: string | null }): boolean {
  if (!types.has(event.type)) return false;
  return viewer.role !== 'tenant' || (viewer.tenantId !== null && event.tenantid === viewer.tenantId);
}

/**
 * What of an event's data a viewer receives. A tenant's own events can name another tenant's
 * work: a SubtaskPreempted names the job that preempted it (`preemptedByJobId`), which may be
 * anyone's, so a tenant's feed drops that field; platform and finance roles get the data whole.
 */
export function liveDataFor(viewer: LiveViewer, event: { type: string; data: unknown }): unknown {
  if (viewer.role !== 'tenant' || event.type !== 'SubtaskPreempted' || typeof event.data !== 'object' || event.data === null) return event.data;
  const { preemptedByJobId: _other, ...own } = event.data as Record<string, unknown>;
  return own;
}
