import { createHash, timingSafeEqual } from 'node:crypto';
import { createParamDecorator, Inject, Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastGpuConfig } from '@fastgpu/config';
import { randomToken, type Role } from '@fastgpu/contracts';
import { ApiError, notFound, tooManyRequests } from '@fastgpu/http';
import { metricsFor } from '@fastgpu/observability';
import { RUNTIME, TickBatcher, type Runtime } from '@fastgpu/runtime';
import { RateLimiter, type RateLimits } from './rate-limit';

export * from './rate-limit';

/**
 * API keys: `fgk_<random 192 bits>`, shown once, stored as SHA-256, revocable, one role each.
 * The tenant comes from the credential only, never from the path or the body.
 */
export interface Principal {
  keyId: string;
  role: Role;
  /** null for platform roles (admin, finance, sre), which act across tenants. */
  tenantId: string | null;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function newApiKeySecret(): string {
  return `fgk_${randomToken(24)}`;
}

/** Longer bearer values are no key of ours (keys are 36 characters): refused without hashing. */
export const BEARER_LENGTH_MAX = 256;

export const ROLES_KEY = 'fastgpu:roles';
/** Roles allowed on a route; admin is always allowed. */
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);

interface KeyRow {
  key_id: string;
  role: string;
  tenant_id: string | null;
  revoked_at: unknown;
  secret_hash: string;
}

/**
 * Resolves a bearer key to its principal by reading the key directory on every request — no
 * cache, on every transport — so a revocation holds from the moment the directory has it (the
 * revoke route answers only then), in every process. The lookups of one event-loop turn share one
 * query on the unique `secret_hash` index, so the cost under load is one round trip per turn.
 */
@Injectable()
export class ApiKeyResolver {
  private readonly lookups = new TickBatcher<string, Principal | null>((hashes) => this.lookup(hashes));

  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  async resolve(secret: string): Promise<Principal | null> {
    if (secret.length > BEARER_LENGTH_MAX) return null;
    const hash = hashSecret(secret);
    const admin = Buffer.from(this.runtime.adminKeyHash, 'hex');
    if (admin.length === 32 && timingSafeEqual(Buffer.from(hash, 'hex'), admin)) return { keyId: 'admin', role: 'admin', tenantId: null };
    return this.lookups.add(hash);
  }

  private lookup(hashes: readonly string[]): Array<Promise<Principal | null>> {
    const rows = this.runtime.db
      .selectFrom('api_keys')
      .select(['key_id', 'role', 'tenant_id', 'revoked_at', 'secret_hash'])
      .where('secret_hash', 'in', [...new Set(hashes)])
      .execute()
      .then((found) => new Map((found as KeyRow[]).map((row) => [row.secret_hash, row])));
    return hashes.map(async (hash) => {
      const row = (await rows).get(hash);
      return row && !row.revoked_at ? { keyId: row.key_id, role: row.role as Role, tenantId: row.tenant_id } : null;
    });
  }

  /** Nothing is cached, so a revocation needs no invalidation; kept for callers that revoke. */
  forget(): void {}
}

export type Transport = 'http' | 'grpc';

/** Where each transport carries the key, as named in errors' `field`. */
const CREDENTIAL_FIELD: Record<Transport, string> = { http: 'Authorization', grpc: 'authorization' };
const CREDENTIAL_PLACE: Record<Transport, string> = { http: 'the Authorization header', grpc: 'the authorization metadata' };

export function rateLimitsOf(config: Pick<FastGpuConfig, 'rateLimitKeyPerSecond' | 'rateLimitKeyBurst' | 'rateLimitTenantPerSecond' | 'rateLimitTenantBurst' | 'watchStreamsPerTenantMax'>): RateLimits {
  return {
    key: { perSecond: config.rateLimitKeyPerSecond, burst: config.rateLimitKeyBurst },
    tenant: { perSecond: config.rateLimitTenantPerSecond, burst: config.rateLimitTenantBurst },
    streamsPerTenantMax: config.watchStreamsPerTenantMax,
  };
}

/**
 * The one authentication path of HTTP and gRPC: the bearer key is resolved (uncached), its
 * key's and tenant's rate limits applied (429 with Retry-After), then the route's roles checked.
 * Errors are `ApiError`s; gRPC maps them to its status codes with the same code and field.
 */
