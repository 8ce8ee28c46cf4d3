import { mkdirSync } from 'node:fs';
import { Kysely, PGliteDialect, PostgresDialect, type DatabaseConnection, type Dialect, type Driver, type TransactionSettings } from 'kysely';
import pg from 'pg';
import { enableCopy, markCopyCapable } from './copy';
import type { Database } from './schema';

/**
 * One database handle for every service: kysely on `pg` when DATABASE_URL is set, else on
 * PGlite (embedded Postgres in a local folder). The two differ in how they return int8 and
 * numeric; both are normalised here, once: int8 → number (asserted safe), numeric → string.
 */
export interface DatabaseHandle {
  db: Kysely<Database>;
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
          return pg.types.getTypeParser(oid, format) as (value: string) => unknown;
        }) as typeof pg.types.getTypeParser,
      },
    });
    // An idle pooled connection the server ends (restart, admin command) emits 'error' on the
    // pool; without a listener that would crash the process. The pool drops that client and the
    // next query opens a new one, so it is reported, not fatal.
    pool.on('error', (error) => console.warn(`postgres: idle connection closed by the server: ${error.message}`));
    // Every client understands the COPY marker of copy.ts (bulk inserts inside kysely transactions).
    pool.on('connect', (client) => {
      enableCopy(client);
      // A checked-out client whose server goes away between two queries of a transaction (an
      // immediate stop) emits 'error' on itself, where the pool does not listen: without this the
      // process crashed (the nemesis, issue 16). The transaction's next query fails and is retried.
      client.on('error', (error) => console.warn(`postgres: connection lost: ${error.message}`));
    });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    markCopyCapable(db);
    return { db, kind: 'postgres', close: () => db.destroy() };
  }
  const dataDir = options.dataDir ?? 'memory://';
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true });
  // PGlite (and its WebAssembly Postgres) is loaded when the first query opens it, so a service
  // on PostgreSQL never loads it (issue 16: idle RSS).
  const pglite = async () => {
    const { PGlite } = await import('@electric-sql/pglite');
    return new PGlite(dataDir, {
      parsers: {
        [INT8]: (value: string) => parseInt8(value),
        [NUMERIC]: (value: string) => value,
      },
    });
  };
  const db = new Kysely<Database>({ dialect: serialized(new PGliteDialect({ pglite })) });
  return { db, kind: 'pglite', close: () => db.destroy() };
}

/**
 * PGlite is one backend with one connection; kysely's PGlite driver hands that connection to
 * every caller, so two overlapping transactions would interleave (and their commits cross).
 * This wrapper makes the connection exclusive from acquire to release: queries and
 * transactions queue, as they would for a pool of size one.
 */
class SerializedDriver implements Driver {
  private locked = false;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly inner: Driver) {}

  init(): Promise<void> {
    return this.inner.init();
  }
  async acquireConnection(): Promise<DatabaseConnection> {
    while (this.locked) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.locked = true;
    try {
      return await this.inner.acquireConnection();
    } catch (error) {
      this.unlock();
      throw error;
    }
  }
  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.inner.beginTransaction(connection, settings);
  }
  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.commitTransaction(connection);
  }
  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.rollbackTransaction(connection);
  }
  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    try {
      await this.inner.releaseConnection(connection);
    } finally {
      this.unlock();
    }
  }
  destroy(): Promise<void> {
    return this.inner.destroy();
  }
  private unlock(): void {
    this.locked = false;
    this.waiters.shift()?.();
  }
}

function serialized(dialect: Dialect): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createDriver: () => new SerializedDriver(dialect.createDriver()),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
  };
}
