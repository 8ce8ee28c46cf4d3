/**
 * Node reports (`SubtaskStarted`, `SubtaskCompleted`, `SubtaskFailed`) come from node agents,
 * which the platform trusts less than itself: who sent a report and what its clock says. This
 * module holds the two rules every consumer of node reports applies (scheduler, metering,
 * intake's jobs read model, reliability's fencing and SLA read model), so they accept and time
 * the same reports. Pure: no clock, no I/O.
 *
 * Who: a report counts only when it matches the sub-task's current placement: the same node
 * (the node named by the subject it was published on, and the node it names), the same sub-task,
 * attempt and lease epoch. A lease epoch is guessable (epochs grow by one), so the epoch alone
 * proves nothing; the node is what NATS credentials bind to a publisher (a node agent may publish
 * only on `<prefix>.evt.agent.node.<its id>`).
 *
 * When: see `reportTimeMs` and `reportedIntervalMs` below.
 */

/** The placement a report is judged against. */
export interface ReportPlacement {
  nodeId: string;
  subtaskId: string;
  attempt: number;
  leaseEpoch: number;
}

/** What a report claims. `subject` is the stream subject it was published on, when the consumer has it. */
export interface NodeReportFacts {
  nodeId: string;
  subtaskId: string;
  attempt: number;
  leaseEpoch: number;
  subject?: string;
}

export const ReportRejectionCode = {
  /** No placement is known for the sub-task (never placed, finished, or not yet read). */
  noPlacement: 'no-placement',
  /** Published on another node's subject than the node it names, or not on a node subject at all. */
  wrongSubject: 'wrong-subject',
  /** Another attempt or lease epoch than the current placement's. */
  staleEpoch: 'stale-epoch',
  /** The current epoch, from a node the sub-task is not placed on. */
  wrongNode: 'wrong-node',
  /**
   * A start for an attempt the platform already ended (its node lost, its agent registered again,
   * the attempt requeued): a command the node ran after the platform gave its GPUs away, not the
   * placement's run. Judged by the consumers that keep an attempt's end (metering).
   */
  endedByPlatform: 'ended-by-platform',
} as const;
export type ReportRejectionCode = (typeof ReportRejectionCode)[keyof typeof ReportRejectionCode];

export type ReportJudgement = { ok: true } | { ok: false; code: ReportRejectionCode; reason: string };

const AGENT_SUBJECT_MARKER = '.evt.agent.node.';

/** The node a report's subject names (`<prefix>.evt.agent.node.<nodeId>`), or undefined for any other subject. */
export function reportSubjectNodeId(subject: string): string | undefined {
  const at = subject.lastIndexOf(AGENT_SUBJECT_MARKER);
  if (at < 0) return undefined;
  const nodeId = subject.slice(at + AGENT_SUBJECT_MARKER.length);
  return nodeId.length > 0 && !nodeId.includes('.') ? nodeId : undefined;
}

/** Whether a node report may be applied, given the sub-task's current placement. */
export function judgeNodeReport(placement: ReportPlacement | undefined, report: NodeReportFacts): ReportJudgement {
  if (!placement || placement.subtaskId !== report.subtaskId) {
    return { ok: false, code: ReportRejectionCode.noPlacement, reason: `no current placement for sub-task ${report.subtaskId}` };
  }
  if (report.subject !== undefined) {
    const subjectNodeId = reportSubjectNodeId(report.subject);
    if (subjectNodeId !== report.nodeId) {
      const where = subjectNodeId === undefined ? `subject ${report.subject}, which is no node's` : `the subject of node ${subjectNodeId}`;
      return { ok: false, code: ReportRejectionCode.wrongSubject, reason: `report naming node ${report.nodeId} was published on ${where}` };
    }
  }
  if (report.leaseEpoch !== placement.leaseEpoch || report.attempt !== placement.attempt) {
    return {
      ok: false,
      code: ReportRejectionCode.staleEpoch,
      reason: `stale lease epoch ${report.leaseEpoch} (attempt ${report.attempt}); current is epoch ${placement.leaseEpoch} (attempt ${placement.attempt})`,
    };
  }
  if (report.nodeId !== placement.nodeId) {
    return { ok: false, code: ReportRejectionCode.wrongNode, reason: `sub-task is placed on node ${placement.nodeId}, not ${report.nodeId}` };
  }
  return { ok: true };
}

