import { Inject, Injectable } from '@nestjs/common';
import { deriveId, newEntityId, newEventId, type Role } from '@fastgpu/contracts';
import { hashSecret, newApiKeySecret, type Principal } from '@fastgpu/auth';
import { conflict, notFound, unprocessable } from '@fastgpu/http';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import type { EventPublisher } from '@fastgpu/messaging';
import { IntakeProjections } from '../shared/intake-projections';
import type { CreateTenantRequest } from './tenants.schema';

export interface TenantView {
  tenantId: string;
  name: string;
  billingTimeZone: string;
  currency: string;
  createdAt: string;
}

/** Tenants and API keys: facts go to the log first, the directory read model follows. */
@Injectable()
export class TenantsService {
  private readonly publisher: EventPublisher;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(IntakeProjections) private readonly projections: IntakeProjections,
  ) {
    this.publisher = publisherFor(runtime, 'intake');
  }

  async find(tenantId: string): Promise<TenantView | undefined> {
    const row = await this.runtime.db.selectFrom('tenants').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst();
    return row ? { tenantId: row.tenant_id, name: row.name, billingTimeZone: row.billing_time_zone, currency: row.currency, createdAt: new Date(row.created_at).toISOString() } : undefined;
  }

  async create(actor: Principal, request: CreateTenantRequest): Promise<TenantView> {
    const tenantId = request.tenantId ?? newEntityId();
    if (await this.find(tenantId)) throw conflict(`tenant ${tenantId} already exists`, 'tenantId');
    const now = this.runtime.clock.now().toISOString();
    const event = this.publisher.build(
      'TenantCreated',
      { tenantId, name: request.name, billingTimeZone: request.billingTimeZone, currency: request.currency, createdAt: now },
      { id: deriveId(newEventId(), `tenant:${tenantId}`), time: now, tenantId, correlationId: actor.keyId },
    );
    const { sequence } = await this.publisher.publish(event, { expectedLastSubjectSequence: 0 }).catch((error: Error) => {
      if (/wrong last sequence/i.test(error.message)) throw conflict(`tenant ${tenantId} already exists`, 'tenantId');
      throw error;
    });
    await this.projections.waitFor('intake-directory', sequence);
    return (await this.find(tenantId))!;
  }

  async issueKey(actor: Principal, tenantId: string | null, role: Role, label?: string): Promise<{ keyId: string; role: Role; tenantId: string | null; secret: string }> {
    if (tenantId === null && role === 'tenant') throw unprocessable('a tenant key must belong to a tenant: use /v1/tenants/{tenantId}/api-keys', 'role');
    if (tenantId !== null && role !== 'tenant') throw unprocessable('platform roles (finance, sre, admin) are issued with POST /v1/api-keys', 'role');
    if (tenantId !== null && !(await this.find(tenantId))) throw notFound(`tenant ${tenantId}`);
    const secret = newApiKeySecret();
    const keyId = newEntityId();
    const now = this.runtime.clock.now().toISOString();
    const event = this.publisher.build(
      'ApiKeyIssued',
      { keyId, tenantId, role, secretHash: hashSecret(secret), issuedAt: now, ...(label ? { label } : {}) },
      { id: newEventId(), time: now, tenantId, correlationId: actor.keyId },
    );
    const { sequence } = await this.publisher.publish(event);
    await this.projections.waitFor('intake-directory', sequence);
    return { keyId, role, tenantId, secret };
  }

  async revokeKey(actor: Principal, keyId: string, reason: string): Promise<void> {
    const row = await this.runtime.db.selectFrom('api_keys').select(['tenant_id', 'revoked_at']).where('key_id', '=', keyId).executeTakeFirst();
    if (!row) throw notFound(`API key ${keyId}`);
    if (row.revoked_at) return;
    const now = this.runtime.clock.now().toISOString();
    const event = this.publisher.build('ApiKeyRevoked', { keyId, tenantId: row.tenant_id, revokedAt: now, reason }, { id: deriveId(keyId, 'revoked'), time: now, tenantId: row.tenant_id, correlationId: actor.keyId });
    const { sequence } = await this.publisher.publish(event);
    await this.projections.waitFor('intake-directory', sequence);
  }
}
