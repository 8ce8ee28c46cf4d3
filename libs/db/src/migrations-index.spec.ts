/**
 * Proves that migrations/index.ts, the static list migrateToLatest applies (and compiled bundles
 * carry), names every migration file in the folder and nothing else, each with up and down.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { migrations } from '../../../migrations/index';
import { migrationsFolder } from './migrate';

describe('migrations/index.ts', () => {
  it('lists exactly the migration files of the folder, by name', () => {
    const files = readdirSync(migrationsFolder)
      .filter((f) => /^\d+_.+\.ts$/.test(f))
      .map((f) => f.replace(/\.ts$/, ''))
      .sort();
    expect(files.length).toBeGreaterThan(0);
    expect(Object.keys(migrations).sort()).toEqual(files);
    for (const [name, migration] of Object.entries(migrations)) {
      expect(typeof migration.up, name).toBe('function');
      expect(typeof migration.down, name).toBe('function');
    }
  });
});
