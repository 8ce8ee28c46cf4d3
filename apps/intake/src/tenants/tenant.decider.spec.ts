/**
 * Proves the tenant decider, given / when / then without I/O: a tenant is created once (again:
 * the `conflict` on field tenantId that POST /v1/tenants answers as 409); a tenant key needs the
 * tenant created (else not-found) and a tenant role, a platform key a platform role (else a
 * validation refusal on `role`, whatever the aggregate holds); a key is revoked once (again:
 * nothing decided), and a key the aggregate never issued is not-found.
 */
import { describe, expect, it } from 'vitest';
import { makeEvent, subjectFor, topology, type DomainEvent, type Role } from '@fastgpu/contracts';
import { spec, type BuildEvent } from '@fastgpu/eventsourcing';
import { keyPlacementRefusal, tenantDecider, type TenantCommand } from './tenant.decider';

const topo = topology('spec');
const build: BuildEvent = (type, data, meta) => makeEvent(type, data, { ...meta, source: 'intake' }, subjectFor(topo, type, data));
const decider = tenantDecider(build);
const at = '2026-10-01T10:00:00.000Z';
const hash = 'a'.repeat(64);
const create: TenantCommand = { kind: 'create-tenant', eventId: '0190d000-0000-7000-8000-000000000001', tenantId: 'acme', name: 'Acme', billingTimeZone: 'UTC', currency: 'USD', createdAt: at, actorKeyId: 'admin' };
const issue = (keyId: string, tenantId: string | null = 'acme', role: Role = 'tenant'): TenantCommand => ({ kind: 'issue-key', eventId: `0190d000-0000-7000-8000-00000000010${keyId.length}`, keyId, tenantId, role, secretHash: hash, issuedAt: at, actorKeyId: 'admin' });
const revoke = (keyId: string, tenantId: string | null = 'acme'): TenantCommand => ({ kind: 'revoke-key', eventId: '0190d000-0000-7000-8000-000000000201', keyId, tenantId, reason: 'revoked by admin', revokedAt: at, actorKeyId: 'admin' });
const decided = (command: TenantCommand, given: readonly DomainEvent[] = []) => decider.decide(command, given.reduce(decider.evolve, decider.initialState()));

describe('tenant decider', () => {
  const created = decided(create);
  const issued = decided(issue('k1'), created);

  it('creates a tenant once', () => {
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ type: 'TenantCreated', id: create.eventId, subject: topo.subjects.tenant('acme'), data: { tenantId: 'acme', name: 'Acme', billingTimeZone: 'UTC', currency: 'USD', createdAt: at } });
    spec(decider).given(created).when(create).thenThrows('conflict', 'conflict');
  });

  it('issues a tenant key on a created tenant only, and a platform key on the platform aggregate', () => {
    expect(issued[0]).toMatchObject({ type: 'ApiKeyIssued', subject: topo.subjects.tenant('acme'), data: { keyId: 'k1', tenantId: 'acme', role: 'tenant', secretHash: hash } });
    spec(decider).given([]).when(issue('k1')).thenThrows('not-found', 'tenant_not_found');
    const platform = decided(issue('p1', null, 'finance'));
    expect(platform[0]).toMatchObject({ type: 'ApiKeyIssued', data: { keyId: 'p1', tenantId: null, role: 'finance' } });
    expect(platform[0]!.subject).toBe(subjectFor(topo, 'ApiKeyIssued', platform[0]!.data as never));
  });

  it('refuses a role that does not fit where the key is issued, before looking at the tenant', () => {
    spec(decider).given(created).when(issue('k2', 'acme', 'sre')).thenThrows('validation', 'unprocessable');
    spec(decider).given([]).when(issue('k2', 'ghost', 'admin')).thenThrows('validation', 'unprocessable');
    spec(decider).given([]).when(issue('p2', null, 'tenant')).thenThrows('validation', 'unprocessable');
    expect(keyPlacementRefusal(null, 'tenant')?.field).toBe('role');
    expect(keyPlacementRefusal('acme', 'tenant')).toBeUndefined();
  });

  it('revokes a key once; a key never issued here is not found', () => {
    const revoked = decided(revoke('k1'), [...created, ...issued]);
    expect(revoked[0]).toMatchObject({ type: 'ApiKeyRevoked', data: { keyId: 'k1', tenantId: 'acme', reason: 'revoked by admin', revokedAt: at } });
    spec(decider).given([...created, ...issued, ...revoked]).when(revoke('k1')).then([]);
    spec(decider).given([...created, ...issued]).when(revoke('k9')).thenThrows('not-found', 'api_key_not_found');
  });
});
