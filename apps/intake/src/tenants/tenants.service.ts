import { Inject, Injectable } from '@nestjs/common';
import { deriveId, multiLineText, newEntityId, newEventId, requestIdSchema, type Role } from '@fastgpu/contracts';
import { hashSecret, newApiKeySecret, type Principal } from '@fastgpu/auth';
import { ApiError, conflict, notFound, parseInput, unprocessable } from '@fastgpu/http';
import { z } from 'zod';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import type { EventPublisher } from '@fastgpu/messaging';
import { IdempotencyKeys, keyOwner, readIdempotencyKey, requestHash } from '../shared/idempotency';
import { IntakeProjections } from '../shared/intake-projections';
import type { CreateTenantRequest } from './tenants.schema';

export interface TenantView {
  tenantId: string;
  name: string;
  billingTimeZone: string;
  currency: string;
  createdAt: string;
}

/** A revocation reason: the event's bound and the storable-text rule. */
const revocationReason = z.object({ reason: multiLineText(500, 1) });

/** Tenants and API keys: facts go to the log first, the directory read model follows. */
@Injectable()
export class TenantsService {
  private readonly publisher: EventPublisher;
  private readonly keys: IdempotencyKeys;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(IntakeProjections) private readonly projections: IntakeProjections,
  ) {
    this.publisher = publisherFor(runtime, 'intake');
    this.keys = new IdempotencyKeys(runtime);
  }

  async find(tenantId: string): Promise<TenantView | undefined> {
    const row = await this.runtime.db.selectFrom('tenants').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst();
    return row ? { tenantId: row.tenant_id, name: row.name, billingTimeZone: row.billing_time_zone, currency: row.currency, createdAt: new Date(row.created_at).toISOString() } : undefined;
  }

  /**
   * Creates a tenant. With an Idempotency-Key, a retry with the same body answers the tenant the
   * first request created (even when that request never reached the log), another body 409.
   */
  async create(actor: Principal, request: CreateTenantRequest, idempotencyKeyHeader?: string): Promise<TenantView> {
    const key = readIdempotencyKey(idempotencyKeyHeader, { required: false });
    if (key === undefined) return this.publishTenant(actor, request.tenantId ?? newEntityId(), request, this.runtime.clock.now());
    const owner = keyOwner(actor.tenantId);
    const hash = requestHash(request);
    const earlier = await this.keys.find(owner, 'tenant', key, hash);
    if (earlier) return (await this.find(earlier.resourceId)) ?? this.publishTenant(actor, earlier.resourceId, request, earlier.createdAt);
    const tenantId = request.tenantId ?? newEntityId();
    if (await this.find(tenantId)) throw conflict(`tenant ${tenantId} already exists`, 'tenantId');
    const claimed = await this.keys.claim({ owner, scope: 'tenant', key, requestHash: hash, resourceId: tenantId, createdAt: this.runtime.clock.now() });
    if (!claimed.created) return (await this.find(claimed.resourceId)) ?? this.publishTenant(actor, claimed.resourceId, request, claimed.createdAt);
    try {
      return await this.publishTenant(actor, tenantId, request, claimed.createdAt);
    } catch (error) {
      // The id was taken meanwhile: the key did not create anything, so it is free again.
      if (error instanceof ApiError && error.status === 409) await this.keys.release(owner, 'tenant', key);
      throw error;
    }
  }

  private async publishTenant(actor: Principal, tenantId: string, request: CreateTenantRequest, createdAt: Date): Promise<TenantView> {
    if (await this.find(tenantId)) throw conflict(`tenant ${tenantId} already exists`, 'tenantId');
    const now = createdAt.toISOString();
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

  async revokeKey(actor: Principal, keyId: string, reasonText: string): Promise<void> {
    // An id that cannot exist is missing (and never reaches the database: PostgreSQL refuses U+0000).
    if (!requestIdSchema.safeParse(keyId).success) throw notFound(`API key ${keyId}`);
    const { reason } = parseInput(revocationReason, { reason: reasonText });
    const row = await this.runtime.db.selectFrom('api_keys').select(['tenant_id', 'revoked_at']).where('key_id', '=', keyId).executeTakeFirst();
    if (!row) throw notFound(`API key ${keyId}`);
    if (row.revoked_at) return;
    const now = this.runtime.clock.now().toISOString();
    const event = this.publisher.build('ApiKeyRevoked', { keyId, tenantId: row.tenant_id, revokedAt: now, reason }, { id: deriveId(keyId, 'revoked'), time: now, tenantId: row.tenant_id, correlationId: actor.keyId });
    const { sequence } = await this.publisher.publish(event);
    await this.projections.waitFor('intake-directory', sequence);
  }
}
