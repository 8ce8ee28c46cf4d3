import { createHash, timingSafeEqual } from 'node:crypto';
import { createParamDecorator, Inject, Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { randomToken, type Role } from '@fastgpu/contracts';
import { ApiError } from '@fastgpu/http';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';

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

const ROLES_KEY = 'fastgpu:roles';
/** Roles allowed on a route; admin is always allowed. */
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);

/** Resolves a bearer key to its principal; cached briefly because every request needs it. */
@Injectable()
export class ApiKeyResolver {
  private readonly cache = new Map<string, { principal: Principal | null; expiresAt: number }>();
  private static readonly CACHE_TTL_MS = 5_000;
  private static readonly CACHE_ENTRIES_MAX = 10_000;

  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  async resolve(secret: string): Promise<Principal | null> {
    const hash = hashSecret(secret);
    const admin = Buffer.from(this.runtime.adminKeyHash, 'hex');
    if (admin.length === 32 && timingSafeEqual(Buffer.from(hash, 'hex'), admin)) return { keyId: 'admin', role: 'admin', tenantId: null };
    const now = Date.now();
    const cached = this.cache.get(hash);
    if (cached && cached.expiresAt > now) return cached.principal;
    const row = await this.runtime.db.selectFrom('api_keys').select(['key_id', 'role', 'tenant_id', 'revoked_at']).where('secret_hash', '=', hash).executeTakeFirst();
    const principal: Principal | null = row && !row.revoked_at ? { keyId: row.key_id, role: row.role as Role, tenantId: row.tenant_id } : null;
    if (this.cache.size >= ApiKeyResolver.CACHE_ENTRIES_MAX) this.cache.clear();
    // Unknown keys are not cached: a key issued a moment ago must work at once.
    if (principal) this.cache.set(hash, { principal, expiresAt: now + ApiKeyResolver.CACHE_TTL_MS });
    return principal;
  }

  forget(): void {
    this.cache.clear();
  }
}

@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    @Inject(ApiKeyResolver) private readonly resolver: ApiKeyResolver,
    @Inject(Reflector) private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string | undefined>; principal?: Principal }>();
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new ApiError(401, 'unauthenticated', 'missing bearer API key in the Authorization header', 'Authorization');
    const principal = await this.resolver.resolve(match[1]!);
    if (!principal) throw new ApiError(401, 'unauthenticated', 'unknown or revoked API key', 'Authorization');
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, [context.getHandler(), context.getClass()]) ?? ['tenant'];
    if (principal.role !== 'admin' && !roles.includes(principal.role)) throw new ApiError(403, 'forbidden', `role ${principal.role} may not call this endpoint`);
    request.principal = principal;
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
