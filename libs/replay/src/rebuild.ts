import { sql, type Kysely } from 'kysely';
import { lockCheckpoint, quoteIdent, readCheckpoint, supportsCopy, type Database } from '@fastgpu/db';
import { lastSequence, type Bus, type Projection, type ProjectionContext, type ProjectionTransaction } from '@fastgpu/messaging';
import { diffTables, type TableDiff } from './diff';
import { ALIGN_READ_IDLE_TIMEOUT_MS, replayPipelined } from './pipeline';
import type { RangeReader } from './plain-reader';
import { decodeRawBatchUntilStop, READER_PULL_MESSAGES_MAX, readRangeOnThread } from './threaded-reader';

/**
 * Rebuilds any projection from sequence 1 into suffixed copies of its tables while the live one
 * keeps serving, then compares the two row by row and swaps them on request.
 *
 * - Tables: `CREATE TABLE <t>_rebuild (LIKE <t> INCLUDING ALL)` for every table the projection
 *   declares; the projection writes through `context.table(name)`.
 * - Checkpoint: `<name>@rebuild`, moved in the same transaction as the rebuilt rows, so a
 *   `kill -9` resumes where the last committed batch ended.
 * - Alignment: the live checkpoint row is locked (`FOR UPDATE`, which holds back the live
 *   runner's next commit, not its reads) and the rebuild applies the few events it still lacks
 *   up to exactly the live sequence, in that transaction; the diff and the swap run there too.
 * - Swap: in that one transaction, `<t>` → `<t>_previous`, `<t>_rebuild` → `<t>`, and the live
 *   checkpoint takes the rebuild's sequence; the live runner's next batch writes to the new tables.
 */
export interface ReplayableProjection {
  /** The live projection name: its checkpoint key. */
  name: string;
  /** Every table the projection writes, by the logical name it passes to `context.table`. */
  tables: readonly string[];
  /** Columns left out of the comparison (e.g. wall-clock columns), per table. */
  ignoreColumns?: Readonly<Record<string, readonly string[]>>;
  /** A projection instance for rebuilding (it runs with `live: false`). */
  create(deps: { bus: Bus; db: Kysely<Database> }): Projection;
  /**
   * Indexes the projection never reads while it replays (e.g. a wide primary key that only
   * queries use): left off the rebuild tables during the catch-up and built once at its end,
   * one sorted bulk build instead of a row-by-row update per write. Called per live index with
   * its shape, e.g. `UNIQUE USING btree (tenant_id, hour_start)` or `USING btree (node_id) WHERE
   * (end_ms IS NULL)`. A unique index built at the end checks the same uniqueness (the build
   * fails instead of the batch), and the compared and swapped tables carry every live index.
   */
  deferIndex?(table: string, shape: string): boolean;
}

interface IndexInfo {
  indexName: string;
  /** `[UNIQUE ]USING <method> (<columns>)[ WHERE …]`: the definition without its names. */
  shape: string;
  /** The constraint backing the index (primary key, unique), if any. */
  constraintName: string | null;
  constraintDefinition: string | null;
}

/** Indexes of a table with their shape (definition without index or table name). */
async function indexesOf(db: Kysely<Database> | ProjectionTransaction, table: string): Promise<IndexInfo[]> {
  const { rows } = await sql<{ index_name: string; definition: string; constraint_name: string | null; constraint_definition: string | null }>`
    SELECT i.indexrelid::regclass::text AS index_name, pg_get_indexdef(i.indexrelid) AS definition,
      c.conname AS constraint_name, pg_get_constraintdef(c.oid) AS constraint_definition
    FROM pg_index i
    LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')
    WHERE i.indrelid = to_regclass(${table})
    ORDER BY i.indexrelid`.execute(db);
  return rows.map((r) => {
    const match = /^CREATE (UNIQUE )?INDEX \S+ ON \S+ (USING .*)$/.exec(r.definition);
    if (!match) throw new Error(`unexpected index definition on ${table}: ${r.definition}`);
    return { indexName: r.index_name, shape: `${match[1] ?? ''}${match[2]!}`, constraintName: r.constraint_name, constraintDefinition: r.constraint_definition };
  });
}

export const REBUILD_SUFFIX = '_rebuild';
export const PREVIOUS_SUFFIX = '_previous';
export const rebuildCheckpointName = (name: string) => `${name}@rebuild`;

/**
 * Messages per rebuild batch (one transaction): larger than a live runner's, so an allocation's
 * events mostly meet in one batch and the per-transaction cost is shared by more events.
 */
export const REBUILD_BATCH_MESSAGES_MAX = 5000;
/** Events the alignment step may apply under the live lock; a larger gap is caught up first. */
export const ALIGN_GAP_EVENTS_MAX = 20_000;
/** Attempts at aligning before giving up (each waits for the slower side). */
export const ALIGN_ATTEMPTS_MAX = 20;

