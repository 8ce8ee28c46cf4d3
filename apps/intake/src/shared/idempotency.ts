import { canonicalJson, sha256Hex } from '@fastgpu/contracts';
import { ApiError } from '@fastgpu/http';
import type { Runtime } from '@fastgpu/runtime';

/**
 * The one Idempotency-Key rule of intake's create routes (jobs, leases, tenants): a key names
 * one request per caller and route. The same key with the same body answers the original
 * request's answer; the same key with another body answers 409 `idempotency_key_reused`.
 * A key is claimed (a row here) before anything is published, and only after every check
 * passed, so a refused request leaves the key free and a claimed one always has its events.
 */
export type IdempotencyScope = 'job' | 'lease' | 'tenant';

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
/** Visible ASCII, as HTTP header values and gRPC metadata carry them safely. */
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,256}$/;

/** The key namespace of a caller: its tenant, or the platform for platform keys (ids never start with '~'). */
export function keyOwner(tenantId: string | null): string {
  return tenantId ?? '~platform';
}

/** A missing (or empty) key is undefined; a malformed one is a 400 with the header as the field. */
export function readIdempotencyKey(value: string | undefined, options: { required: boolean; why?: string }): string | undefined {
  if (value === undefined || value === '') {
    if (options.required) throw new ApiError(400, 'invalid_request', `${IDEMPOTENCY_HEADER} is required${options.why ? `: ${options.why}` : ''}`, IDEMPOTENCY_HEADER);
    return undefined;
  }
  if (!IDEMPOTENCY_KEY_PATTERN.test(value)) throw new ApiError(400, 'invalid_request', `${IDEMPOTENCY_HEADER} must be 1-256 visible ASCII characters`, IDEMPOTENCY_HEADER);
  return value;
}

export function keyReused(): ApiError {
  return new ApiError(409, 'idempotency_key_reused', `${IDEMPOTENCY_HEADER} was already used with a different request body`, IDEMPOTENCY_HEADER);
}

/** SHA-256 of the request in canonical JSON (key order and absent fields do not matter). */
export function requestHash(request: unknown): string {
  return sha256Hex(canonicalJson(request));
}

/** The canonical JSON itself, for keys of in-memory caches. */
export { canonicalJson };

export interface IdempotencyClaim {
  owner: string;
  scope: IdempotencyScope;
  key: string;
  requestHash: string;
  /** The id the request creates (kept, so a retry names the same resource). */
  resourceId: string;
  createdAt: Date;
}

export interface ClaimedKey {
  resourceId: string;
  createdAt: Date;
}

const nameOf = (c: Pick<IdempotencyClaim, 'owner' | 'scope' | 'key'>) => `${c.owner}\u0000${c.scope}\u0000${c.key}`;

/** The claims table (`idempotency_keys`), read and written for every scope the same way. */
export class IdempotencyKeys {
  constructor(private readonly runtime: Runtime) {}

  /** An earlier request with this key: its resource, or 409 when its body differed. */
  async find(owner: string, scope: IdempotencyScope, key: string, hash: string): Promise<ClaimedKey | undefined> {
    const [found] = this.findAll([{ owner, scope, key, requestHash: hash }]);
    return found!;
  }

  /**
   * Earlier requests for a batch of keys in one SELECT (the submissions of one event-loop turn):
   * for each, its resource, undefined, or a rejection with 409 when its body differed.
   */
  findAll(lookups: ReadonlyArray<Pick<IdempotencyClaim, 'owner' | 'scope' | 'key' | 'requestHash'>>): Array<Promise<ClaimedKey | undefined>> {
    const owners = [...new Set(lookups.map((l) => l.owner))];
    const keys = [...new Set(lookups.map((l) => l.key))];
    const scopes = [...new Set(lookups.map((l) => l.scope))];
    // A superset (every owner × key × scope of the batch), narrowed in memory.
    const rows = this.runtime.db
      .selectFrom('idempotency_keys')
      .select(['tenant_id', 'scope', 'key', 'request_hash', 'resource_id', 'created_at'])
      .where('tenant_id', 'in', owners)
      .where('scope', 'in', scopes)
      .where('key', 'in', keys)
      .execute()
      .then((found) => new Map(found.map((r) => [nameOf({ owner: r.tenant_id, scope: r.scope as IdempotencyScope, key: r.key }), r])));
    return lookups.map((lookup) =>
      rows.then((byName) => {
        const row = byName.get(nameOf(lookup));
        if (!row) return undefined;
        if (row.request_hash !== lookup.requestHash) throw keyReused();
        return { resourceId: row.resource_id, createdAt: new Date(row.created_at) };
      }),
    );
  }

  /**
   * Claims keys in one multi-row INSERT: for each claim, true when it inserted its key, false
   * when the key was already there (a concurrent request, or an earlier claim in this batch).
   */
  claimAll(claims: readonly IdempotencyClaim[]): Array<Promise<boolean>> {
    const firstOfKey = new Map<string, number>();
    claims.forEach((claim, i) => {
      if (!firstOfKey.has(nameOf(claim))) firstOfKey.set(nameOf(claim), i);
    });
    const rows = [...firstOfKey.values()].map((i) => claims[i]!);
    const inserted = this.runtime.db
      .insertInto('idempotency_keys')
      .values(rows.map((c) => ({ tenant_id: c.owner, scope: c.scope, key: c.key, request_hash: c.requestHash, resource_id: c.resourceId, created_at: c.createdAt })))
      .onConflict((oc) => oc.columns(['tenant_id', 'scope', 'key']).doNothing())
      .returning(['tenant_id', 'scope', 'key'])
      .execute()
      .then((returned) => new Set(returned.map((r) => nameOf({ owner: r.tenant_id, scope: r.scope as IdempotencyScope, key: r.key }))));
    return claims.map((claim, i) => (firstOfKey.get(nameOf(claim)) === i ? inserted.then((names) => names.has(nameOf(claim))) : inserted.then(() => false)));
  }

  /**
   * Claims one key. When another request claimed it first, its resource is answered instead
   * (or 409 when that request's body differed).
   */
  async claim(claim: IdempotencyClaim): Promise<{ created: boolean } & ClaimedKey> {
    const [inserted] = this.claimAll([claim]);
    if (await inserted!) return { created: true, resourceId: claim.resourceId, createdAt: claim.createdAt };
    return this.afterLostClaim(claim);
  }

  /** Frees a key whose request created nothing after all (e.g. its id was taken meanwhile). */
  async release(owner: string, scope: IdempotencyScope, key: string): Promise<void> {
    await this.runtime.db.deleteFrom('idempotency_keys').where('tenant_id', '=', owner).where('scope', '=', scope).where('key', '=', key).execute();
  }

  /** The claim of a request that lost the race for its key: the winner's resource, or 409. */
  async afterLostClaim(claim: IdempotencyClaim): Promise<{ created: false } & ClaimedKey> {
    const existing = await this.find(claim.owner, claim.scope, claim.key, claim.requestHash);
    if (!existing) throw new Error(`idempotency key ${claim.scope}/${claim.key} was neither inserted nor found`);
    return { created: false, ...existing };
  }
}
