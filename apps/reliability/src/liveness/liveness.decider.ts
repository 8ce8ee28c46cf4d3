import { clockSkewMs, deriveId, Heartbeat, idSchema, nameId, type DomainEvent } from '@fastgpu/contracts';
import type { Decider } from '@fastgpu/eventsourcing';
import { iso, type Effect } from '../monitor/effects';
import { staleRunningWork, type FencingState } from '../fencing/fencing.decider';

/**
 * Liveness, as a pure fold: nodes are known from `NodeRegistered`, their last sign of life is
 * the server's receive time of their last accepted heartbeat (agents' clocks are not trusted),
 * and the log's own NodeLost / NodeRecovered / NodeDrained / NodeUndrained say what was
 * already decided. The shell feeds domain events and heartbeats in, calls `decideTick` with
 * its clock, and publishes the effects. State is mutated in place (one owner, a large fleet).
 */
export interface LivenessPolicy {
  heartbeatIntervalMs: number;
  missedHeartbeatsBeforeLost: number;
  /** A node whose clock is further than this from the server's is warned about (its heartbeats still count). */
  clockSkewMs: number;
  heartbeatRejectionIntervalMs: number;
  eccErrorsMax: number;
  xidErrorsMax: number;
  temperatureCMax: number;
}

export interface NodeLiveness {
  nodeId: string;
  gpuCount: number;
  gpuMemoryGb: number;
  agentEpoch: number;
  /** Server time of the last accepted heartbeat, or of the registration before any. */
  lastSeenMs: number;
  /** The loss on record (from the log) and the last heartbeat it named. */
  lost: { eventId: string; lastHeartbeatAtMs: number } | null;
  drained: boolean;
  /** NodeUndrained events seen: each drain after an undrain is a new decision with a new id. */
  undrainCount: number;
  /** The agent's clock minus the server's receipt of its last accepted heartbeat; null before any. */
  clockSkewMs: number | null;
}

export interface LivenessState {
  nodes: Map<string, NodeLiveness>;
}

export function initialLivenessState(): LivenessState {
  return { nodes: new Map() };
}

export const livenessEventTypes = new Set(['NodeRegistered', 'NodeLost', 'NodeRecovered', 'NodeDrained', 'NodeUndrained'] as const);

/** Folds a domain event; `receivedAtMs` is the stream's (server) timestamp of the message. */
export function evolveLiveness(state: LivenessState, event: DomainEvent, receivedAtMs: number): void {
  switch (event.type) {
    case 'NodeRegistered': {
      const d = event.data;
      const node = state.nodes.get(d.nodeId);
      if (!node) {
        state.nodes.set(d.nodeId, { nodeId: d.nodeId, gpuCount: d.gpuCount, gpuMemoryGb: d.gpuMemoryGb, agentEpoch: d.agentEpoch, lastSeenMs: receivedAtMs, lost: null, drained: false, undrainCount: 0, clockSkewMs: null });
        return;
      }
      node.gpuCount = d.gpuCount;
      node.gpuMemoryGb = d.gpuMemoryGb;
      node.agentEpoch = Math.max(node.agentEpoch, d.agentEpoch);
      node.lastSeenMs = Math.max(node.lastSeenMs, receivedAtMs);
      return;
    }
    case 'NodeLost': {
      const node = state.nodes.get(event.data.nodeId);
      if (node) node.lost = { eventId: event.id, lastHeartbeatAtMs: Date.parse(event.data.lastHeartbeatAt) };
      return;
    }
    case 'NodeRecovered': {
      const node = state.nodes.get(event.data.nodeId);
      if (!node) return;
      node.lost = null;
      node.lastSeenMs = Math.max(node.lastSeenMs, Date.parse(event.data.recoveredAt));
      return;
    }
    case 'NodeDrained': {
      const node = state.nodes.get(event.data.nodeId);
      if (node) node.drained = true;
      return;
    }
    case 'NodeUndrained': {
      const node = state.nodes.get(event.data.nodeId);
      if (!node) return;
      node.drained = false;
      node.undrainCount++;
      return;
    }
    default:
      return;
  }
}

export function lostTimeoutMs(policy: Pick<LivenessPolicy, 'heartbeatIntervalMs' | 'missedHeartbeatsBeforeLost'>): number {
  return policy.heartbeatIntervalMs * policy.missedHeartbeatsBeforeLost;
}

/**
 * Nodes silent past their timeout become `NodeLost`. The id derives from the node and the last
 * heartbeat it names, so every instance that notices the same silence publishes the same event.
 *
 * `heardFromMs` is when this instance could hear the fleet again after losing its own connection
 * to NATS (undefined when it never lost it): silence before it is not counted, because no
 * heartbeat could have reached the log or this reader meanwhile. The loss still names the node's
 * real last heartbeat (where its usage ends).
 */