export interface RebuildProgress {
  projection: string;
  sequence: number;
  targetSequence: number;
  eventsApplied: number;
  /** Stream sequences processed per second over the last interval. */
  eventsPerSecond: number;
  etaSeconds: number | null;
  elapsedMs: number;
  status: string;
  error?: string;
}

export interface RebuildOptions {
  batchMax?: number;
  onProgress?(progress: RebuildProgress): void;
  /** How often progress is reported. */
  progressIntervalMs?: number;
  /** Fail the catch-up when the rebuild stays stalled this long (default: keep retrying). */
  stalledTimeoutMs?: number;
  /** How the log is read: the reader thread (default, for speed) or the plain reader (plain-reader.ts). */
  reader?: RangeReader;
}

export interface AlignedResult {
  /** The rebuild's sequence when compared (and the live checkpoint after a swap). */
  sequence: number;
  /** The live checkpoint when compared: equal to `sequence` unless the live projection stood still behind. */
  liveSequence: number;
  aligned: boolean;
  diffs: TableDiff[];
  equal: boolean;
  swapped: boolean;
}

export class Rebuild {
  readonly checkpointName: string;
  private readonly projection: Projection;
  /** This process created the rebuild tables empty (not a resumed rebuild): see ProjectionContext.ownsTables. */
  private ownsTables = false;

  constructor(
    private readonly bus: Bus,
    private readonly db: Kysely<Database>,
    private readonly replayable: ReplayableProjection,
    private readonly options: RebuildOptions = {},
  ) {
    this.checkpointName = rebuildCheckpointName(replayable.name);
    this.projection = replayable.create({ bus, db });
    if (this.projection.name !== replayable.name) throw new Error(`projection ${this.projection.name} registered as ${replayable.name}`);
  }

  private rebuildTable(table: string): string {
    return `${table}${REBUILD_SUFFIX}`;
  }

  private context(): ProjectionContext {
    return { live: false, table: <N extends string>(name: N) => `${name}${REBUILD_SUFFIX}` as N, ownsTables: this.ownsTables, bulkCopy: supportsCopy(this.db) };
  }

  /**
   * Creates fresh rebuild tables and checkpoint, or resumes the ones a previous run left (after a
   * kill -9 too). Returns the sequence the rebuild continues after.
   */
  async prepare(options: { restart?: boolean } = {}): Promise<{ resumedFrom: number; fresh: boolean }> {
    const existing = await readCheckpoint(this.db, this.checkpointName);
    if (existing && !options.restart) {
      for (const table of this.replayable.tables) {
        if (!(await this.tableExists(this.rebuildTable(table)))) throw new Error(`rebuild table ${this.rebuildTable(table)} is missing: run again with --restart`);
      }
      this.ownsTables = false;
      return { resumedFrom: Number(existing.last_sequence), fresh: false };
    }
    await this.db.transaction().execute(async (trx) => {
      for (const table of this.replayable.tables) {
        const rebuilt = quoteIdent(this.rebuildTable(table));
        await sql.raw(`DROP TABLE IF EXISTS ${rebuilt}`).execute(trx);
        await sql.raw(`CREATE TABLE ${rebuilt} (LIKE ${quoteIdent(table)} INCLUDING ALL)`).execute(trx);
        if (!this.replayable.deferIndex) continue;
        for (const index of await indexesOf(trx, this.rebuildTable(table))) {
          if (!this.replayable.deferIndex(table, index.shape)) continue;
          if (index.constraintName) await sql.raw(`ALTER TABLE ${rebuilt} DROP CONSTRAINT ${quoteIdent(index.constraintName)}`).execute(trx);
          else await sql.raw(`DROP INDEX ${quoteIdent(index.indexName)}`).execute(trx);
        }
      }
      await trx.deleteFrom('projection_checkpoints').where('projection', '=', this.checkpointName).execute();
      await trx.insertInto('projection_checkpoints').values({ projection: this.checkpointName, last_sequence: 0, status: 'rebuilding' }).execute();
    });
    this.ownsTables = true;
    return { resumedFrom: 0, fresh: true };
  }

