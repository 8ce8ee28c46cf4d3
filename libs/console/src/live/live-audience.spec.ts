/**
 * Proves who receives which event on the live feed (pure): a tenant only its own tenant's
 * events of its work and money, never a platform event even when it names the tenant; finance
 * the money of every tenant; sre and admin everything. And every type given to tenants carries a
 * tenantId in its payload, so its producers name the tenant it belongs to.
 */
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { eventCatalogue, type EventType } from '@fastgpu/contracts';
import { liveAudience, liveDataFor, liveTypesFor, mayReceive, type LiveViewer } from './live-audience';

const allTypes = Object.keys(eventCatalogue) as EventType[];
const receives = (viewer: LiveViewer, type: string, tenantid: string | null) => mayReceive(viewer, liveTypesFor(viewer), { type, tenantid });

describe('the live audience', () => {
  const tenantA: LiveViewer = { role: 'tenant', tenantId: 'a' };

  it('gives a tenant its own job and money events only', () => {
    expect(receives(tenantA, 'SubtaskPlaced', 'a')).toBe(true);
    expect(receives(tenantA, 'InvoiceFinalized', 'a')).toBe(true);
    expect(receives(tenantA, 'SubtaskPlaced', 'b')).toBe(false);
    expect(receives(tenantA, 'SubtaskPlaced', null)).toBe(false);
    for (const type of ['ApiKeyIssued', 'ApiKeyRevoked', 'TenantCreated', 'NodeLost', 'NodeDrained', 'SchedulingPolicySet', 'LateUsageDismissed']) expect([type, receives(tenantA, type, 'a')]).toEqual([type, false]);
    expect(liveTypesFor({ role: 'tenant', tenantId: null }).size).toBe(0);
  });

  it('gives finance the money of every tenant and nothing of jobs or nodes', () => {
    const finance: LiveViewer = { role: 'finance', tenantId: null };
    for (const type of ['UsageRecorded', 'InvoicePaid', 'CreditNoteIssued', 'PriceBookPublished', 'SlaCreditIssued']) expect([type, receives(finance, type, 'b')]).toEqual([type, true]);
    for (const type of ['JobSubmitted', 'SubtaskPlaced', 'NodeLost', 'ApiKeyIssued']) expect([type, receives(finance, type, 'b')]).toEqual([type, false]);
  });

  it('gives sre and admin every event type', () => {
    for (const role of ['sre', 'admin'] as const) expect(liveTypesFor({ role, tenantId: null })).toEqual(new Set(allTypes));
  });

  it('gives tenants only types whose payload names a tenant', () => {
    for (const type of allTypes.filter((t) => liveAudience[t].tenant)) {
      const shape = (eventCatalogue[type].schema as unknown as z.ZodObject).shape as Record<string, unknown>;
      expect([type, 'tenantId' in shape]).toEqual([type, true]);
    }
  });
});

describe('the data a viewer receives', () => {
  const preempted = { type: 'SubtaskPreempted', data: { jobId: 'job-a', subtaskId: 's-1', nodeId: 'n1', preemptedByJobId: 'job-of-tenant-b' } };

  it("drops the preempting job's id from a tenant's SubtaskPreempted: it can be another tenant's job", () => {
    const data = liveDataFor({ role: 'tenant', tenantId: 'a' }, preempted) as Record<string, unknown>;
    expect(data).not.toHaveProperty('preemptedByJobId');
    expect(data).toEqual({ jobId: 'job-a', subtaskId: 's-1', nodeId: 'n1' });
  });

  it('gives sre the event whole, and a tenant other events whole', () => {
    expect(liveDataFor({ role: 'sre', tenantId: null }, preempted)).toBe(preempted.data);
    const placed = { type: 'SubtaskPlaced', data: { jobId: 'job-a' } };
    expect(liveDataFor({ role: 'tenant', tenantId: 'a' }, placed)).toBe(placed.data);
  });
});
