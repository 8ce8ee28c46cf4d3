import { DeliverPolicy } from '@nats-io/jetstream';
import { decodeEvent, type DomainEvent } from '@fastgpu/contracts';
import type { Bus } from '@fastgpu/messaging';

/** Messages asked of the server per pull while the log is read. */
const PULL_MESSAGES_MAX = 1000;
/** Longest wait for the next message before the read is reported stuck. */
const READ_IDLE_TIMEOUT_MS = 60_000;

/**
 * Reads the events stream once, in order (an ordered consumer pulling up to a thousand messages at
 * a time), calling `onMessage` with each message's sequence, Nats-Msg-Id, decoded event (none
 * when it does not decode) and stream receipt time, and returns how many it read. Only the messages stored when the read
 * starts are read (the consumer's pending count then); `filterSubject` narrows them. The checker's
 * own reader, not the replay's: it audits what is stored, headers included, and keeps nothing.
 */
export async function readLog(bus: Bus, onMessage: (sequence: number, msgId: string, event: DomainEvent | undefined, receivedMs: number) => void, filterSubject?: string): Promise<number> {
  const consumer = await bus.js.consumers.get(bus.topology.streams.events, { deliver_policy: DeliverPolicy.All, ...(filterSubject ? { filter_subjects: filterSubject } : {}) });
  const total = (await consumer.info(true)).num_pending;
  if (total === 0) return 0;
  const messages = await consumer.consume({ max_messages: PULL_MESSAGES_MAX });
  const iterator = messages[Symbol.asyncIterator]();
  let read = 0;
  try {
    while (read < total) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<'idle'>((resolve) => (timer = setTimeout(() => resolve('idle'), READ_IDLE_TIMEOUT_MS)));
      const next = await Promise.race([iterator.next(), idle]);
      clearTimeout(timer);
      if (next === 'idle' || next.done) throw new Error(`the log stopped answering after ${read} of ${total} messages`);
      const m = next.value;
      const decoded = decodeEvent(m.data);
      onMessage(m.seq, m.headers?.get('Nats-Msg-Id') ?? '', decoded.ok ? decoded.event : undefined, Math.floor(m.info.timestampNanos / 1e6));
      read++;
    }
  } finally {
    // stop(), not close(): close() of an ordered consumer's messages does not settle (nats.js 3.4).
    messages.stop();
  }
  return read;
}

/** Leases requested in the log with no release requested, read from the lease events only. */
export async function unreleasedLeases(bus: Bus): Promise<Array<{ leaseId: string; tenantId: string }>> {
  const requested = new Map<string, string>();
  await readLog(
    bus,
    (_sequence, _msgId, event) => {
      if (event?.type === 'LeaseRequested') requested.set(event.data.leaseId, event.data.tenantId);
      if (event?.type === 'LeaseReleaseRequested') requested.delete(event.data.leaseId);
    },
    `${bus.topology.prefix}.evt.intake.lease.>`,
  );
  return [...requested].map(([leaseId, tenantId]) => ({ leaseId, tenantId }));
}

/** One GPU's placement: which node and GPU indices an attempt or a lease was given. */
export interface Placement {
  nodeId: string;
  gpuIndices: number[];
}

/** What the invariants need of the log, gathered in one pass without keeping the events. */
export interface LogSummary {
  messages: number;
  lastSequence: number;
  /** Ids stored more than once, and messages stored without an id (as ''). */
  repeatedIds: Array<[string, number]>;
  distinctIds: number;
  /** JobSubmitted: job id → tenant. */
  jobs: Map<string, string>;
  /** LeaseRequested: lease id → tenant. */
  leases: Map<string, string>;
  externalStarted: Set<string>;
  externalStopped: Set<string>;
  /** UsageRecorded and LateUsageRecorded (late usage is billed like usage). */
  usageRecords: number;
  usageIds: Set<string>;
  /** Usage records per allocation (an attempt, a lease, or the usage itself). */
  usagePerAllocation: Map<string, number>;
  usageGpuMsByTenant: Map<string, number>;
  /** `subtask <id>#<attempt>` or `lease <id>` → the GPUs it was placed on. */
  placements: Map<string, Placement>;
  /** `subtask <id>#<attempt>` → its first start and completion reports: the agent's times and the log's receipt times. */
  runs: Map<string, ReportedRun>;
  /** NodeLost: which node, when detected. */
  nodesLost: Array<{ nodeId: string; detectedAtMs: number; lastHeartbeatAt: string; reason: string }>;
}