  /**
   * Builds the indexes the catch-up deferred: every index of a live table that its rebuild table
   * lacks (by shape), so the rebuild is compared and swapped with the live table's indexes.
   * Idempotent; one transaction, so a kill -9 during a build leaves the rebuild as it was.
   */
  async buildDeferredIndexes(): Promise<number> {
    if (!this.replayable.deferIndex) return 0;
    let built = 0;
    await this.db.transaction().execute(async (trx) => {
      // A sorted bulk build in memory rather than on disk where the server allows it.
      await sql`SET LOCAL maintenance_work_mem TO '256MB'`.execute(trx);
      for (const table of this.replayable.tables) {
        const have = new Set((await indexesOf(trx, this.rebuildTable(table))).map((i) => i.shape));
        const rebuilt = quoteIdent(this.rebuildTable(table));
        for (const index of await indexesOf(trx, table)) {
          if (have.has(index.shape)) continue;
          if (index.constraintDefinition) await sql.raw(`ALTER TABLE ${rebuilt} ADD ${index.constraintDefinition}`).execute(trx);
          else await sql.raw(`CREATE ${index.shape.startsWith('UNIQUE ') ? 'UNIQUE INDEX' : 'INDEX'} ON ${rebuilt} ${index.shape.replace(/^UNIQUE /, '')}`).execute(trx);
          built++;
        }
      }
    });
    return built;
  }

  private async tableExists(table: string): Promise<boolean> {
    const { rows } = await sql<{ found: string | null }>`SELECT to_regclass(${table}) AS found`.execute(this.db);
    return rows[0]?.found !== null && rows[0]?.found !== undefined;
  }

  /**
   * Replays the stream into the rebuild tables until they reach the stream's last sequence as it
   * was when called (or `targetSequence`), reporting events/s and an ETA.
   */
  async catchUp(targetSequence?: number): Promise<number> {
    const target = targetSequence ?? (await lastSequence(this.bus, this.bus.topology.streams.events));
    const startedAt = Date.now();
    let sequence = Number((await readCheckpoint(this.db, this.checkpointName))?.last_sequence ?? 0);
    let eventsApplied = 0;
    let lastReport = { at: startedAt, sequence };
    let rate = 0;
    const report = (status: string, error?: string) => {
      const now = Date.now();
      if (now > lastReport.at) {
        const instant = ((sequence - lastReport.sequence) * 1000) / (now - lastReport.at);
        rate = rate === 0 ? instant : 0.5 * rate + 0.5 * instant;
      }
      lastReport = { at: now, sequence };
      const remaining = Math.max(0, target - sequence);
      this.options.onProgress?.({
        projection: this.replayable.name,
        sequence,
        targetSequence: target,
        eventsApplied,
        eventsPerSecond: Math.floor(rate),
        etaSeconds: remaining === 0 ? 0 : rate >= 1 ? Math.ceil(remaining / rate) : null,
        elapsedMs: now - startedAt,
        status,
        ...(error ? { error } : {}),
      });
    };
    if (sequence >= target) {
      await this.buildDeferredIndexes();
      report('caught-up');
      return sequence;
    }
    const intervalMs = this.options.progressIntervalMs ?? 1000;
    let stalledSince: number | undefined;
    let stalledError: Error | undefined;
    const timer = setInterval(() => report(stalledSince === undefined ? 'rebuilding' : 'stalled', stalledError?.message), intervalMs);
    try {
      sequence = await replayPipelined({
        bus: this.bus,
        db: this.db,
        projection: this.projection,
        checkpointName: this.checkpointName,
        context: this.context(),
        fromSequence: sequence + 1,
        toSequence: target,
        batchMax: this.options.batchMax ?? REBUILD_BATCH_MESSAGES_MAX,
        ...(this.options.reader ? { reader: this.options.reader } : {}),
        onApplied: (last, applied) => {
          sequence = last;
          eventsApplied += applied;
          stalledSince = undefined;
          stalledError = undefined;
        },
        onFailed: (error) => {
          stalledSince ??= Date.now();
          stalledError = error;
          if (this.options.stalledTimeoutMs !== undefined && Date.now() - stalledSince > this.options.stalledTimeoutMs) {
            throw new Error(`rebuild of ${this.replayable.name} stalled after sequence ${sequence}: ${error.message}`);
          }
        },
      });
    } finally {
      clearInterval(timer);
    }
    report('building-indexes');
    await this.buildDeferredIndexes();
    report('caught-up');
    return sequence;
  }

