import type { Kysely } from 'kysely';
import { hashSecret } from '@fastgpu/auth';
import type { Database } from '@fastgpu/db';

/**
 * Stores an API key straight into the key directory (`api_keys`) and returns its secret: for
 * tests that need a caller of a service, not the key-issuing command. The secret is
 * `fgk_test_<keyId>_…` unless one is given.
 */
export async function insertTestApiKey(db: Kysely<Database>, key: { keyId: string; tenantId: string | null; role: string; issuedAt: Date; secret?: string }): Promise<string> {
  const secret = key.secret ?? `fgk_test_${key.keyId}_0123456789abcdef`;
  await db.insertInto('api_keys').values({ key_id: key.keyId, tenant_id: key.tenantId, role: key.role, secret_hash: hashSecret(secret), issued_at: key.issuedAt }).execute();
  return secret;
}