export interface ReportedRun {
  nodeId: string;
  subtaskId: string;
  attempt: number;
  startedAtMs?: number;
  startReceivedMs?: number;
  endedAtMs?: number;
  endReceivedMs?: number;
}

export async function summarizeLog(bus: Bus): Promise<LogSummary> {
  const ids = new Map<string, number>();
  const summary: LogSummary = {
    messages: 0,
    lastSequence: 0,
    repeatedIds: [],
    distinctIds: 0,
    jobs: new Map(),
    leases: new Map(),
    externalStarted: new Set(),
    externalStopped: new Set(),
    usageRecords: 0,
    usageIds: new Set(),
    usagePerAllocation: new Map(),
    usageGpuMsByTenant: new Map(),
    placements: new Map(),
    runs: new Map(),
    nodesLost: [],
  };
  const runOf = (d: { subtaskId: string; attempt: number; nodeId: string }) => {
    const key = `subtask ${d.subtaskId}#${d.attempt}`;
    let run = summary.runs.get(key);
    if (!run) summary.runs.set(key, (run = { nodeId: d.nodeId, subtaskId: d.subtaskId, attempt: d.attempt }));
    return run;
  };
  summary.messages = await readLog(bus, (sequence, msgId, event, receivedMs) => {
    summary.lastSequence = sequence;
    ids.set(msgId, (ids.get(msgId) ?? 0) + 1);
    switch (event?.type) {
      case 'JobSubmitted':
        summary.jobs.set(event.data.jobId, event.data.tenantId);
        break;
      case 'LeaseRequested':
        summary.leases.set(event.data.leaseId, event.data.tenantId);
        break;
      case 'ExternalAllocationStarted':
        summary.externalStarted.add(event.data.allocationId);
        break;
      case 'ExternalAllocationStopped':
        summary.externalStopped.add(event.data.allocationId);
        break;
      case 'UsageRecorded':
      case 'LateUsageRecorded': {
        const u = event.data as { usageId: string; tenantId: string; subtaskId?: string | null; attempt?: number | null; leaseId?: string | null; gpuMs: number };
        const key = u.subtaskId ? `subtask ${u.subtaskId}#${u.attempt}` : u.leaseId ? `lease ${u.leaseId}` : `usage ${u.usageId}`;
        summary.usageRecords++;
        summary.usageIds.add(u.usageId);
        summary.usagePerAllocation.set(key, (summary.usagePerAllocation.get(key) ?? 0) + 1);
        summary.usageGpuMsByTenant.set(u.tenantId, (summary.usageGpuMsByTenant.get(u.tenantId) ?? 0) + u.gpuMs);
        break;
      }
      case 'SubtaskPlaced':
        summary.placements.set(`subtask ${event.data.subtaskId}#${event.data.attempt}`, { nodeId: event.data.nodeId, gpuIndices: event.data.gpuIndices });
        break;
      case 'SubtaskStarted': {
        const run = runOf(event.data);
        if (run.startedAtMs === undefined) Object.assign(run, { startedAtMs: Date.parse(event.data.startedAt), startReceivedMs: receivedMs });
        break;
      }
      case 'SubtaskCompleted': {
        const run = runOf(event.data);
        if (run.endedAtMs === undefined) Object.assign(run, { endedAtMs: Date.parse(event.data.endedAt), endReceivedMs: receivedMs });
        break;
      }
      case 'NodeLost':
        summary.nodesLost.push({ nodeId: event.data.nodeId, detectedAtMs: Date.parse(event.data.detectedAt), lastHeartbeatAt: event.data.lastHeartbeatAt, reason: event.data.reason });
        break;
      case 'LeaseGranted':
        summary.placements.set(`lease ${event.data.leaseId}`, { nodeId: event.data.nodeId, gpuIndices: event.data.gpuIndices });
        break;
      default:
        break;
    }
  });
  summary.distinctIds = ids.size;
  summary.repeatedIds = [...ids].filter(([id, count]) => id === '' || count > 1);
  return summary;
}
