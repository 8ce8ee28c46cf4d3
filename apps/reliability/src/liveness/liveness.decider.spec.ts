/**
 * Proves liveness as a pure fold: a node silent past interval × missed beats becomes NodeLost with
 * its last heartbeat and a deterministic id; a lost node that beats again is recovered; counters
 * over health thresholds drain it once; heartbeats from unknown nodes, on another node's subject
 * or with impossible values are rejected without moving anything; a node whose clock is an hour
 * ahead or ten minutes behind stays alive on server time, its skew measured and flagged once per
 * crossing of the allowed skew; silence from before the loop's own NATS connection came back is
 * not counted. The same rule through the kernel's Decider type (livenessDecider) reads as
 * given / when / then.
 */
import { describe, expect, it } from 'vitest';
import { deriveId, nameId, type Heartbeat } from '@fastgpu/contracts';
import { event } from '../testkit';
import { evolveFencing, initialFencingState } from '../fencing/fencing.decider';
import { spec } from '@fastgpu/eventsourcing';
import { decideHeartbeat, decideTick, evolveLiveness, initialLivenessState, livenessDecider, type LivenessPolicy, type LivenessState } from './liveness.decider';

const policy: LivenessPolicy = { heartbeatIntervalMs: 5_000, missedHeartbeatsBeforeLost: 3, clockSkewMs: 5_000, heartbeatRejectionIntervalMs: 60_000, eccErrorsMax: 8, xidErrorsMax: 4, temperatureCMax: 90 };
const T0 = Date.parse('2026-11-01T00:00:00.000Z');

function registered(state: LivenessState, nodeId = 'n1', atMs = T0, agentEpoch = 1): void {
  evolveLiveness(state, event('NodeRegistered', { nodeId, gpuModel: 'a100', gpuCount: 2, gpuMemoryGb: 80, labels: {}, agentEpoch, registeredAt: new Date(atMs).toISOString() }), atMs);
}

function beat(overrides: Partial<Heartbeat> = {}, gpu: Partial<Heartbeat['gpus'][number]> = {}): Heartbeat {
  return {
    nodeId: 'n1',
    agentEpoch: 1,
    sentAt: new Date(T0).toISOString(),
    gpus: [{ index: 0, utilizationPercent: 50, memoryUsedMb: 1000, temperatureC: 60, eccErrors: 0, xidErrors: 0, ...gpu }],
    running: [],
    ...overrides,
  };
}

