import type { DomainEvent } from './codec';

/**
 * An allocation's key: one rule wherever usage is keyed by allocation. Metering keys its open
 * allocations by it (apps/metering usage.model.ts `keysOf`) and billing its accruals (apps/billing
 * accrual.ts `allocationOf`); both store the key, so its text is part of their tables: a sub-task
 * attempt `s:<subtaskId>:<attempt>`, a lease `l:<leaseId>`, an external allocation
 * `x:<tenantId>:<allocationId>`. Pure: no clock, no I/O.
 */
export const AllocationKind = { subtask: 'subtask', lease: 'lease', external: 'external' } as const;
export type AllocationKind = (typeof AllocationKind)[keyof typeof AllocationKind];

export const subtaskKey = (subtaskId: string, attempt: number) => `s:${subtaskId}:${attempt}`;
export const leaseKey = (leaseId: string) => `l:${leaseId}`;
export const externalKey = (tenantId: string, allocationId: string) => `x:${tenantId}:${allocationId}`;

/** The allocation an event opens, reports on or ends, and its kind; null for any other event. */
export function allocationKeyOf(event: DomainEvent): { key: string; kind: AllocationKind } | null {
  switch (event.type) {
    case 'SubtaskPlaced':
    case 'SubtaskStarted':
    case 'SubtaskCompleted':
    case 'SubtaskFailed':
    case 'SubtaskPreempted':
      return { key: subtaskKey(event.data.subtaskId, event.data.attempt), kind: 'subtask' };
    case 'SubtaskRequeued':
      return { key: subtaskKey(event.data.subtaskId, event.data.previousAttempt), kind: 'subtask' };
    case 'LeaseGranted':
    case 'LeaseReleased':
      return { key: leaseKey(event.data.leaseId), kind: 'lease' };
    case 'ExternalAllocationStarted':
    case 'ExternalAllocationStopped':
      return { key: externalKey(event.data.tenantId, event.data.allocationId), kind: 'external' };
    default:
      return null;
  }
}
