import type { EventType } from '@fastgpu/contracts';
import type { Projection } from '@fastgpu/messaging';

/**
 * The directory: tenants and API keys (hashes only), folded from TenantCreated,
 * ApiKeyIssued and ApiKeyRevoked. Every service authenticates against these tables.
 */
const types: EventType[] = ['TenantCreated', 'ApiKeyIssued', 'ApiKeyRevoked'];

export const directoryProjection: Projection = {
  name: 'intake-directory',
  types: new Set(types),
  async apply(trx, events, ctx) {
    for (const { event, sequence } of events) {
      switch (event.type) {
        case 'TenantCreated': {
          const d = event.data;
          await trx
            .insertInto(ctx.table('tenants'))
            .values({ tenant_id: d.tenantId, name: d.name, billing_time_zone: d.billingTimeZone, currency: d.currency, created_at: new Date(d.createdAt), sequence })
            .onConflict((oc) => oc.column('tenant_id').doNothing())
            .execute();
          break;
        }
        case 'ApiKeyIssued': {
          const d = event.data;
          await trx
            .insertInto(ctx.table('api_keys'))
            .values({ key_id: d.keyId, tenant_id: d.tenantId, role: d.role, secret_hash: d.secretHash, label: d.label ?? null, issued_at: new Date(d.issuedAt) })
            .onConflict((oc) => oc.column('key_id').doNothing())
            .execute();
          break;
        }
        case 'ApiKeyRevoked': {
          const d = event.data;
          await trx.updateTable(ctx.table('api_keys')).set({ revoked_at: new Date(d.revokedAt) }).where('key_id', '=', d.keyId).where('revoked_at', 'is', null).execute();
          break;
        }
        default:
          break;
      }
    }
  },
};

export const directoryProjectionTables = ['tenants', 'api_keys'] as const;
