/**
 * Proves an operator's drain and undrain as given / when / then on the node's reliability
 * aggregate, without I/O: they record NodeDrained (not automatic) and NodeUndrained, also when
 * the node already is in that state (a new reason is recorded again); a lost node is refused
 * (illegal-state, 409 at the edge) until it recovers; rejected reports on the same subject change
 * nothing. The route on real NATS is in scheduler.http.spec.ts.
 */
import { describe, it } from 'vitest';
import { makeEvent, subjectFor, topology } from '@fastgpu/contracts';
import { spec, type BuildEvent } from '@fastgpu/eventsourcing';
import { nodeDrainDecider } from './node-drain.decider';

const topo = topology('t');
const build: BuildEvent = (type, data, meta) => makeEvent(type, data, { ...meta, source: 'spec' }, subjectFor(topo, type, data));
const decider = nodeDrainDecider(build);
const at = '2026-11-25T00:00:00.000Z';
const id = (n: number) => `0190d000-0000-7000-8000-${String(n).padStart(12, '0')}`;
const meta = (n: number) => ({ id: id(n), time: at, tenantId: null, correlationId: id(n) });
const drained = (n: number, reason = 'maintenance', automatic = false) => build('NodeDrained', { nodeId: 'n1', reason, drainedAt: at, automatic }, meta(n));
const undrained = (n: number) => build('NodeUndrained', { nodeId: 'n1', undrainedAt: at }, meta(n));
const lost = (n: number) => build('NodeLost', { nodeId: 'n1', lastHeartbeatAt: at, detectedAt: at, reason: 'missed 3 heartbeats' }, meta(n));
const recovered = (n: number) => build('NodeRecovered', { nodeId: 'n1', agentEpoch: 1, recoveredAt: at }, meta(n));
const rejected = (n: number) => build('ReportRejected', { nodeId: 'n1', reportType: 'Heartbeat', reason: 'malformed', rejectedAt: at }, meta(n));

describe('node drain', () => {
  it('drains and undrains a node, recording the operator reason', () => {
    spec(decider).given([]).when({ kind: 'drain', id: id(1), at, nodeId: 'n1', reason: 'maintenance' }).then([drained(1)]);
    spec(decider).given([drained(2)]).when({ kind: 'undrain', id: id(3), at, nodeId: 'n1' }).then([undrained(3)]);
  });

  it('records a repeated drain or undrain again (a new reason, as before the kernel)', () => {
    spec(decider).given([drained(4, 'gpu 3: 12 ECC errors (threshold 10)', true)]).when({ kind: 'drain', id: id(5), at, nodeId: 'n1', reason: 'replace gpu 3' }).then([drained(5, 'replace gpu 3')]);
    spec(decider).given([rejected(6)]).when({ kind: 'undrain', id: id(7), at, nodeId: 'n1' }).then([undrained(7)]);
  });

  it('refuses a lost node until it recovers', () => {
    spec(decider).given([lost(8)]).when({ kind: 'drain', id: id(9), at, nodeId: 'n1', reason: 'maintenance' }).thenThrows('illegal-state', 'node_lost');
    spec(decider).given([drained(10), lost(11)]).when({ kind: 'undrain', id: id(12), at, nodeId: 'n1' }).thenThrows('illegal-state', 'node_lost');
    spec(decider).given([lost(13), recovered(14)]).when({ kind: 'drain', id: id(15), at, nodeId: 'n1', reason: 'maintenance' }).then([drained(15)]);
  });
});
