import { Inject, Injectable } from '@nestjs/common';
import { deriveId, multiLineText, newEntityId, newEventId, requestIdSchema, subjectFor, type DomainEvent, type Role } from '@fastgpu/contracts';
import { hashSecret, newApiKeySecret, type Principal } from '@fastgpu/auth';
import { DomainError, DomainErrorKind, handleCommand, JetStreamEventStream, type Decider } from '@fastgpu/eventsourcing';
import { notFound, parseInput } from '@fastgpu/http';
import { z } from 'zod';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import { IdempotencyKeys, keyOwner, readIdempotencyKey, requestHash } from '../shared/idempotency';
import { IntakeProjections } from '../shared/intake-projections';
import type { CreateTenantRequest } from './tenants.schema';
import { keyPlacementRefusal, tenantDecider, tenantExists, type TenantCommand, type TenantState } from './tenant.decider';

export interface TenantView {
  tenantId: string;
  name: string;
  billingTimeZone: string;
  currency: string;
  createdAt: string;
}

/** A revocation reason: the event's bound and the storable-text rule. */
const revocationReason = z.object({ reason: multiLineText(500, 1) });

/**
 * Tenants and API keys: each command is decided by the tenant's aggregate (tenant.decider.ts)
 * through the kernel's handleCommand, the directory read model follows.
 */
@Injectable()
export class TenantsService {
  private readonly store: JetStreamEventStream;
  private readonly decider: Decider<TenantState, TenantCommand, DomainEvent>;
  private readonly keys: IdempotencyKeys;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(IntakeProjections) private readonly projections: IntakeProjections,
  ) {
    const publisher = publisherFor(runtime, 'intake');
    this.store = new JetStreamEventStream(runtime.bus, publisher);
    this.decider = tenantDecider((type, data, meta) => publisher.build(type, data, meta));
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
    if (await this.find(tenantId)) throw tenantExists(tenantId);
    const claimed = await this.keys.claim({ owner, scope: 'tenant', key, requestHash: hash, resourceId: tenantId, createdAt: this.runtime.clock.now() });
    if (!claimed.created) return (await this.find(claimed.resourceId)) ?? this.publishTenant(actor, claimed.resourceId, request, claimed.createdAt);
    try {
      return await this.publishTenant(actor, tenantId, request, claimed.createdAt);
    } catch (error) {
      // The id was taken meanwhile: the key did not create anything, so it is free again.
      if (error instanceof DomainError && error.kind === DomainErrorKind.conflict) await this.keys.release(owner, 'tenant', key);
      throw error;
    }
  }

  /** The aggregate a tenant's events (and its keys') are on; platform keys have the platform's. */
  private aggregate(tenantId: string | null): string {
    return subjectFor(this.runtime.bus.topology, 'ApiKeyIssued', { tenantId } as never);
  }

  private async publishTenant(actor: Principal, tenantId: string, request: CreateTenantRequest, createdAt: Date): Promise<TenantView> {
    const command: TenantCommand = {
      kind: 'create-tenant',
      eventId: deriveId(newEventId(), `tenant:${tenantId}`),
      tenantId,
      name: request.name,
      billingTimeZone: request.billingTimeZone,
      currency: request.currency,
      createdAt: createdAt.toISOString(),
      actorKeyId: actor.keyId,
    };
    const { version } = await handleCommand(this.store, this.decider, this.aggregate(tenantId), command);
    await this.projections.waitFor('intake-directory', version);
    return (await this.find(tenantId))!;
  }

  async issueKey(actor: Principal, tenantId: string | null, role: Role, label?: string): Promise<{ keyId: string; role: Role; tenantId: string | null; secret: string }> {
    // Refused before a secret is made; the decider refuses the same again.
    const refusal = keyPlacementRefusal(tenantId, role);
    if (refusal) throw refusal;
    const secret = newApiKeySecret();
    const keyId = newEntityId();
    const command: TenantCommand = { kind: 'issue-key', eventId: newEventId(), keyId, tenantId, role, secretHash: hashSecret(secret), issuedAt: this.runtime.clock.now().toISOString(), actorKeyId: actor.keyId, ...(label ? { label } : {}) };
    const { version } = await handleCommand(this.store, this.decider, this.aggregate(tenantId), command);
    await this.projections.waitFor('intake-directory', version);
    return { keyId, role, tenantId, secret };
  }

  async revokeKey(actor: Principal, keyId: string, reasonText: string): Promise<void> {
    // An id that cannot exist is missing (and never reaches the database: PostgreSQL refuses U+0000).
    if (!requestIdSchema.safeParse(keyId).success) throw notFound(`API key ${keyId}`);
    const { reason } = parseInput(revocationReason, { reason: reasonText });
    const row = await this.runtime.db.selectFrom('api_keys').select(['tenant_id', 'revoked_at']).where('key_id', '=', keyId).executeTakeFirst();
    if (!row) throw notFound(`API key ${keyId}`);
    if (row.revoked_at) return;
    const revokedAt = this.runtime.clock.now().toISOString();
    const command: TenantCommand = { kind: 'revoke-key', eventId: deriveId(keyId, 'revoked'), keyId, tenantId: row.tenant_id, reason, revokedAt, actorKeyId: actor.keyId };
    const { version } = await handleCommand(this.store, this.decider, this.aggregate(row.tenant_id), command);
    await this.projections.waitFor('intake-directory', version);
  }
}
