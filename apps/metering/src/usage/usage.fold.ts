import { agentEpochAfter, DEFAULT_LATENESS_HORIZON, externalGpusRefusal, externalTenantRefusal, externalTimeVerdict, judgeNodeReport, registrationEndsRuns, ReportRejectionCode, reportedIntervalMs, reportTimeMs, type CapacityType, type DomainEvent, type LatenessHorizon, type StoredEvent } from '@fastgpu/contracts';
import { instantMs } from '@fastgpu/money';
import { type Allocation, AllocationKind, emptyAllocation, EndReason, externalKey, type FoldInput, type FoldOutput, hourlyPieces, leaseKey, subtaskKey } from './usage.model';


/**
 * The usage fold, pure: allocation intervals from event times only. No clock, no I/O.
 *
 * An allocation is a sub-task attempt, a lease or an external allocation. It is placed (who,
 * what, how many GPUs, which lease epoch), started and ended; when all three are known it
 * closes once, into integer GPU-ms split exactly at UTC hour boundaries. Reports carrying
 * another lease epoch than the placement are stale and ignored; reports that arrive before the
 * placement wait in the row and are checked when it comes, so an out-of-order pair gives the
 * same result as the ordered pair. Each field records the id of the event that set it, which
 * is the permanent dedupe for single-allocation events.
 */

/**
 * A node report's time as stored until its allocation closes: the agent's, bounded by the log's
 * receipt (libs/contracts `reportTimeMs`). The placement bound is applied when the allocation
 * closes (`reportedIntervalMs`), so a start before the placement still tells how far behind the
 * agent's clock is, and its end is moved by as much.
 */
function reportedMs(iso: string, stored: Pick<StoredEvent, 'receivedAtMs'>): number {
  return reportTimeMs(instantMs(iso), { receivedAtMs: stored.receivedAtMs });
}

