import { sql } from 'kysely';
import type { ProjectionTransaction } from '@fastgpu/messaging';

/** Rows shown per side and table when tables differ. */
export const DIFF_SAMPLE_ROWS_MAX = 5;

export interface TablePair {
  live: string;
  rebuilt: string;
  ignoreColumns: readonly string[];
}

export interface TableDiff {
  table: string;
  liveRows: number;
  rebuiltRows: number;
  /** Rows (with multiplicity) in the live table and not in the rebuild, and the reverse. */
  onlyLive: number;
  onlyRebuilt: number;
  samplesOnlyLive: unknown[];
  samplesOnlyRebuilt: unknown[];
}

async function columnsOf(trx: ProjectionTransaction, table: string): Promise<string[]> {
  const { rows } = await sql<{ column_name: string }>`
    SELECT column_name FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = ${table}
    ORDER BY ordinal_position`.execute(trx);
  return rows.map((r) => r.column_name);
}

/**
 * Compares tables row by row as multisets (`EXCEPT ALL` both ways) over the live table's
 * columns, less the ignored ones, so it needs no primary key and sees duplicated rows too.
 */
export async function diffTables(trx: ProjectionTransaction, pairs: readonly TablePair[]): Promise<TableDiff[]> {
  const diffs: TableDiff[] = [];
  for (const pair of pairs) {
    const liveColumns = await columnsOf(trx, pair.live);
    const rebuiltColumns = new Set(await columnsOf(trx, pair.rebuilt));
    if (liveColumns.length === 0) throw new Error(`table ${pair.live} not found`);
    const compared = liveColumns.filter((c) => !pair.ignoreColumns.includes(c));
    const missing = compared.filter((c) => !rebuiltColumns.has(c));
    if (missing.length) throw new Error(`${pair.rebuilt} lacks columns ${missing.join(', ')} of ${pair.live}`);
    const list = sql.join(compared.map((c) => sql.ref(c)));
    const live = sql.table(pair.live);
    const rebuilt = sql.table(pair.rebuilt);
    const count = async (query: ReturnType<typeof sql>) => Number((await sql<{ n: number }>`SELECT count(*)::int8 AS n FROM (${query}) AS d`.execute(trx)).rows[0]!.n);
    const samples = async (query: ReturnType<typeof sql>) =>
      (await sql<{ row: unknown }>`SELECT row_to_json(d) AS row FROM (${query}) AS d LIMIT ${DIFF_SAMPLE_ROWS_MAX}`.execute(trx)).rows.map((r) => r.row);
    const onlyLiveQuery = sql`SELECT ${list} FROM ${live} EXCEPT ALL SELECT ${list} FROM ${rebuilt}`;
    const onlyRebuiltQuery = sql`SELECT ${list} FROM ${rebuilt} EXCEPT ALL SELECT ${list} FROM ${live}`;
    const onlyLive = await count(onlyLiveQuery);
    const onlyRebuilt = await count(onlyRebuiltQuery);
    diffs.push({
      table: pair.live,
      liveRows: await count(sql`SELECT 1 FROM ${live}`),
      rebuiltRows: await count(sql`SELECT 1 FROM ${rebuilt}`),
      onlyLive,
      onlyRebuilt,
      samplesOnlyLive: onlyLive ? await samples(onlyLiveQuery) : [],
      samplesOnlyRebuilt: onlyRebuilt ? await samples(onlyRebuiltQuery) : [],
    });
  }
  return diffs;
}

/** One line per table for a terminal. */
export function formatDiff(diffs: readonly TableDiff[]): string {
  const lines = diffs.map((d) => {
    const verdict = d.onlyLive === 0 && d.onlyRebuilt === 0 ? 'identical' : `DIFFERENT: ${d.onlyLive} only live, ${d.onlyRebuilt} only rebuilt`;
    return `  ${d.table}: live ${d.liveRows} rows, rebuilt ${d.rebuiltRows} rows, ${verdict}`;
  });
  for (const d of diffs) {
    for (const row of d.samplesOnlyLive) lines.push(`    only live    ${d.table}: ${JSON.stringify(row)}`);
    for (const row of d.samplesOnlyRebuilt) lines.push(`    only rebuilt ${d.table}: ${JSON.stringify(row)}`);
  }
  return lines.join('\n');
}
