import type { Kysely } from 'kysely';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Migrator, type Migration } from 'kysely/migration';
import { migrations as allMigrations } from '../../../migrations/index';
import type { Database } from './schema';

/** Where the migration files live (migrations/index.ts lists each of them; a test checks both agree). */
export const migrationsFolder = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../migrations');

/**
 * Applies every migration not yet applied, in name order. The migrations come from the static
 * list in migrations/index.ts (not a folder read with dynamic imports), so a compiled bundle
 * carries them and runs without a TypeScript loader. Migrations are never edited after they land.
 */
export async function migrateToLatest(db: Kysely<Database>, migrations: Readonly<Record<string, Migration>> = allMigrations): Promise<string[]> {
  // Services add migrations independently (each has its own number block), so order is by name but
  // a late-landing lower number still applies.
  const migrator = new Migrator({ db, provider: { getMigrations: async () => ({ ...migrations }) }, allowUnorderedMigrations: true });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    // The cause is kept: a database not answering yet (ECONNREFUSED) is retried at start (isDatabaseUnavailable).
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return (results ?? []).map((r) => r.migrationName);
}