/**
 * How far a node agent's clock is trusted past the moment the log received its report: one
 * heartbeat interval of the protocol's default (5 s). A constant rather than the configured
 * interval, so a projection rebuilt under another configuration gives the same rows.
 */
export const REPORT_TIME_TOLERANCE_MS = 5_000;

/** Server-side facts a report's time is bounded by. */
export interface ReportTimeBounds {
  /** When the sub-task was placed (the scheduler's clock): nothing it reports happened before. */
  placedAtMs?: number | null;
  /** When the log received the report (stream time): nothing it reports happened much after. */
  receivedAtMs?: number;
}

/**
 * The time one report stands for, on the server's clock: the agent's time, but not before the
 * placement, and never after the log received the report once the agent's time is more than
 * `toleranceMs` past that receipt. Within the tolerance the agent's clock is trusted (a little
 * ahead is noise); past it the clock is ahead and says nothing, so the receipt itself is the
 * time: start and end both land on their receipts, the duration stays what the server saw, and
 * the run never reaches past the moment the platform learned it ended (the next placement on its
 * GPUs comes after that, so the two never overlap — the nemesis' per-GPU check).
 */
export function reportTimeMs(reportedMs: number, bounds: ReportTimeBounds, toleranceMs: number = REPORT_TIME_TOLERANCE_MS): number {
  let ms = reportedMs;
  if (bounds.receivedAtMs !== undefined && ms > bounds.receivedAtMs + toleranceMs) ms = bounds.receivedAtMs;
  if (bounds.placedAtMs !== undefined && bounds.placedAtMs !== null) ms = Math.max(ms, bounds.placedAtMs);
  return ms;
}

/**
 * An attempt's run on the server's clock, from the agent's start and end. A start before the
 * placement is impossible for a clock in step with the server's: the agent's clock is behind by
 * at least that much, so the start is moved to the placement and an end the agent reported is
 * moved by the same amount (its duration is kept, its clock is not), then bounded by `latestMs`
 * (the receipt of the report that closed the run plus the tolerance). Without this, a clock ten
 * minutes slow put both ends before the placement and billed nothing.
 *
 * `startMs` and `endMs` are the reports' times already bounded by their receipt (`reportTimeMs`
 * without a placement); an end the platform decided (preemption, node loss) is not the agent's
 * and is not moved (`endFromAgent` false).
 */
export function reportedIntervalMs(run: { startMs: number; endMs: number; endFromAgent: boolean }, bounds: { placedAtMs?: number | null; latestMs?: number }): { startMs: number; endMs: number } {
  const placedAtMs = bounds.placedAtMs ?? null;
  const clockBehindMs = placedAtMs === null ? 0 : Math.max(0, placedAtMs - run.startMs);
  const startMs = run.startMs + clockBehindMs;
  if (!run.endFromAgent) return { startMs, endMs: run.endMs };
  let endMs = run.endMs + clockBehindMs;
  if (clockBehindMs > 0 && bounds.latestMs !== undefined) endMs = Math.min(endMs, bounds.latestMs);
  if (placedAtMs !== null) endMs = Math.max(endMs, placedAtMs);
  return { startMs, endMs };
}

/**
 * A node's clock skew seen in one message: the agent's time minus the log's receipt time
 * (positive: the agent's clock is ahead). The message's transit time is included (it reads as
 * that much further behind); a heartbeat measures it every interval.
 */
export function clockSkewMs(agentMs: number, receivedAtMs: number): number {
  return agentMs - receivedAtMs;
}

/**
 * Agent epochs (docs/node-protocol.md, "Lifecycle"): an agent that starts without its earlier work
 * registers with an epoch above every earlier one of its node, and that registration ends what
 * the node ran. A node's current epoch is the highest one the log has shown for it (registered,
 * or recovered through a heartbeat); it never goes down.
 */
export function agentEpochAfter(currentEpoch: number | undefined, seenEpoch: number): number {
  return currentEpoch === undefined ? seenEpoch : Math.max(currentEpoch, seenEpoch);
}

/**
 * Whether a NodeRegistered ends what its node ran: only when it raises the node's current agent
 * epoch (or the node has none yet). A registration with the current or an older epoch (a
 * repeated registration, a zombie agent, a forged one) changes nothing that was placed.
 */
export function registrationEndsRuns(currentEpoch: number | undefined, registeredEpoch: number): boolean {
  return currentEpoch === undefined || registeredEpoch > currentEpoch;
}
