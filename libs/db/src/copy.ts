import { sql, type Kysely } from 'kysely';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/**
 * Bulk inserts with `COPY … FROM STDIN` inside a kysely transaction. Kysely only sends text
 * queries, so a COPY travels as a marked statement that the pool's clients recognise and run
 * through pg-copy-streams on the same connection (same transaction, same checkpoint commit).
 * Only the `pg` driver has it (PGlite does not): callers check `supportsCopy(db)` and keep their
 * INSERT path otherwise. COPY parses rows several times cheaper than `INSERT … SELECT unnest(…)`
 * and writes them with multi-row inserts, which is what a rebuild of millions of rows spends on.
 */

const MARKER = '/*fastgpu:copy*/';

/** Kysely instances whose pool can COPY (see createDatabase). */
const copyCapable = new WeakSet<object>();

export function markCopyCapable(db: Kysely<unknown> | object): void {
  copyCapable.add(db);
}

/** True when `db` (a database handle's Kysely, not a transaction) runs on pg and can COPY. */
export function supportsCopy(db: object): boolean {
  return copyCapable.has(db);
}

type QueryFn = pg.PoolClient['query'];
const wrapped = new WeakSet<pg.PoolClient>();

/**
 * Teaches a pool client the COPY marker: `/*fastgpu:copy*\/COPY "t" ("a","b") FROM STDIN` with
 * the payload (COPY text format) as its one parameter. Other queries pass through untouched.
 */
export function enableCopy(client: pg.PoolClient): void {
  if (wrapped.has(client)) return;
  wrapped.add(client);
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  client.query = function (this: pg.PoolClient, ...args: unknown[]) {
    const [text, values] = args as [unknown, unknown[] | undefined];
    if (typeof text === 'string' && text.startsWith(MARKER)) return runCopy(client, text.slice(MARKER.length).replace(/\s*\$1$/, ''), String(values?.[0] ?? ''));
    return query(...args);
  } as QueryFn;
}

async function runCopy(client: pg.PoolClient, statement: string, payload: string): Promise<{ command: string; rowCount: number; rows: never[] }> {
  const stream = client.query(copyFrom(statement));
  await new Promise<void>((resolve, reject) => {
    stream.on('error', reject);
    stream.on('finish', resolve);
    stream.end(payload);
  });
  return { command: 'COPY', rowCount: stream.rowCount, rows: [] };
}

/** A text value in COPY text format: backslash, tab, newline and carriage return escaped. */
export function copyText(value: string): string {
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : value;
}

/** COPY text format's NULL. */
export const COPY_NULL = '\\N';

/** A table or column name as a quoted identifier; anything but a plain name is refused. */
export function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/i.test(name)) throw new Error(`invalid identifier ${name}`);
  return `"${name}"`;
}

/**
 * Runs `COPY table (columns) FROM STDIN` in `trx` with `payload`: rows in COPY text format, one
 * per line ending in "\n", columns separated by tabs (build values with `copyText` / `COPY_NULL`).
 * Only on a database for which `supportsCopy` is true.
 */
export async function copyRows(trx: Kysely<unknown> | object, table: string, columns: readonly string[], payload: string): Promise<void> {
  if (payload.length === 0) return;
  const statement = `${MARKER}COPY ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) FROM STDIN `;
  // The payload rides as the statement's one parameter ($1, stripped again by the client).
  await sql`${sql.raw(statement)}${payload}`.execute(trx as Kysely<unknown>);
}
