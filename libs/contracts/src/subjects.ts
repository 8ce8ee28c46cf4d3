import type { EventData, EventType } from './events';

/**
 * Subject and stream names, built in one place. Subjects name the aggregate instance
 * (`<prefix>.evt.<context>.<aggregate>.<id>`) so an ordered consumer on one subject replays one
 * aggregate and a publish can use the exact-subject expected-sequence header.
 * The prefix is configuration: each test run uses its own.
 */
export interface Topology {
  prefix: string;
  streams: { events: string; heartbeats: string; commands: string; deadLetters: string; logs: string };
  /** JetStream Object Store buckets (each backed by the stream `OBJ_<bucket>`): sub-task results. */
  buckets: { results: string };
  subjects: {
    eventsAll: string;
    heartbeatsAll: string;
    commandsAll: string;
    deadLettersAll: string;
    logsAll: string;
    heartbeat(nodeId: string): string;
    command(nodeId: string): string;
    deadLetter(consumer: string): string;
    /** stdout/stderr of one attempt of one sub-task (LOGS stream): `<prefix>.logs.<tenantId>.<jobId>.<subtaskIndex>.<attempt>`. */
    logs(tenantId: string, jobId: string, subtaskIndex: number, attempt: number): string;
    /** Request/reply endpoints between services (core NATS, not stored): `<prefix>.svc.<service>.<operation>`. */
    service(service: string, operation: string): string;
    tenant(tenantId: string): string;
    job(jobId: string): string;
    lease(leaseId: string): string;
    schedulerNode(nodeId: string): string;
    schedulerJob(jobId: string): string;
    /** The one scheduling policy aggregate. */
    schedulingPolicy(): string;
    agentNode(nodeId: string): string;
    reliabilityNode(nodeId: string): string;
    reliabilityTenant(tenantId: string): string;
    usage(tenantId: string): string;
    external(tenantId: string): string;
    priceBook(priceBookId: string): string;
    invoice(invoiceId: string): string;
    billingTenant(tenantId: string): string;
  };
}

const PLATFORM = '_platform';

export function topology(prefix: string): Topology {
  if (!/^[a-z][a-z0-9_-]*$/i.test(prefix)) throw new Error(`invalid subject prefix "${prefix}"`);
  const streamPrefix = prefix.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  const evt = `${prefix}.evt`;
  return {
    prefix,
    streams: {
      events: `${streamPrefix}_EVENTS`,
      heartbeats: `${streamPrefix}_HEARTBEATS`,
      commands: `${streamPrefix}_COMMANDS`,
      deadLetters: `${streamPrefix}_DLQ`,
      logs: `${streamPrefix}_LOGS`,
    },
    buckets: { results: `${streamPrefix}_RESULTS` },
    subjects: {
      eventsAll: `${evt}.>`,
      heartbeatsAll: `${prefix}.hb.>`,
      commandsAll: `${prefix}.cmd.>`,
      deadLettersAll: `${prefix}.dlq.>`,
      logsAll: `${prefix}.logs.>`,
      heartbeat: (nodeId) => `${prefix}.hb.${nodeId}`,
      command: (nodeId) => `${prefix}.cmd.${nodeId}`,
      deadLetter: (consumer) => `${prefix}.dlq.${consumer}`,
      logs: (tenantId, jobId, subtaskIndex, attempt) => `${prefix}.logs.${tenantId}.${jobId}.${subtaskIndex}.${attempt}`,
      service: (service, operation) => `${prefix}.svc.${service}.${operation}`,
      tenant: (tenantId) => `${evt}.intake.tenant.${tenantId}`,
      job: (jobId) => `${evt}.intake.job.${jobId}`,
      lease: (leaseId) => `${evt}.intake.lease.${leaseId}`,
      schedulerNode: (nodeId) => `${evt}.scheduler.node.${nodeId}`,
      schedulerJob: (jobId) => `${evt}.scheduler.job.${jobId}`,
      schedulingPolicy: () => `${evt}.scheduler.policy.current`,
      agentNode: (nodeId) => `${evt}.agent.node.${nodeId}`,
      reliabilityNode: (nodeId) => `${evt}.reliability.node.${nodeId}`,
      reliabilityTenant: (tenantId) => `${evt}.reliability.tenant.${tenantId}`,
      usage: (tenantId) => `${evt}.metering.usage.${tenantId}`,
      external: (tenantId) => `${evt}.external.tenant.${tenantId}`,
      priceBook: (priceBookId) => `${evt}.billing.pricebook.${priceBookId}`,
      invoice: (invoiceId) => `${evt}.billing.invoice.${invoiceId}`,
      billingTenant: (tenantId) => `${evt}.billing.tenant.${tenantId}`,
    },
  };
}

/** The subject an event is published on, from its type and data. Exhaustive over the catalogue. */
export function subjectFor<T extends EventType>(topo: Topology, type: T, data: EventData<T>): string {
  const s = topo.subjects;
  const d = data as Record<string, unknown>;
  const key = (field: string): string => {
    const value = d[field];
    if (typeof value !== 'string' || value.length === 0) throw new Error(`${type}: missing ${field} for subject`);
    return value;
  };
  const t = type;
  switch (t) {
    case 'TenantCreated':
      return s.tenant(key('tenantId'));
    case 'ApiKeyIssued':
    case 'ApiKeyRevoked':
      return s.tenant(typeof d.tenantId === 'string' ? d.tenantId : PLATFORM);
    case 'JobSubmitted':
    case 'SubtaskCreated':
    case 'JobCancelRequested':
    case 'JobResultsAggregated':
      return s.job(key('jobId'));
    case 'LeaseRequested':
    case 'LeaseReleaseRequested':
      return s.lease(key('leaseId'));
    case 'SubtaskPlaced':
    case 'SubtaskPreempted':
    case 'LeaseGranted':
    case 'LeaseReleased':
      return s.schedulerNode(key('nodeId'));
    case 'SubtaskRequeued':
    case 'SubtaskAbandoned':
    case 'JobCompleted':
      return s.schedulerJob(key('jobId'));
    case 'NodeRegistered':
    case 'SubtaskStarted':
    case 'SubtaskCompleted':
    case 'SubtaskFailed':
      return s.agentNode(key('nodeId'));
    case 'SchedulingPolicySet':
      return s.schedulingPolicy();
    case 'NodeLost':
    case 'NodeRecovered':
    case 'NodeDrained':
    case 'NodeUndrained':
    case 'ReportRejected':
      return s.reliabilityNode(key('nodeId'));
    case 'SlaCreditIssued':
      return s.reliabilityTenant(key('tenantId'));
    case 'UsageRecorded':
    case 'LateUsageRecorded':
      return s.usage(key('tenantId'));
    case 'ExternalAllocationStarted':
    case 'ExternalAllocationStopped':
    case 'ExternalAllocationReportedLate':
      return s.external(key('tenantId'));
    case 'PriceBookPublished':
      return s.priceBook(key('priceBookId'));
    case 'InvoiceFinalized':
    case 'InvoicePaid':
    case 'InvoiceVoided':
    case 'CreditNoteIssued':
    case 'InvoiceDraftDeleted':
    case 'InvoiceReissued':
      return s.invoice(key('invoiceId'));
    case 'CreditGranted':
    case 'TaxRatesSet':
    case 'BillingPeriodClosed':
    case 'LateUsageBilled':
    case 'LateUsageDismissed':
    case 'TenantBillingProfileSet':
      return s.billingTenant(key('tenantId'));
    default: {
      const unreachable: never = t;
      throw new Error(`no subject for event type ${String(unreachable)}`);
    }
  }
}
