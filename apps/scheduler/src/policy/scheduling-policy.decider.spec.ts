/**
 * Proves the scheduling policy's commands as given / when / then, without I/O: `set` always
 * records the operator's policy with who and why; `recordConfigured` records the configured
 * policy only while the log holds none, so the log's policy always wins (a second scheduler
 * started with other settings, or a restart, changes nothing). The handler on real JetStream is
 * exercised by scheduler.engine.spec.ts (recorded once) and scheduler.http.spec.ts (PUT).
 */
import { describe, it } from 'vitest';
import { makeEvent, subjectFor, topology, type DomainEvent } from '@fastgpu/contracts';
import { spec, type BuildEvent } from '@fastgpu/eventsourcing';
import { defaultPolicy, type SchedulerPolicy } from '../placement/placement.types';
import { CONFIGURED_POLICY_ACTOR, CONFIGURED_POLICY_REASON, schedulingPolicyDecider } from './scheduling-policy.decider';

const topo = topology('t');
const build: BuildEvent = (type, data, meta) => makeEvent(type, data, { ...meta, source: 'spec' }, subjectFor(topo, type, data));
const decider = schedulingPolicyDecider(build);
const at = '2026-11-25T00:00:00.000Z';
const quota: SchedulerPolicy = { defaultWeight: 1, borrowing: false, tenants: { acme: { weight: 2, quotas: { a100: { nominal: 2 } } } } };
const meta = (id: string) => ({ id, time: at, tenantId: null, correlationId: id });
const policySet = (id: string, policy: SchedulerPolicy, actor: string, reason: string): DomainEvent => build('SchedulingPolicySet', { policy, setAt: at, actor, reason }, meta(id));
const id = (n: number) => `0190d000-0000-7000-8000-${String(n).padStart(12, '0')}`;

describe('scheduling policy', () => {
  it('set records the policy with its actor and reason, whatever the log held', () => {
    spec(decider).given([]).when({ kind: 'set', id: id(1), at, policy: quota, actor: 'key-1', reason: 'acme buys 2 A100s' }).then([policySet(id(1), quota, 'key-1', 'acme buys 2 A100s')]);
    const earlier = policySet(id(2), defaultPolicy, 'key-2', 'first');
    spec(decider).given([earlier]).when({ kind: 'set', id: id(3), at, policy: defaultPolicy, actor: 'key-1', reason: 'back to defaults' }).then([policySet(id(3), defaultPolicy, 'key-1', 'back to defaults')]);
  });

  it('recordConfigured records the configured policy while the log holds none, as the configuration', () => {
    spec(decider).given([]).when({ kind: 'recordConfigured', id: id(4), at, policy: quota }).then([policySet(id(4), quota, CONFIGURED_POLICY_ACTOR, CONFIGURED_POLICY_REASON)]);
  });

  it('recordConfigured decides nothing once the log holds a policy: the log wins', () => {
    spec(decider).given([policySet(id(5), defaultPolicy, 'key-1', 'set by an operator')]).when({ kind: 'recordConfigured', id: id(6), at, policy: quota }).then([]);
    spec(decider).given([policySet(id(7), quota, CONFIGURED_POLICY_ACTOR, CONFIGURED_POLICY_REASON)]).when({ kind: 'recordConfigured', id: id(8), at, policy: defaultPolicy }).then([]);
  });
});