/** Folds a batch of events (in stream order) into the loaded allocations. */
export function foldUsage(events: readonly StoredEvent[], input: FoldInput): FoldOutput {
  const { allocations } = input;
  const horizon = input.horizon ?? DEFAULT_LATENESS_HORIZON;
  const out: FoldOutput = { changed: new Set(), closures: [], jobObservations: [], rejections: [], reportRejections: [], nodeEventsApplied: [], nodeEpochsChanged: new Set(), eventTimeMaxMs: null };
  const nodeEventsSeen = new Set(input.appliedNodeEvents);
  const { nodeEpochs } = input;
  const raiseEpoch = (nodeId: string, epoch: number): void => {
    const raised = agentEpochAfter(nodeEpochs.get(nodeId), epoch);
    if (raised === nodeEpochs.get(nodeId)) return;
    nodeEpochs.set(nodeId, raised);
    out.nodeEpochsChanged.add(nodeId);
  };

  const get = (key: string, kind: AllocationKind): Allocation => {
    let allocation = allocations.get(key);
    if (!allocation) {
      allocation = emptyAllocation(key, kind);
      allocations.set(key, allocation);
    }
    return allocation;
  };

  /**
   * The sub-tasks and leases still open on a node, sorted by key so the closing order (and so the
   * published usage order) is deterministic. `placedOnly`: only those whose placement is already
   * folded, i.e. placed before this event in log order, as the scheduler sees them.
   */
  const openOnNode = (nodeId: string, placedOnly: boolean): Allocation[] =>
    [...allocations.values()]
      .filter((a) => a.nodeId === nodeId && a.endEventId === null && a.kind !== 'external' && (!placedOnly || a.placedEventId !== null))
      .sort((x, y) => (x.key < y.key ? -1 : 1));

  const touch = (allocation: Allocation, stored: StoredEvent): void => {
    out.changed.add(allocation.key);
    discardStaleReports(allocation);
    if (allocation.gpuMs !== null || allocation.gpus === null || allocation.startMs === null || allocation.endMs === null) return;
    if (allocation.kind === 'subtask') {
      // The run on the server's clock: a node clock behind the placement moves both ends (libs/contracts),
      // the end never past the moment the log received the report that closed the run (a skew that
      // ended during the run would otherwise carry it into the next placement on its GPUs).
      const endFromAgent = allocation.endReason === EndReason.completed || allocation.endReason === EndReason.failed;
      const latestMs = stored.receivedAtMs;
      Object.assign(allocation, reportedIntervalMs({ startMs: allocation.startMs, endMs: allocation.endMs, endFromAgent }, { placedAtMs: allocation.placedMs, latestMs }));
    }
    const { totalGpuMs, hours } = hourlyPieces(allocation);
    allocation.gpuMs = totalGpuMs;
    allocation.closedEventId = stored.event.id;
    allocation.closedSequence = stored.sequence;
    out.closures.push({ allocation, closingEvent: stored.event, closingSequence: stored.sequence, hours });
  };

  const setStart = (allocation: Allocation, stored: StoredEvent, atMs: number, epoch: number | null): void => {
    if (allocation.startEventId !== null) return; // the start is known: a duplicate or a second report
    if (epoch !== null && allocation.leaseEpoch !== null && epoch !== allocation.leaseEpoch) {
      allocation.staleReports++;
      out.changed.add(allocation.key);
      return;
    }
    allocation.startMs = atMs;
    allocation.startEpoch = epoch;
    allocation.startEventId = stored.event.id;
    allocation.startSequence = stored.sequence;
    touch(allocation, stored);
  };

  const setEnd = (allocation: Allocation, stored: StoredEvent, atMs: number, epoch: number | null, reason: EndReason, interrupted: boolean): void => {
    if (allocation.endEventId !== null) return; // already ended: the first end in log order wins
    if (epoch !== null && allocation.leaseEpoch !== null && epoch !== allocation.leaseEpoch) {
      allocation.staleReports++;
      out.changed.add(allocation.key);
      return;
    }
    allocation.endMs = atMs;
    allocation.endEpoch = epoch;
    allocation.endEventId = stored.event.id;
    allocation.endSequence = stored.sequence;
    allocation.endReason = reason;
    allocation.interrupted = interrupted;
    touch(allocation, stored);
  };

  /** Whether a node report may be applied: by the shared rule against the placement, or (before it) against the node of the reports already waiting. */
  const reportAccepted = (allocation: Allocation, stored: StoredEvent, report: DomainEvent<'SubtaskStarted' | 'SubtaskCompleted' | 'SubtaskFailed'>): boolean => {
    const d = report.data;
    const placed = allocation.placedEventId !== null && allocation.nodeId !== null && allocation.leaseEpoch !== null;
    const placement = placed ? { nodeId: allocation.nodeId!, subtaskId: allocation.subtaskId, attempt: allocation.attempt, leaseEpoch: allocation.leaseEpoch! } : { nodeId: allocation.nodeId ?? d.nodeId, subtaskId: d.subtaskId, attempt: d.attempt, leaseEpoch: d.leaseEpoch };
    const judgement = judgeNodeReport(placement, { ...d, subject: stored.subject });
    if (judgement.ok) return true;
    rejectReport(allocation, stored, report, judgement.code, judgement.reason);
    return false;
  };

  const rejectReport = (allocation: Allocation, stored: StoredEvent, report: DomainEvent<'SubtaskStarted' | 'SubtaskCompleted' | 'SubtaskFailed'>, code: ReportRejectionCode, reason: string): void => {
    const d = report.data;
    allocation.staleReports++;
    out.changed.add(allocation.key);
    out.reportRejections.push({ eventId: report.id, sequence: stored.sequence, type: report.type, nodeId: d.nodeId, subject: stored.subject, subtaskId: d.subtaskId, code, reason });
  };

  const place = (allocation: Allocation, stored: StoredEvent, placement: Partial<Allocation>): boolean => {
    if (allocation.placedEventId !== null) return false;
    // Reports that arrived before the placement came from this node; from another, they are refused now.
    const reporterNodeId = allocation.kind === 'subtask' ? allocation.nodeId : null;
    Object.assign(allocation, placement);
    if (reporterNodeId !== null && reporterNodeId !== allocation.nodeId) discardReportsFromAnotherNode(allocation);
    allocation.placedEventId = stored.event.id;
    allocation.placedSequence = stored.sequence;
    // Reports applied before their placement (out of order) are clamped now, as if in order.
    if (allocation.placedMs !== null) {
      if (allocation.startMs !== null && allocation.startMs < allocation.placedMs) allocation.startMs = allocation.placedMs;
      if (allocation.endMs !== null && allocation.endMs < allocation.placedMs && allocation.endReason !== 'node-lost') allocation.endMs = allocation.placedMs;
    }
    return true;
  };

  for (const stored of events) {
    const event = stored.event;
    const timeMs = instantMs(event.time);
    if (out.eventTimeMaxMs === null || timeMs > out.eventTimeMaxMs) out.eventTimeMaxMs = timeMs;
    switch (event.type) {
      case 'SubtaskPlaced': {
        const d = event.data;
        const a = get(subtaskKey(d.subtaskId, d.attempt), 'subtask');
        if (place(a, stored, { tenantId: d.tenantId, projectId: d.projectId, jobId: d.jobId, subtaskId: d.subtaskId, attempt: d.attempt, nodeId: d.nodeId, gpuModel: d.gpuModel, gpus: d.gpus, capacityType: d.capacityType, leaseEpoch: d.leaseEpoch, placedMs: instantMs(d.placedAt) })) {
          touch(a, stored);
        }
        break;
      }
      case 'SubtaskStarted': {
        const d = event.data;
        const a = get(subtaskKey(d.subtaskId, d.attempt), 'subtask');
        if (!reportAccepted(a, stored, event)) break;
        const startMs = reportedMs(d.startedAt, stored);
        if (startsAfterPlatformEnd(a, startMs)) {
          rejectReport(a, stored, event, ReportRejectionCode.endedByPlatform, `attempt ${d.attempt} of sub-task ${d.subtaskId} was ended by the platform (${a.endReason}) before the start this reports`);
          break;
        }
        identifyReport(a, d);
        setStart(a, stored, startMs, d.leaseEpoch);
        break;
      }
      case 'SubtaskCompleted': {
        const d = event.data;
        const a = get(subtaskKey(d.subtaskId, d.attempt), 'subtask');
        if (!reportAccepted(a, stored, event)) break;
        identifyReport(a, d);
        setEnd(a, stored, reportedMs(d.endedAt, stored), d.leaseEpoch, 'completed', false);
        break;
      }
      case 'SubtaskFailed': {
        const d = event.data;
        const a = get(subtaskKey(d.subtaskId, d.attempt), 'subtask');
        if (!reportAccepted(a, stored, event)) break;
        identifyReport(a, d);
        setEnd(a, stored, reportedMs(d.endedAt, stored), d.leaseEpoch, 'failed', d.fault === 'platform');
        break;
      }
      case 'SubtaskPreempted': {
        const d = event.data;
        const a = get(subtaskKey(d.subtaskId, d.attempt), 'subtask');
        identifyReport(a, d);
        // Preemption by us is an interruption (credited back); a stop the tenant caused (cancel) is not.
        setEnd(a, stored, instantMs(d.preemptedAt), d.leaseEpoch, 'preempted', d.fault !== 'user');
        break;
      }
      case 'NodeLost': {
        if (nodeEventsSeen.has(event.id)) break;
        nodeEventsSeen.add(event.id);
        out.nodeEventsApplied.push({ eventId: event.id, sequence: stored.sequence });
        for (const a of openOnNode(event.data.nodeId, false)) setEnd(a, stored, instantMs(event.data.lastHeartbeatAt), null, EndReason.nodeLost, true);
        break;
      }
      case 'NodeRegistered': {
        // A registration is a new agent epoch (docs/node-protocol.md, "Lifecycle"): the agent lost
        // what it ran, and the scheduler frees those GPUs and requeues the attempts. What was
        // placed on the node before it (in log order) ends here, at the registration's time
        // bounded by its receipt (no tolerance: the freed GPUs can be placed again from then on).
        // Only a registration that raises the node's agent epoch does (libs/contracts
        // `registrationEndsRuns`, the scheduler's rule): an older or the same epoch changes nothing.
        if (nodeEventsSeen.has(event.id)) break;
        const endsRuns = registrationEndsRuns(nodeEpochs.get(event.data.nodeId), event.data.agentEpoch);
        raiseEpoch(event.data.nodeId, event.data.agentEpoch);
        if (!endsRuns) break;
        nodeEventsSeen.add(event.id);
        out.nodeEventsApplied.push({ eventId: event.id, sequence: stored.sequence });
        const atMs = reportTimeMs(instantMs(event.data.registeredAt), { receivedAtMs: stored.receivedAtMs }, 0);
        for (const a of openOnNode(event.data.nodeId, true)) setEnd(a, stored, atMs, null, EndReason.agentRestarted, true);
        break;
      }
      case 'NodeRecovered':
        // A heartbeat's epoch counts as the scheduler counts it: a later registration must raise it to end anything.
        raiseEpoch(event.data.nodeId, event.data.agentEpoch);
        break;
      case 'SubtaskRequeued': {
        // The scheduler ended the attempt (agent restart, node loss, platform fault) before it
        // places the next one: an attempt still open ends at the requeue, never after.
        const d = event.data;
        const a = get(subtaskKey(d.subtaskId, d.previousAttempt), 'subtask');
        if (a.endEventId !== null) break;
        if (a.placedEventId === null) {
          // Not placed (yet) in this log: keep who it is, the placement fills in the rest.
          a.tenantId = d.tenantId;
          a.jobId = d.jobId;
          a.subtaskId = d.subtaskId;
          a.attempt = d.previousAttempt;
        }
        setEnd(a, stored, instantMs(d.requeuedAt), null, EndReason.requeued, true);
        break;
      }
      case 'LeaseGranted': {
        const d = event.data;
        const a = get(leaseKey(d.leaseId), 'lease');
        if (place(a, stored, { tenantId: d.tenantId, projectId: d.projectId, leaseId: d.leaseId, nodeId: d.nodeId, gpuModel: d.gpuModel, gpus: d.gpus, capacityType: d.capacityType, leaseEpoch: d.leaseEpoch, placedMs: instantMs(d.grantedAt) })) {
          touch(a, stored);
          setStart(a, stored, instantMs(d.grantedAt), d.leaseEpoch);
        }
        break;
      }
      case 'LeaseReleased': {
        const d = event.data;
        const a = get(leaseKey(d.leaseId), 'lease');
        if (a.nodeId === null) a.nodeId = d.nodeId;
        setEnd(a, stored, instantMs(d.releasedAt), d.leaseEpoch, 'released', false);
        break;
      }
      case 'ExternalAllocationStarted':
      case 'ExternalAllocationStopped':
      case 'ExternalAllocationReportedLate': {
        const report = externalReport(stored, input.streamTimeMs.get(stored.sequence), horizon);
        const d = event.data;
        if ('reason' in report) {
          out.rejections.push({ eventId: event.id, sequence: stored.sequence, type: event.type, tenantId: d.tenantId, reason: report.reason });
          break;
        }
        const a = get(externalKey(d.tenantId, d.allocationId), 'external');
        // Marked before the start or stop is set, so an allocation that closes now closes as late.
        const markLate = () => {
          if (report.lateReceivedMs === null) return;
          a.late = true;
          a.lateReceivedMs = a.lateReceivedMs === null ? report.lateReceivedMs : Math.min(a.lateReceivedMs, report.lateReceivedMs);
          out.changed.add(a.key);
        };
        if (report.started) {
          const s = report.started;
          if (place(a, stored, { tenantId: d.tenantId, projectId: s.projectId, allocationId: d.allocationId, gpuModel: s.gpuModel, gpus: s.gpus, capacityType: s.capacityType })) {
            markLate();
            touch(a, stored);
            setStart(a, stored, report.atMs, null);
          }
        } else {
          if (a.tenantId === null) {
            a.tenantId = d.tenantId;
            a.allocationId = d.allocationId;
          }
          if (a.endEventId === null) markLate();
          setEnd(a, stored, report.atMs, null, 'stopped', false);
        }
        break;
      }
      case 'JobCompleted': {
        const d = event.data;
        out.jobObservations.push({
          jobId: d.jobId,
          tenantId: d.tenantId,
          projectId: d.projectId,
          outcome: d.outcome,
          gpuMsObserved: d.gpuMsObserved,
          completedAtMs: instantMs(d.completedAt),
          eventId: event.id,
          sequence: stored.sequence,
        });
        break;
      }
      default:
        // Types outside usageEventTypes never reach the fold (the runner filters them).
        break;
    }
  }
  return out;
}

