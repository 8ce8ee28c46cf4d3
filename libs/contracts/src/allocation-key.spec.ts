/**
 * Proves the allocation key keeps its bytes: metering and billing store it, so the text the shared
 * rule writes must equal what each of their former copies wrote (`s:<subtaskId>:<attempt>`,
 * `l:<leaseId>`, `x:<tenantId>:<allocationId>`), for every event type that names an allocation,
 * and no key for any other event.
 */
import { describe, expect, it } from 'vitest';
import { allocationKeyOf, externalKey, leaseKey, subtaskKey } from './allocation-key';
import type { DomainEvent } from './codec';

/** Only `type` and `data` are read; the rest of the envelope does not matter to the key. */
const event = (type: string, data: Record<string, unknown>) => ({ type, data }) as unknown as DomainEvent;

/** The former copies in apps/billing accrual.ts and apps/metering usage.model.ts, written out. */
const formerSubtaskKey = (subtaskId: string, attempt: number) => 's:' + subtaskId + ':' + String(attempt);
const formerLeaseKey = (leaseId: string) => 'l:' + leaseId;
const formerExternalKey = (tenantId: string, allocationId: string) => 'x:' + tenantId + ':' + allocationId;

describe('allocation keys', () => {
  it('writes the recorded bytes', () => {
    expect(subtaskKey('01JSUB', 3)).toBe('s:01JSUB:3');
    expect(leaseKey('lease-7')).toBe('l:lease-7');
    expect(externalKey('t1', 'alloc:ä/1')).toBe('x:t1:alloc:ä/1');
    expect(Buffer.from(externalKey('t1', 'alloc:ä/1'), 'utf8').toString('hex')).toBe('783a74313a616c6c6f633ac3a42f31');
  });

  it('equals the former copies on every event that names an allocation', () => {
    for (const type of ['SubtaskPlaced', 'SubtaskStarted', 'SubtaskCompleted', 'SubtaskFailed', 'SubtaskPreempted']) {
      for (const [subtaskId, attempt] of [['s1', 0], ['01J:odd:id', 12], ['ü', 9007199254740991]] as const) {
        expect(allocationKeyOf(event(type, { subtaskId, attempt }))).toEqual({ key: formerSubtaskKey(subtaskId, attempt), kind: 'subtask' });
      }
    }
    expect(allocationKeyOf(event('SubtaskRequeued', { subtaskId: 's1', attempt: 5, previousAttempt: 4 }))).toEqual({ key: 's:s1:4', kind: 'subtask' });
    expect(allocationKeyOf(event('SubtaskRequeued', { subtaskId: 's1', attempt: 5, previousAttempt: 4 }))?.key).toBe(formerSubtaskKey('s1', 4));
    for (const type of ['LeaseGranted', 'LeaseReleased']) {
      expect(allocationKeyOf(event(type, { leaseId: 'L:1' }))).toEqual({ key: formerLeaseKey('L:1'), kind: 'lease' });
    }
    for (const type of ['ExternalAllocationStarted', 'ExternalAllocationStopped']) {
      expect(allocationKeyOf(event(type, { tenantId: 'acme', allocationId: 'a:b' }))).toEqual({ key: formerExternalKey('acme', 'a:b'), kind: 'external' });
    }
  });

  it('names no allocation for any other event', () => {
    for (const type of ['SubtaskCreated', 'SubtaskAbandoned', 'UsageRecorded', 'JobSubmitted', 'ExternalAllocationReportedLate', 'NodeLost']) {
      expect(allocationKeyOf(event(type, { subtaskId: 's1', attempt: 1, leaseId: 'l', tenantId: 't', allocationId: 'a' }))).toBeNull();
    }
  });
});