@Injectable()
export class Authenticator {
  readonly limiter: RateLimiter;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(ApiKeyResolver) private readonly resolver: ApiKeyResolver,
  ) {
    this.limiter = new RateLimiter(rateLimitsOf(runtime.config));
  }

  async authenticate(authorization: string | undefined, roles: readonly Role[], transport: Transport): Promise<Principal> {
    const field = CREDENTIAL_FIELD[transport];
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    if (!match) throw new ApiError(401, 'unauthenticated', `missing bearer API key in ${CREDENTIAL_PLACE[transport]}`, field);
    const principal = await this.resolver.resolve(match[1]!);
    if (!principal) throw new ApiError(401, 'unauthenticated', 'unknown or revoked API key', field);
    const decision = this.limiter.admit(principal.keyId, principal.tenantId);
    const labels = { tenant: principal.tenantId ?? 'platform', key: principal.keyId, transport };
    const metrics = metricsFor(this.runtime);
    if (!decision.admitted) {
      metrics.rateLimitRequests.inc({ ...labels, outcome: decision.limitedBy === 'key' ? 'limited_by_key' : 'limited_by_tenant' });
      throw tooManyRequests(`rate limit of this ${decision.limitedBy === 'key' ? 'API key' : 'tenant'} reached; retry after ${decision.retryAfterSeconds} s`, decision.retryAfterSeconds);
    }
    metrics.rateLimitRequests.inc({ ...labels, outcome: 'allowed' });
    if (principal.role !== 'admin' && !roles.includes(principal.role)) throw new ApiError(403, 'forbidden', `role ${principal.role} may not call this ${transport === 'http' ? 'endpoint' : 'method'}`);
    return principal;
  }

  /**
   * Opens a long-lived stream (a job watch) for the principal's tenant (platform keys count per
   * key), or refuses with 429 when it already holds the maximum. Call the returned function when
   * the stream ends, however it ends.
   */
  openStream(principal: Principal): () => void {
    const owner = principal.tenantId ?? `platform:${principal.keyId}`;
    const metrics = metricsFor(this.runtime);
    const release = this.limiter.openStream(owner);
    if (!release) {
      metrics.watchStreamsRefused.inc({ tenant: owner });
      throw new ApiError(429, 'too_many_streams', `at most ${this.limiter.limits.streamsPerTenantMax} open watch streams per tenant; close one first`, undefined, { 'retry-after': '1' });
    }
    metrics.watchStreamsOpen.set({ tenant: owner }, this.limiter.streamsOpen(owner));
    return () => {
      release();
      metrics.watchStreamsOpen.set({ tenant: owner }, this.limiter.streamsOpen(owner));
    };
  }
}

@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    @Inject(Authenticator) private readonly authenticator: Authenticator,
    @Inject(Reflector) private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string | undefined>; principal?: Principal }>();
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, [context.getHandler(), context.getClass()]) ?? ['tenant'];
    request.principal = await this.authenticator.authenticate(request.headers.authorization, roles, 'http');
    return true;
  }
}

export const CurrentPrincipal = createParamDecorator((_: unknown, context: ExecutionContext): Principal => {
  const principal = context.switchToHttp().getRequest<{ principal?: Principal }>().principal;
  if (!principal) throw new ApiError(401, 'unauthenticated', 'no principal on request');
  return principal;
});

/** The tenant a request acts for: the credential's tenant; platform roles may name one in `?tenantId=`. */
export function tenantScope(principal: Principal, requestedTenantId?: string): string | null {
  if (principal.tenantId) return principal.tenantId;
  return requestedTenantId ?? null;
}

/**
 * Reads one object for a principal so that another tenant's object and a missing one are the
 * same to the caller — the same 404 body and the same work, hence the same time. `lookup(scope)`
 * must put the scope into its query (`where tenant_id = scope`; no tenant filter when scope is
 * null, for platform roles): a foreign row is then never read, and nothing after the lookup can
 * tell the two apart. When nothing is found, `onMiss` (e.g. waiting for a projection to catch up)
 * runs and the lookup repeats — for a foreign id exactly as for a missing one, since the two are
 * one path. Checking the owner after an unscoped read instead would skip that retry for a
 * foreign id, and measurably answer it faster.
 */
export async function findForTenant<T>(principal: Principal, what: string, lookup: (tenantId: string | null) => Promise<T | undefined>, options: { onMiss?: () => Promise<void> } = {}): Promise<T> {
  const scope = principal.tenantId;
  let found = await lookup(scope);
  if (found === undefined && options.onMiss) {
    await options.onMiss();
    found = await lookup(scope);
  }
  if (found === undefined) throw notFound(what);
  return found;
}
