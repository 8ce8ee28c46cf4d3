import type { DomainEvent, EventData, Role } from '@fastgpu/contracts';
import { conflictError, notFoundError, validationError, type BuildEvent, type Decider } from '@fastgpu/eventsourcing';

/**
 * A tenant and its API keys as one aggregate (the subject `…intake.tenant.<id>`; platform keys,
 * which belong to no tenant, on the platform's subject): TenantCreated once, then ApiKeyIssued
 * and ApiKeyRevoked. Pure: ids, times and the secret's hash arrive in the command.
 */
export interface TenantState {
  created: boolean;
  /** Keys issued on this aggregate: true once revoked. */
  keys: Readonly<Record<string, boolean>>;
}

/** Who asked (the acting API key), recorded as the events' correlation id. */
interface Actor {
  actorKeyId: string;
}

export type TenantCommand =
  | ({ kind: 'create-tenant'; eventId: string; tenantId: string; name: string; billingTimeZone: string; currency: string; createdAt: string } & Actor)
  | ({ kind: 'issue-key'; eventId: string; keyId: string; tenantId: string | null; role: Role; secretHash: string; label?: string; issuedAt: string } & Actor)
  | ({ kind: 'revoke-key'; eventId: string; keyId: string; tenantId: string | null; reason: string; revokedAt: string } & Actor);

/** A key's role must fit where it is issued; checked before the tenant is looked at. */
export function keyPlacementRefusal(tenantId: string | null, role: Role) {
  if (tenantId === null && role === 'tenant') return validationError('unprocessable', 'a tenant key must belong to a tenant: use /v1/tenants/{tenantId}/api-keys', 'role');
  if (tenantId !== null && role !== 'tenant') return validationError('unprocessable', 'platform roles (finance, sre, admin) are issued with POST /v1/api-keys', 'role');
  return undefined;
}

export const tenantExists = (tenantId: string) => conflictError('conflict', `tenant ${tenantId} already exists`, 'tenantId');

export function tenantDecider(build: BuildEvent): Decider<TenantState, TenantCommand, DomainEvent> {
  return {
    initialState: () => ({ created: false, keys: {} }),
    decide(command, state) {
      switch (command.kind) {
        case 'create-tenant': {
          if (state.created) throw tenantExists(command.tenantId);
          const data: EventData<'TenantCreated'> = { tenantId: command.tenantId, name: command.name, billingTimeZone: command.billingTimeZone, currency: command.currency, createdAt: command.createdAt };
          return [build('TenantCreated', data, { id: command.eventId, time: command.createdAt, tenantId: command.tenantId, correlationId: command.actorKeyId })];
        }
        case 'issue-key': {
          const refusal = keyPlacementRefusal(command.tenantId, command.role);
          if (refusal) throw refusal;
          if (command.tenantId !== null && !state.created) throw notFoundError('tenant_not_found', `tenant ${command.tenantId} not found`, 'tenantId');
          const data: EventData<'ApiKeyIssued'> = { keyId: command.keyId, tenantId: command.tenantId, role: command.role, secretHash: command.secretHash, issuedAt: command.issuedAt, ...(command.label ? { label: command.label } : {}) };
          return [build('ApiKeyIssued', data, { id: command.eventId, time: command.issuedAt, tenantId: command.tenantId, correlationId: command.actorKeyId })];
        }
        case 'revoke-key': {
          const revoked = state.keys[command.keyId];
          if (revoked === undefined) throw notFoundError('api_key_not_found', `API key ${command.keyId} not found`, 'keyId');
          // Revoked already: revoking again changes nothing.
          if (revoked) return [];
          return [build('ApiKeyRevoked', { keyId: command.keyId, tenantId: command.tenantId, revokedAt: command.revokedAt, reason: command.reason }, { id: command.eventId, time: command.revokedAt, tenantId: command.tenantId, correlationId: command.actorKeyId })];
        }
        default: {
          const unreachable: never = command;
          throw new Error(`unknown tenant command ${JSON.stringify(unreachable)}`);
        }
      }
    },
    evolve(state, event) {
      switch (event.type) {
        case 'TenantCreated':
          return { ...state, created: true };
        case 'ApiKeyIssued':
          return { ...state, keys: { ...state.keys, [(event).data.keyId]: false } };
        case 'ApiKeyRevoked':
          return { ...state, keys: { ...state.keys, [(event).data.keyId]: true } };
        default:
          return state;
      }
    },
  };
}
