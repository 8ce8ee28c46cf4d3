/** Proves the embedded PGlite database takes overlapping transactions safely and normalises int8/numeric like pg. */
import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createDatabase } from './database';

describe('PGlite database', () => {
  it('serialises overlapping transactions instead of interleaving them', async () => {
    const handle = createDatabase({ dataDir: 'memory://' });
    // A table of this test only, typed for it.
    const db = handle.db.withTables<{ counter: { id: number; n: number; amount: string } }>();
    await sql`create table counter (id int primary key, n bigint not null, amount numeric not null)`.execute(db);
    await sql`insert into counter values (1, 0, 0)`.execute(db);
    // Each transaction reads then writes: interleaving would lose increments.
    await Promise.all(
      Array.from({ length: 20 }, () =>
        db.transaction().execute(async (trx) => {
          const row = await trx.selectFrom('counter').select(['n']).where('id', '=', 1).executeTakeFirstOrThrow();
          await new Promise((r) => setTimeout(r, 1));
          await trx.updateTable('counter').set({ n: Number(row.n) + 1, amount: sql`amount + 0.1` }).where('id', '=', 1).execute();
        }),
      ),
    );
    const row = await db.selectFrom('counter').selectAll().executeTakeFirstOrThrow();
    expect(row.n).toBe(20);
    expect(row.amount).toBe('2.0');
    await handle.close();
  });
});
