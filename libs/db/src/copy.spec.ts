/**
 * Proves COPY inside kysely transactions on real Postgres: rows arrive exactly as written (tabs,
 * newlines, backslashes, NULL, the literal text "\N", unicode, timestamps), in the transaction
 * (a rollback leaves nothing), a bad row fails the transaction with Postgres's reason and the
 * connection stays usable; PGlite handles are not COPY-capable, so callers keep their INSERT path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { COPY_NULL, copyRows, copyText, supportsCopy } from './copy';
import { createDatabase } from './database';

let env: TestEnvironment;

beforeAll(async () => {
  env = await createTestEnvironment();
  await sql`CREATE TABLE copy_probe (id int8 PRIMARY KEY, label text, at timestamptz, ok boolean)`.execute(env.database.db);
});

afterAll(async () => {
  await env?.cleanup();
});

/** The test's own table, typed for its reads. */
const probe = () => env.database.db.withTables<{ copy_probe: { id: number; label: string | null; at: Date | null; ok: boolean | null } }>();

const line = (...values: string[]) => `${values.join('\t')}\n`;

describe('copyRows', () => {
  it('writes every value exactly, inside the transaction', async () => {
    const db = env.database.db;
    expect(supportsCopy(db)).toBe(true);
    const labels = ['plain', 'tab\there', 'new\nline', 'back\\slash', '\\N', 'crlf\r\n', 'ünïcødé ☃', ''];
    const payload = labels.map((label, i) => line(String(i + 1), copyText(label), '2026-03-01T01:00:00.000Z', i % 2 ? 't' : 'f')).join('') + line('100', COPY_NULL, COPY_NULL, COPY_NULL);
    await db.transaction().execute(async (trx) => {
      await copyRows(trx, 'copy_probe', ['id', 'label', 'at', 'ok'], payload);
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int8 AS n FROM copy_probe`.execute(trx);
      expect(rows[0]!.n).toBe(labels.length + 1);
    });
    const rows = await probe().selectFrom('copy_probe').selectAll().orderBy('id').execute();
    expect(rows.map((r) => r.label)).toEqual([...labels, null]);
    expect(rows[0]!.at).toEqual(new Date('2026-03-01T01:00:00.000Z'));
    expect(rows.map((r) => r.ok)).toEqual([false, true, false, true, false, true, false, true, null]);
  });

  it('is rolled back with its transaction, and a bad row fails it with the reason', async () => {
    const db = env.database.db;
    await expect(
      db.transaction().execute(async (trx) => {
        await copyRows(trx, 'copy_probe', ['id', 'label'], line('200', 'kept until the rollback'));
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await expect(db.transaction().execute((trx) => copyRows(trx, 'copy_probe', ['id', 'label'], line('not-a-number', 'x')))).rejects.toThrow(/invalid input syntax for type bigint/);
    await expect(db.transaction().execute((trx) => copyRows(trx, 'copy_probe', ['id', 'label'], line('1', 'duplicate key')))).rejects.toThrow(/duplicate key/);
    const ids = (await probe().selectFrom('copy_probe').select('id').execute()).map((r) => Number(r.id));
    expect(ids).not.toContain(200);
    // The pool's connections still answer ordinary queries after the failed COPYs.
    const { rows } = await sql<{ one: number }>`SELECT 1 AS one`.execute(db);
    expect(rows[0]!.one).toBe(1);
  });

  it('is not offered on PGlite', async () => {
    const handle = createDatabase({ dataDir: 'memory://' });
    expect(supportsCopy(handle.db)).toBe(false);
    await handle.close();
  });
});