export function decideTick(state: LivenessState, nowMs: number, policy: LivenessPolicy, heardFromMs?: number): Effect[] {
  const timeoutMs = lostTimeoutMs(policy);
  const effects: Effect[] = [];
  for (const node of state.nodes.values()) {
    if (node.lost || nowMs - Math.max(node.lastSeenMs, heardFromMs ?? node.lastSeenMs) <= timeoutMs) continue;
    effects.push({
      kind: 'event',
      id: nameId('NodeLost', node.nodeId, String(node.lastSeenMs)),
      type: 'NodeLost',
      data: {
        nodeId: node.nodeId,
        lastHeartbeatAt: iso(node.lastSeenMs),
        detectedAt: iso(nowMs),
        reason: `missed ${policy.missedHeartbeatsBeforeLost} heartbeats (no heartbeat for more than ${timeoutMs} ms)`,
      },
    });
  }
  return effects;
}

/** A domain event as liveness reads it: with the stream's (server) receive time. */
export interface ReceivedEvent {
  event: DomainEvent;
  receivedAtMs: number;
}

/** A liveness tick: the instant (the shell's clock) and what `decideTick` needs besides the state. */
export interface LivenessTick {
  nowMs: number;
  policy: LivenessPolicy;
  heardFromMs?: number;
}

/**
 * Liveness as the kernel's one Decider type (libs/eventsourcing): a tick decides the losses,
 * the fold reads events with their receive time. Like the scheduler it decides over the whole
 * fleet, so its shell publishes the effects itself; and heartbeats are judged by
 * `decideHeartbeat`, which also moves the state (a node's last sign of life) on the way.
 */
export const livenessDecider: Decider<LivenessState, LivenessTick, Effect, ReceivedEvent> = {
  initialState: initialLivenessState,
  decide: (tick, state) => decideTick(state, tick.nowMs, tick.policy, tick.heardFromMs),
  evolve: (state, { event, receivedAtMs }) => {
    evolveLiveness(state, event, receivedAtMs);
    return state;
  },
};

export interface HeartbeatMessage {
  /** The node named by the subject `<prefix>.hb.<nodeId>`: NATS permissions bind it to the agent's credentials. */
  subjectNodeId: string;
  body: unknown;
  /** Server receive time (stream timestamp). */
  receivedAtMs: number;
}

export const RejectionCode = {
  malformed: 'malformed',
  impossibleValue: 'impossible-value',
  wrongCredentials: 'wrong-credentials',
  unknownNode: 'unknown-node',
  staleAgent: 'stale-agent-epoch',
} as const;
export type RejectionCode = (typeof RejectionCode)[keyof typeof RejectionCode];

/**
 * A node's clock against the server's, from an accepted heartbeat. `crossed` says when it moved
 * past the policy's `clockSkewMs` (`beyond`) or back within it (`within`), for a warning once per
 * crossing rather than per beat.
 */
export interface ClockSkew {
  nodeId: string;
  skewMs: number;
  crossed?: 'beyond' | 'within';
}

export type HeartbeatVerdict = { accepted: true; heartbeat: Heartbeat; effects: Effect[]; skew: ClockSkew } | { accepted: false; code: RejectionCode; reason: string; effects: Effect[] };

/** A subject token that is not a valid id still gets a rejection on record, under this name. */
const UNNAMED_NODE = '_invalid-node-id';

function validate(state: LivenessState, message: HeartbeatMessage): { ok: true; heartbeat: Heartbeat; node: NodeLiveness } | { ok: false; code: RejectionCode; reason: string } {
  const parsed = Heartbeat.safeParse(message.body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.map(String).join('.') || '(root)';
    const impossible = issue.code === 'too_small' || issue.code === 'too_big';
    return { ok: false, code: impossible ? RejectionCode.impossibleValue : RejectionCode.malformed, reason: `${field}: ${issue.message}` };
  }
  const heartbeat = parsed.data;
  if (heartbeat.nodeId !== message.subjectNodeId) {
    return { ok: false, code: RejectionCode.wrongCredentials, reason: `heartbeat for node ${heartbeat.nodeId} sent on the subject of node ${message.subjectNodeId}` };
  }
  const node = state.nodes.get(heartbeat.nodeId);
  if (!node) return { ok: false, code: RejectionCode.unknownNode, reason: `node ${heartbeat.nodeId} is not registered` };
  if (heartbeat.agentEpoch < node.agentEpoch) {
    return { ok: false, code: RejectionCode.staleAgent, reason: `agent epoch ${heartbeat.agentEpoch} is older than the registered ${node.agentEpoch}` };
  }
  const indices = new Set<number>();
  for (const gpu of heartbeat.gpus) {
    if (gpu.index >= node.gpuCount || indices.has(gpu.index)) {
      return { ok: false, code: RejectionCode.impossibleValue, reason: `gpu index ${gpu.index} is duplicated or beyond the node's ${node.gpuCount} GPUs` };
    }
    indices.add(gpu.index);
    if (gpu.memoryUsedMb > node.gpuMemoryGb * 1024) {
      return { ok: false, code: RejectionCode.impossibleValue, reason: `gpu ${gpu.index} uses ${gpu.memoryUsedMb} MB of ${node.gpuMemoryGb} GB` };
    }
  }
  return { ok: true, heartbeat, node };
}

