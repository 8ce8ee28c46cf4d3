import { mkdirSync } from 'node:fs';
import { Kysely, PGliteDialect, PostgresDialect } from 'kysely';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';

/**
 * One database handle for every service: kysely on `pg` when DATABASE_URL is set, else on
 * PGlite (embedded Postgres in a local folder). The two differ in how they return int8 and
 * numeric; both are normalised here, once: int8 → number (asserted safe), numeric → string.
 */
export type AnyDatabase = Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface DatabaseHandle {
  db: AnyDatabase;
  kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}

const INT8 = 20;
const NUMERIC = 1700;

export function parseInt8(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed)) throw new Error(`int8 value ${value} exceeds the safe integer range`);
  return parsed;
}

export interface DatabaseOptions {
  databaseUrl?: string;
  /** PGlite data folder; `memory://` for an in-memory database. */
  dataDir?: string;
  poolSize?: number;
}

export function createDatabase(options: DatabaseOptions): DatabaseHandle {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 10,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
          if (oid === INT8) return parseInt8;
          if (oid === NUMERIC) return (value: string) => value;
          return pg.types.getTypeParser(oid, format);
        }) as typeof pg.types.getTypeParser,
      },
    });
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) }); // eslint-disable-line @typescript-eslint/no-explicit-any
    return { db, kind: 'postgres', close: () => db.destroy() };
  }
  const dataDir = options.dataDir ?? 'memory://';
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true });
  const pglite = new PGlite(dataDir, {
    parsers: {
      [INT8]: (value: string) => parseInt8(value),
      [NUMERIC]: (value: string) => value,
    },
  });
  const db = new Kysely<any>({ dialect: new PGliteDialect({ pglite }) }); // eslint-disable-line @typescript-eslint/no-explicit-any
  return { db, kind: 'pglite', close: () => db.destroy() };
}
