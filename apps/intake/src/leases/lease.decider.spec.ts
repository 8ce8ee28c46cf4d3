/**
 * Proves the lease decider, given / when / then without I/O: a request is one LeaseRequested
 * (capacity type defaulted from the priority class, the id derived from the lease id so a
 * decision taken again is the same event), a repeated request decides nothing, a preemptible
 * lease asked as on-demand capacity is a validation refusal (before anything is decided, as
 * `leaseRequestRefusal` tells the service before it claims an Idempotency-Key); a release is one
 * LeaseReleaseRequested, once; releasing a lease that was never requested, or another tenant's,
 * is the same not-found.
 */
import { describe, expect, it } from 'vitest';
import { makeEvent, subjectFor, topology, type DomainEvent } from '@fastgpu/contracts';
import { spec, type BuildEvent } from '@fastgpu/eventsourcing';
import { leaseDecider, leaseRequestRefusal, type LeaseCommand } from './lease.decider';
import type { RequestLeaseBody } from './leases.schema';

const topo = topology('spec');
const build: BuildEvent = (type, data, meta) => makeEvent(type, data, { ...meta, source: 'intake' }, subjectFor(topo, type, data));
const decider = leaseDecider(build);
const at = '2026-10-01T10:00:00.000Z';
const body: RequestLeaseBody = { projectId: 'p', gpuModels: ['a100'], gpus: 2, priorityClass: 'standard' };
const request = (overrides: Partial<RequestLeaseBody> = {}): LeaseCommand => ({ kind: 'request', leaseId: 'l-1', tenantId: 'acme', body: { ...body, ...overrides }, requestedAt: at });
const release = (tenantId = 'acme'): LeaseCommand => ({ kind: 'release', leaseId: 'l-1', tenantId, requestedAt: '2026-10-01T11:00:00.000Z' });
const decided = (command: LeaseCommand, given: readonly DomainEvent[] = []) => decider.decide(command, given.reduce(decider.evolve, decider.initialState()));

describe('lease decider', () => {
  const requested = decided(request());

  it('decides one LeaseRequested for a new lease, the same event when decided again', () => {
    expect(requested).toHaveLength(1);
    expect(requested[0]).toMatchObject({ type: 'LeaseRequested', subject: topo.subjects.lease('l-1'), tenantid: 'acme', data: { leaseId: 'l-1', tenantId: 'acme', gpus: 2, capacityType: 'on-demand', priorityClass: 'standard', requestedAt: at } });
    spec(decider).given([]).when(request()).then(requested);
    expect(decided(request({ priorityClass: 'preemptible' }))[0]!.data).toMatchObject({ capacityType: 'preemptible' });
  });

  it('decides nothing for a lease requested already', () => {
    spec(decider).given(requested).when(request()).then([]);
  });

  it('refuses a preemptible lease billed as other capacity, before and inside the decision', () => {
    expect(leaseRequestRefusal({ ...body, priorityClass: 'preemptible', capacityType: 'on-demand' })).toMatchObject({ kind: 'validation', code: 'unprocessable', field: 'capacityType' });
    expect(leaseRequestRefusal(body)).toBeUndefined();
    spec(decider).given([]).when(request({ priorityClass: 'preemptible', capacityType: 'on-demand' })).thenThrows('validation', 'unprocessable');
  });

  it('decides one LeaseReleaseRequested, once', () => {
    const released = decided(release(), requested);
    expect(released).toHaveLength(1);
    expect(released[0]).toMatchObject({ type: 'LeaseReleaseRequested', subject: topo.subjects.lease('l-1'), data: { leaseId: 'l-1', tenantId: 'acme' } });
    spec(decider).given([...requested, ...released]).when(release()).then([]);
  });

  it("answers a lease never requested and another tenant's lease alike: not found", () => {
    spec(decider).given([]).when(release()).thenThrows('not-found', 'lease_not_found');
    spec(decider).given(requested).when(release('globex')).thenThrows('not-found', 'lease_not_found');
  });
});