/** The first GPU counter over a health threshold, as a reason, or undefined when healthy. */
export function healthViolation(heartbeat: Heartbeat, policy: Pick<LivenessPolicy, 'eccErrorsMax' | 'xidErrorsMax' | 'temperatureCMax'>): string | undefined {
  for (const gpu of heartbeat.gpus) {
    if (gpu.eccErrors >= policy.eccErrorsMax) return `gpu ${gpu.index}: ${gpu.eccErrors} ECC errors (threshold ${policy.eccErrorsMax})`;
    if (gpu.xidErrors !== undefined && gpu.xidErrors >= policy.xidErrorsMax) return `gpu ${gpu.index}: ${gpu.xidErrors} XID errors (threshold ${policy.xidErrorsMax})`;
    if (gpu.temperatureC >= policy.temperatureCMax) return `gpu ${gpu.index}: ${gpu.temperatureC} °C (threshold ${policy.temperatureCMax} °C)`;
  }
  return undefined;
}

/**
 * Judges one heartbeat. A rejected one changes nothing but yields a `ReportRejected`, at most
 * one per node, reason and interval (its id names that bucket); the shell counts every one.
 * An accepted one moves the node's last sign of life, recovers a lost node, drains a node whose
 * counters cross a threshold, and tells the node to stop work whose lease it no longer holds.
 */
export function decideHeartbeat(state: LivenessState, fencing: FencingState, message: HeartbeatMessage, policy: LivenessPolicy): HeartbeatVerdict {
  const result = validate(state, message);
  if (!result.ok) {
    const nodeId = idSchema.safeParse(message.subjectNodeId).success ? message.subjectNodeId : UNNAMED_NODE;
    const bucket = Math.floor(message.receivedAtMs / policy.heartbeatRejectionIntervalMs);
    return {
      accepted: false,
      code: result.code,
      reason: result.reason,
      effects: [
        {
          kind: 'event',
          id: nameId('HeartbeatRejected', nodeId, result.code, String(bucket)),
          type: 'ReportRejected',
          data: { nodeId, reportType: 'Heartbeat', reason: `${result.code}: ${result.reason}`.slice(0, 500), rejectedAt: iso(message.receivedAtMs) },
        },
      ],
    };
  }
  const { heartbeat, node } = result;
  const effects: Effect[] = [];
  // Liveness runs on the server's clock only: the agent's sentAt never decides whether a node is
  // alive (a clock an hour ahead or behind beats like any other); it is measured, for a warning.
  node.lastSeenMs = Math.max(node.lastSeenMs, message.receivedAtMs);
  const skew = measureSkew(node, Date.parse(heartbeat.sentAt), message.receivedAtMs, policy);
  if (node.lost && message.receivedAtMs > node.lost.lastHeartbeatAtMs) {
    effects.push({
      kind: 'event',
      id: deriveId(node.lost.eventId, 'NodeRecovered'),
      type: 'NodeRecovered',
      causationId: node.lost.eventId,
      data: { nodeId: node.nodeId, agentEpoch: heartbeat.agentEpoch, recoveredAt: iso(message.receivedAtMs) },
    });
  }
  const violation = node.drained ? undefined : healthViolation(heartbeat, policy);
  if (violation) {
    effects.push({
      kind: 'event',
      id: nameId('NodeDrained', node.nodeId, String(node.undrainCount)),
      type: 'NodeDrained',
      data: { nodeId: node.nodeId, reason: violation, drainedAt: iso(message.receivedAtMs), automatic: true },
    });
  }
  for (const work of staleRunningWork(fencing, node.nodeId, heartbeat.running)) {
    effects.push({
      kind: 'command',
      nodeId: node.nodeId,
      command: {
        kind: 'StopSubtask',
        commandId: nameId('StopSubtask', node.nodeId, work.subtaskId, String(work.leaseEpoch)),
        subtaskId: work.subtaskId,
        attempt: work.attempt,
        leaseEpoch: work.leaseEpoch,
        reason: work.reason.slice(0, 500),
        issuedAt: iso(message.receivedAtMs),
      },
    });
  }
  return { accepted: true, heartbeat, effects, skew };
}

function measureSkew(node: NodeLiveness, sentAtMs: number, receivedAtMs: number, policy: Pick<LivenessPolicy, 'clockSkewMs'>): ClockSkew {
  const skewMs = clockSkewMs(sentAtMs, receivedAtMs);
  const wasBeyond = node.clockSkewMs !== null && Math.abs(node.clockSkewMs) > policy.clockSkewMs;
  const beyond = Math.abs(skewMs) > policy.clockSkewMs;
  node.clockSkewMs = skewMs;
  if (beyond && !wasBeyond) return { nodeId: node.nodeId, skewMs, crossed: 'beyond' };
  if (!beyond && wasBeyond) return { nodeId: node.nodeId, skewMs, crossed: 'within' };
  return { nodeId: node.nodeId, skewMs };
}