/** A report names its sub-task before the placement may have arrived: keep who it is and where. */
function identifyReport(a: Allocation, d: { tenantId: string; jobId: string; subtaskId: string; attempt: number; nodeId: string }): void {
  if (a.placedEventId !== null) return;
  a.tenantId = d.tenantId;
  a.jobId = d.jobId;
  a.subtaskId = d.subtaskId;
  a.attempt = d.attempt;
  if (a.nodeId === null) a.nodeId = d.nodeId;
}

/** Reports that waited for the placement but came from another node than the placed one: drop them. */
function discardReportsFromAnotherNode(a: Allocation): void {
  if (a.startEventId !== null) {
    a.startMs = a.startEpoch = a.startEventId = a.startSequence = null;
    a.staleReports++;
  }
  if (a.endEventId !== null && (a.endReason === EndReason.completed || a.endReason === EndReason.failed)) {
    a.endMs = a.endEpoch = a.endEventId = a.endSequence = a.endReason = null;
    a.interrupted = false;
    a.staleReports++;
  }
}

/** Reports that waited for the placement and carry another epoch are stale: drop them. */
function discardStaleReports(a: Allocation): void {
  if (a.leaseEpoch === null) return;
  if (a.startEpoch !== null && a.startEpoch !== a.leaseEpoch) {
    a.startMs = a.startEpoch = a.startEventId = a.startSequence = null;
    a.staleReports++;
  }
  if (a.endEpoch !== null && a.endEpoch !== a.leaseEpoch) {
    a.endMs = a.endEpoch = a.endEventId = a.endSequence = a.endReason = null;
    a.interrupted = false;
    a.staleReports++;
  }
}