  /**
   * Brings the rebuild to exactly the live sequence under the live checkpoint lock, compares
   * every table row by row and, when asked, swaps them, all in one transaction.
   */
  async alignAndCompare(options: { swap?: boolean; waitIntervalMs?: number } = {}): Promise<AlignedResult> {
    let liveBefore: number | undefined;
    // A rebuild resumed with --diff-only may not have them yet.
    await this.buildDeferredIndexes();
    for (let attempt = 1; attempt <= ALIGN_ATTEMPTS_MAX; attempt++) {
      const live = Number((await readCheckpoint(this.db, this.replayable.name))?.last_sequence ?? 0);
      const rebuilt = Number((await readCheckpoint(this.db, this.checkpointName))?.last_sequence ?? 0);
      if (live - rebuilt > ALIGN_GAP_EVENTS_MAX) {
        await this.catchUp(live);
        continue;
      }
      liveBefore ??= live;
      // The live projection stayed behind the rebuild the whole time (stopped, or stalled on the
      // event the rebuild was made to get past): compare as things are; a swap moves the live
      // checkpoint forward to the rebuild's.
      const standingStill = attempt === ALIGN_ATTEMPTS_MAX && live === liveBefore;
      const result = await this.db.transaction().execute(async (trx) => {
        const liveLocked = await lockCheckpoint(trx, this.replayable.name);
        const rebuiltLocked = await lockCheckpoint(trx, this.checkpointName);
        if (rebuiltLocked > liveLocked && !standingStill) return undefined;
        if (rebuiltLocked < liveLocked) await this.applyRange(trx, rebuiltLocked + 1, liveLocked);
        const sequence = Math.max(liveLocked, rebuiltLocked);
        await trx.updateTable('projection_checkpoints').set({ last_sequence: sequence, status: 'rebuilding', updated_at: sql`now()` }).where('projection', '=', this.checkpointName).execute();
        const diffs = await diffTables(trx, this.replayable.tables.map((table) => ({ live: table, rebuilt: this.rebuildTable(table), ignoreColumns: this.replayable.ignoreColumns?.[table] ?? [] })));
        const equal = liveLocked === sequence && diffs.every((d) => d.onlyLive === 0 && d.onlyRebuilt === 0);
        if (options.swap) await this.swapInTransaction(trx, sequence);
        return { sequence, liveSequence: liveLocked, aligned: liveLocked === sequence, diffs, equal, swapped: options.swap === true };
      });
      if (result) return result;
      await new Promise((r) => setTimeout(r, options.waitIntervalMs ?? 500));
    }
    throw new Error(`could not align ${this.replayable.name} with its rebuild after ${ALIGN_ATTEMPTS_MAX} attempts`);
  }

  private async swapInTransaction(trx: ProjectionTransaction, sequence: number): Promise<void> {
    // A projection may relax durability for its rebuild batches; the swap itself must be durable.
    await sql`SET LOCAL synchronous_commit TO on`.execute(trx);
    for (const table of this.replayable.tables) {
      const previous = `${table}${PREVIOUS_SUFFIX}`;
      await sql.raw(`DROP TABLE IF EXISTS ${quoteIdent(previous)}`).execute(trx);
      await sql.raw(`ALTER TABLE ${quoteIdent(table)} RENAME TO ${quoteIdent(previous)}`).execute(trx);
      await sql.raw(`ALTER TABLE ${quoteIdent(this.rebuildTable(table))} RENAME TO ${quoteIdent(table)}`).execute(trx);
    }
    await trx
      .updateTable('projection_checkpoints')
      .set({ last_sequence: sequence, status: 'running', error: null, stalled_sequence: null, updated_at: sql`now()` })
      .where('projection', '=', this.replayable.name)
      .execute();
    await trx.deleteFrom('projection_checkpoints').where('projection', '=', this.checkpointName).execute();
  }

  /** Reads [fromSequence, toSequence] of the stream and applies it to the rebuild tables in `trx`. */
  private async applyRange(trx: ProjectionTransaction, fromSequence: number, toSequence: number): Promise<void> {
    await (this.options.reader ?? readRangeOnThread)({
      bus: this.bus,
      fromSequence,
      toSequence,
      batchMax: this.options.batchMax ?? REBUILD_BATCH_MESSAGES_MAX,
      pullMax: READER_PULL_MESSAGES_MAX,
      wanted: this.projection.types,
      idleTimeoutMs: ALIGN_READ_IDLE_TIMEOUT_MS,
      onBatch: async (batch, release) => {
        const { events, stop } = await decodeRawBatchUntilStop(batch, this.projection.types, this.projection.stopsOnUndecodable === true);
        release();
        if (stop) throw stop;
        try {
          if (events.length) await this.projection.apply(trx, events, this.context());
        } catch (error) {
          // Inside the live lock's one transaction: no event-by-event commit to single out the culprit, so the range is named.
          throw new Error(`applying sequences ${events[0]!.sequence}..${batch.lastSequence} to the rebuild: ${(error as Error).message}`);
        }
      },
    });
  }

  /** Drops the rebuild tables and checkpoint (abandon a rebuild). */
  async discard(): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (const table of this.replayable.tables) await sql.raw(`DROP TABLE IF EXISTS ${quoteIdent(this.rebuildTable(table))}`).execute(trx);
      await trx.deleteFrom('projection_checkpoints').where('projection', '=', this.checkpointName).execute();
    });
  }
}