describe('liveness', () => {
  it('declares a silent node lost after interval × missed beats, naming its last heartbeat, with a deterministic id', () => {
    const state = initialLivenessState();
    registered(state);
    const fencing = initialFencingState();
    expect(decideHeartbeat(state, fencing, { subjectNodeId: 'n1', body: beat(), receivedAtMs: T0 + 1_000 }, policy)).toMatchObject({ accepted: true, effects: [] });
    expect(decideTick(state, T0 + 16_000, policy)).toEqual([]);
    const [lost] = decideTick(state, T0 + 16_001, policy);
    expect(lost).toEqual({
      kind: 'event',
      type: 'NodeLost',
      id: nameId('NodeLost', 'n1', String(T0 + 1_000)),
      data: { nodeId: 'n1', lastHeartbeatAt: '2026-11-01T00:00:01.000Z', detectedAt: '2026-11-01T00:00:16.001Z', reason: expect.stringMatching(/missed 3 heartbeats/) },
    });
    // Another instance noticing the same silence later decides the same event id.
    expect(decideTick(state, T0 + 25_000, policy)[0]).toMatchObject({ id: (lost as { id: string }).id });
  });

  it('does not declare a node lost twice, and recovers it when it beats again', () => {
    const state = initialLivenessState();
    registered(state);
    const lostEvent = event('NodeLost', { nodeId: 'n1', lastHeartbeatAt: '2026-11-01T00:00:00.000Z', detectedAt: '2026-11-01T00:00:16.000Z', reason: 'silent' });
    evolveLiveness(state, lostEvent, T0 + 16_000);
    expect(decideTick(state, T0 + 60_000, policy)).toEqual([]);
    const verdict = decideHeartbeat(state, initialFencingState(), { subjectNodeId: 'n1', body: beat({ agentEpoch: 1 }), receivedAtMs: T0 + 70_000 }, policy);
    expect(verdict.effects).toEqual([
      { kind: 'event', type: 'NodeRecovered', id: deriveId(lostEvent.id, 'NodeRecovered'), causationId: lostEvent.id, data: { nodeId: 'n1', agentEpoch: 1, recoveredAt: '2026-11-01T00:01:10.000Z' } },
    ]);
    // An old heartbeat read again after a restart (from before the loss) recovers nothing.
    expect(decideHeartbeat(state, initialFencingState(), { subjectNodeId: 'n1', body: beat(), receivedAtMs: T0 }, policy).effects).toEqual([]);
  });

  it('drains a node whose GPU counters cross a threshold, once per drain', () => {
    const state = initialLivenessState();
    registered(state);
    const verdict = decideHeartbeat(state, initialFencingState(), { subjectNodeId: 'n1', body: beat({}, { eccErrors: 9 }), receivedAtMs: T0 + 1_000 }, policy);
    expect(verdict.effects).toEqual([
      { kind: 'event', type: 'NodeDrained', id: nameId('NodeDrained', 'n1', '0'), data: { nodeId: 'n1', reason: 'gpu 0: 9 ECC errors (threshold 8)', drainedAt: '2026-11-01T00:00:01.000Z', automatic: true } },
    ]);
    evolveLiveness(state, event('NodeDrained', { nodeId: 'n1', reason: 'x', drainedAt: '2026-11-01T00:00:01.000Z', automatic: true }), T0 + 1_000);
    expect(decideHeartbeat(state, initialFencingState(), { subjectNodeId: 'n1', body: beat({}, { xidErrors: 5 }), receivedAtMs: T0 + 2_000 }, policy).effects).toEqual([]);
    evolveLiveness(state, event('NodeUndrained', { nodeId: 'n1', undrainedAt: '2026-11-01T00:05:00.000Z' }), T0 + 300_000);
    const again = decideHeartbeat(state, initialFencingState(), { subjectNodeId: 'n1', body: beat({}, { temperatureC: 95 }), receivedAtMs: T0 + 301_000 }, policy);
    expect(again.effects[0]).toMatchObject({ type: 'NodeDrained', id: nameId('NodeDrained', 'n1', '1'), data: { reason: 'gpu 0: 95 °C (threshold 90 °C)' } });
  });

  it('does not drain on an XID count a heartbeat leaves out (an agent that cannot read the kernel log)', () => {
    const state = initialLivenessState();
    registered(state);
    const body = beat();
    delete (body.gpus[0] as { xidErrors?: number }).xidErrors;
    // Still a valid heartbeat (a rejected one would yield a ReportRejected), and no drain.
    expect(decideHeartbeat(state, initialFencingState(), { subjectNodeId: 'n1', body, receivedAtMs: T0 + 1_000 }, policy).effects).toEqual([]);
    expect(decideHeartbeat(state, initialFencingState(), { subjectNodeId: 'n1', body: beat({}, { xidErrors: 4 }), receivedAtMs: T0 + 2_000 }, policy).effects[0]).toMatchObject({ type: 'NodeDrained', data: { reason: 'gpu 0: 4 XID errors (threshold 4)' } });
  });

  it('tells a recovered node to stop work whose lease moved elsewhere', () => {
    const state = initialLivenessState();
    registered(state);
    const fencing = initialFencingState();
    const placement = { jobId: 'j', tenantId: 't', projectId: 'p', subtaskId: 's', gpuModel: 'a100', gpus: 1, gpuIndices: [0], capacityType: 'on-demand' as const, runtimeMs: 1, placedAt: '2026-11-01T00:00:00.000Z' };
    evolveFencing(fencing, event('SubtaskPlaced', { ...placement, attempt: 1, nodeId: 'n1', leaseEpoch: 1 }));
    evolveFencing(fencing, event('SubtaskPlaced', { ...placement, attempt: 2, nodeId: 'n2', leaseEpoch: 2 }));
    const verdict = decideHeartbeat(state, fencing, { subjectNodeId: 'n1', body: beat({ running: [{ subtaskId: 's', attempt: 1, leaseEpoch: 1 }] }), receivedAtMs: T0 + 1_000 }, policy);
    expect(verdict.effects).toEqual([
      {
        kind: 'command',
        nodeId: 'n1',
        command: { kind: 'StopSubtask', commandId: nameId('StopSubtask', 'n1', 's', '1'), subtaskId: 's', attempt: 1, leaseEpoch: 1, reason: expect.stringMatching(/stale lease epoch 1/), issuedAt: '2026-11-01T00:00:01.000Z' },
      },
    ]);
  });

  it('counts no silence from before this instance could hear the fleet again (its own NATS outage), yet names the real last heartbeat', () => {
    const state = initialLivenessState();
    registered(state);
    decideHeartbeat(state, initialFencingState(), { subjectNodeId: 'n1', body: beat(), receivedAtMs: T0 + 1_000 }, policy);
    const reconnectedAtMs = T0 + 20_000;
    expect(decideTick(state, reconnectedAtMs + 15_000, policy, reconnectedAtMs)).toEqual([]);
    const [lost] = decideTick(state, reconnectedAtMs + 15_001, policy, reconnectedAtMs);
    expect(lost).toMatchObject({ type: 'NodeLost', data: { nodeId: 'n1', lastHeartbeatAt: '2026-11-01T00:00:01.000Z' } });
  });

  it('keeps a node with a skewed clock alive on server time, measuring its skew and flagging each crossing once', () => {
    const state = initialLivenessState();
    registered(state, 'fast');
    registered(state, 'slow');
    const fencing = initialFencingState();
    for (let i = 1; i <= 5; i++) {
      const receivedAtMs = T0 + i * 5_000;
      const fast = decideHeartbeat(state, fencing, { subjectNodeId: 'fast', body: beat({ nodeId: 'fast', sentAt: new Date(receivedAtMs + 3_600_000 - 3).toISOString() }), receivedAtMs }, policy);
      const slow = decideHeartbeat(state, fencing, { subjectNodeId: 'slow', body: beat({ nodeId: 'slow', sentAt: new Date(receivedAtMs - 600_000 - 3).toISOString() }), receivedAtMs }, policy);
      expect(fast).toMatchObject({ accepted: true, effects: [], skew: { nodeId: 'fast', skewMs: 3_599_997, ...(i === 1 ? { crossed: 'beyond' } : {}) } });
      expect(slow).toMatchObject({ accepted: true, effects: [], skew: { nodeId: 'slow', skewMs: -600_003, ...(i === 1 ? { crossed: 'beyond' } : {}) } });
      if (i > 1 && fast.accepted && slow.accepted) expect([fast.skew.crossed, slow.skew.crossed]).toEqual([undefined, undefined]);
    }
    // Both beat every interval: neither is lost, whatever their clocks say.
    expect(decideTick(state, T0 + 25_000 + 15_000, policy)).toEqual([]);
    // The clock fixed: back within the allowed skew, said once.
    const fixed = decideHeartbeat(state, fencing, { subjectNodeId: 'fast', body: beat({ nodeId: 'fast', sentAt: new Date(T0 + 30_000).toISOString() }), receivedAtMs: T0 + 30_001 }, policy);
    expect(fixed).toMatchObject({ accepted: true, skew: { skewMs: -1, crossed: 'within' } });
  });

  describe('bad heartbeats are rejected, counted by code, and never applied', () => {
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['unknown node', 'ghost', beat({ nodeId: 'ghost' }), /^unknown-node: node ghost is not registered/],
      ["another node's credentials", 'n2', beat({ nodeId: 'n1' }), /^wrong-credentials: heartbeat for node n1 sent on the subject of node n2/],
      ['negative utilisation', 'n1', beat({}, { utilizationPercent: -5 }), /^impossible-value: gpus\.0\.utilizationPercent/],
      ['a GPU the node does not have', 'n1', beat({}, { index: 7 }), /^impossible-value: gpu index 7/],
      ['an older agent', 'n1', beat({ agentEpoch: 1 }), /^stale-agent-epoch/],
      ['not a heartbeat at all', 'n1', { hello: 'world' }, /^malformed: /],
    ];
    for (const [name, subjectNodeId, body, reason] of cases) {
      it(name, () => {
        const state = initialLivenessState();
        registered(state, 'n1', T0, name === 'an older agent' ? 2 : 1);
        registered(state, 'n2', T0);
        const verdict = decideHeartbeat(state, initialFencingState(), { subjectNodeId, body, receivedAtMs: T0 + 1_000 }, policy);
        expect(verdict.accepted).toBe(false);
        expect(verdict.effects).toHaveLength(1);
        const [rejected] = verdict.effects;
        expect(rejected).toMatchObject({ kind: 'event', type: 'ReportRejected', data: { nodeId: subjectNodeId, reportType: 'Heartbeat', rejectedAt: '2026-11-01T00:00:01.000Z' } });
        expect((rejected as { data: { reason: string } }).data.reason).toMatch(reason);
        // Nothing moved: the node still times out from its registration.
        expect(state.nodes.get('n1')!.lastSeenMs).toBe(T0);
      });
    }

    it('publishes one rejection per node, reason and interval (the id names the interval)', () => {
      const state = initialLivenessState();
      const decide = (receivedAtMs: number) => decideHeartbeat(state, initialFencingState(), { subjectNodeId: 'ghost', body: beat({ nodeId: 'ghost' }), receivedAtMs }, policy).effects[0]!;
      const first = decide(T0 + 1_000);
      expect(decide(T0 + 59_000)).toMatchObject({ id: (first as { id: string }).id });
      expect(decide(T0 + 61_000)).not.toMatchObject({ id: (first as { id: string }).id });
    });
  });
});

describe('liveness as the kernel Decider', () => {
  it('given a registration, when a tick past the timeout, then NodeLost; before it, nothing', () => {
    const registration = { event: event('NodeRegistered', { nodeId: 'n1', gpuModel: 'a100', gpuCount: 2, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: new Date(T0).toISOString() }), receivedAtMs: T0 };
    spec(livenessDecider).given([registration]).when({ nowMs: T0 + 15_000, policy }).then([]);
    const [lost] = livenessDecider.decide({ nowMs: T0 + 15_001, policy }, livenessDecider.evolve(livenessDecider.initialState(), registration));
    expect(lost).toMatchObject({ kind: 'event', type: 'NodeLost', id: nameId('NodeLost', 'n1', String(T0)) });
    spec(livenessDecider).given([registration]).when({ nowMs: T0 + 15_001, policy }).then([lost!]);
  });
});