type ExternalReportEvent = DomainEvent<'ExternalAllocationStarted' | 'ExternalAllocationStopped' | 'ExternalAllocationReportedLate'>;

/** What an external event reports, once checked: its start (with dimensions) or stop, and whether it is late. */
interface ExternalReport {
  atMs: number;
  started: { projectId: string; gpuModel: string; gpus: number; capacityType: CapacityType } | null;
  /** When the late report was received; null when it is not late. */
  lateReceivedMs: number | null;
}

/**
 * Reads an external event, or says why it cannot be metered. `ExternalAllocationReportedLate` is
 * late by the door's verdict (recorded in the event); a plain start or stop is late when its
 * producer time is more than the horizon before the time the log stored it (a producer on the
 * bus, or a publish delayed past the grace), so usage that happened is kept rather than refused.
 */
function externalReport(stored: StoredEvent, receivedMs: number | undefined, horizon: LatenessHorizon): ExternalReport | { reason: string } {
  const event = stored.event as ExternalReportEvent;
  const tenantId = event.data.tenantId;
  const tenantRefusal = externalTenantRefusal(stored.subject, tenantId, event.tenantid);
  if (tenantRefusal !== null) return { reason: tenantRefusal };
  switch (event.type) {
    case 'ExternalAllocationReportedLate': {
      const d = event.data;
      const atMs = instantMs(d.at);
      const lateReceivedMs = instantMs(d.receivedAt);
      if (d.report === 'stopped') return { atMs, started: null, lateReceivedMs };
      if (d.projectId === undefined || d.gpuModel === undefined || d.gpus === undefined || d.capacityType === undefined) return { reason: 'a late start report must carry projectId, gpuModel, gpus and capacityType' };
      const gpusRefusal = externalGpusRefusal(d.gpus);
      if (gpusRefusal !== null) return { reason: gpusRefusal };
      return { atMs, started: { projectId: d.projectId, gpuModel: d.gpuModel, gpus: d.gpus, capacityType: d.capacityType }, lateReceivedMs };
    }
    case 'ExternalAllocationStarted':
    case 'ExternalAllocationStopped': {
      const started = event.type === 'ExternalAllocationStarted' ? event.data : null;
      const gpusRefusal = started && externalGpusRefusal(started.gpus);
      if (gpusRefusal) return { reason: gpusRefusal };
      const atMs = instantMs(started ? started.startedAt : (event as DomainEvent<'ExternalAllocationStopped'>).data.stoppedAt);
      const verdict = externalTimeVerdict(atMs, receivedMs, horizon);
      if (verdict === 'ahead') return { reason: `producer time ${new Date(atMs).toISOString()} is more than ${horizon.aheadMs} ms after receipt` };
      const late = verdict === 'late';
      return { atMs, started: started && { projectId: started.projectId, gpuModel: started.gpuModel, gpus: started.gpus, capacityType: started.capacityType }, lateReceivedMs: late && receivedMs !== undefined ? receivedMs : null };
    }
    default: {
      const unreachable: never = event;
      return { reason: `not an external event: ${(unreachable as DomainEvent).type}` };
    }
  }
}

/**
 * Whether the platform ended an attempt (node lost, agent registered again, requeued) before the
 * start a report gives it, with no start applied yet: the node ran the command after its GPUs
 * were given away (a command redelivered to a restarted agent, say), and the interval would end
 * before it began. A start from before that end still counts (it was only stored late).
 */
function startsAfterPlatformEnd(a: Allocation, startMs: number): boolean {
  const platformEnd = a.endReason === EndReason.nodeLost || a.endReason === EndReason.agentRestarted || a.endReason === EndReason.requeued;
  return a.startEventId === null && a.endEventId !== null && platformEnd && a.endMs !== null && startMs >= a.endMs;
}
