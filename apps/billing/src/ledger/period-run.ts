import { sql, type RawBuilder } from 'kysely';
import { periodBounds, taxRatesInForce, type PriceVersion, type RatePrice, type RatedPart } from '@fastgpu/money';
import type { InvoiceDocument, InvoiceInputs, TenantInfo } from '../invoices/invoice-document';
import type { BillingStore } from './billing.store';
import type { BillingTable, Db, InvoiceRow, PieceRow, SlaCreditRow } from './billing-tables';
import { assembleInputs, type InputOptions, type RawInvoiceData } from './invoice-inputs';

/** Fields of one line group in a period run's aggregate text, in order. */
export const AGGREGATE_FIELDS = ['price_book_id', 'version', 'gpu_model', 'capacity_type', 'service_period', 'billed_gpu_ms', 'interrupted_gpu_ms', 'pieces'] as const;
const FIELD_SEPARATOR = '\u001f';
const GROUP_SEPARATOR = '\u001e';

/** Invoices per chunk of a period run (four chunks for 10,000 invoices: Postgres sums one while the run rates another). */
export const RUN_CHUNK_INVOICES = 2500;
/** Chunks loaded ahead of the one being rated (bench, 10,000 invoices: 1 → 775 ms, 2 → 625 ms, 3 → 660 ms). */
export const RUN_CHUNKS_IN_FLIGHT = 2;
/** Work memory of a period run's parts aggregate (sorts of its groups stay in memory). */
export const PART_AGGREGATE_WORK_MEM = '64MB';
/** Planner cost of a random page read for the parts aggregate: SSD storage, not spinning disks. */
export const PART_AGGREGATE_RANDOM_PAGE_COST = 1.1;

/**
 * A period run: the inputs of many draft invoices at once (a period's export, finalize-due),
 * read with a fixed number of queries per chunk of invoices instead of several per invoice, and
 * rated from parts summed in SQL when that is exact. The fast path beside `BillingStore.inputs`,
 * which reads one invoice; both end in `assembleInputs`, and the ledger tests and the period-run
 * benchmark compare their documents.
 */
export class PeriodRun {
  constructor(private readonly store: BillingStore) {}

  private get db(): Db {
    return this.store.db;
  }

  private table<N extends BillingTable>(name: N): N {
    return this.store.table(name);
  }

  /**
   * Billed GPU-ms of rated parts summed per line key (price book, version, GPU model, capacity type,
   * service period), the interrupted part of each sum (it is billed and credited back) and the
   * number of pieces (every piece has a part 0), per invoice: one text per invoice, its groups
   * separated by U+001E and their fields by U+001F (`AGGREGATE_FIELDS`), so the run parses 10,000
   * rows rather than every group's columns.
   *
   * Postgres reads the parts in line order through `billing_rated_parts_line` (a parallel
   * index-only scan into a sorted aggregate). Left to itself it builds a hash table of every group
   * (about twice as slow on a period, bench: 1M rows), or, once the index has grown by inserts in
   * arrival order, sorts a sequential scan (three times as slow), because the default
   * `random_page_cost` (4) prices index pages as spinning-disk seeks; 1.1 is the usual value for
   * SSDs. The settings are scoped to this transaction.
   */
  private async partAggregates(invoiceFilter: RawBuilder<unknown>, range?: { first: string; last: string }): Promise<Map<string, string>> {
    const run = async (db: Db) => {
      const parts = sql.table(this.table('billing_rated_parts'));
      const result = await sql<{ invoice_id: string; groups: string }>`
        SELECT invoice_id, string_agg(concat_ws(chr(31), price_book_id, version, gpu_model, capacity_type, service_period, billed_gpu_ms, interrupted_gpu_ms, pieces), chr(30)) AS groups
        FROM (
          SELECT invoice_id, service_period, gpu_model, capacity_type, coalesce(price_book_id, '') AS price_book_id, coalesce(version::text, '') AS version,
            sum(billed_gpu_ms) AS billed_gpu_ms, coalesce(sum(billed_gpu_ms) FILTER (WHERE interrupted), 0) AS interrupted_gpu_ms, count(*) FILTER (WHERE part = 0) AS pieces
          FROM ${parts} WHERE invoice_id IN (${invoiceFilter}) ${range ? sql`AND invoice_id >= ${range.first} AND invoice_id <= ${range.last}` : sql``}
          GROUP BY invoice_id, service_period, gpu_model, capacity_type, price_book_id, version
        ) AS line_groups
        GROUP BY invoice_id`.execute(db);
      return result.rows;
    };
    const rows = this.db.isTransaction
      ? await run(this.db)
      : await this.db.transaction().execute(async (trx) => {
          await sql.raw(`SET LOCAL work_mem = '${PART_AGGREGATE_WORK_MEM}'`).execute(trx);
          await sql.raw('SET LOCAL enable_hashagg = off').execute(trx);
          await sql.raw(`SET LOCAL random_page_cost = ${PART_AGGREGATE_RANDOM_PAGE_COST}`).execute(trx);
          return run(trx);
        });
    return new Map(rows.map((r) => [r.invoice_id, r.groups]));
  }

  /**
   * A period run rates an invoice from its parts summed in SQL when that is exact: every part has a
   * price and no price is tiered (tiers place parts in time order, so those invoices, like any with
   * usage lacking a price, are rated from their pieces). Returns undefined for those, and for any
   * group whose text does not split into exactly its fields.
   */
  private partsFromAggregates(row: InvoiceRow, groupsText: string | undefined, prices: ReadonlyMap<string, { version: PriceVersion; price: RatePrice }>): { pieces: PieceRow[]; preRated: RatedPart[]; pieceCount: number } | undefined {
    const preRated: RatedPart[] = [];
    let pieceCount = 0;
    if (groupsText === undefined) return { pieces: [], preRated, pieceCount };
    for (const group of groupsText.split(GROUP_SEPARATOR)) {
      const fields = group.split(FIELD_SEPARATOR);
      if (fields.length !== AGGREGATE_FIELDS.length) return undefined;
      const [priceBookId, version, gpuModel, capacityType, servicePeriod, billed, interrupted, pieces] = fields as [string, string, string, string, string, string, string, string];
      const found = prices.get(`${priceBookId}${FIELD_SEPARATOR}${version}${FIELD_SEPARATOR}${gpuModel}${FIELD_SEPARATOR}${capacityType}`);
      if (!found || found.price.tiers) return undefined;
      pieceCount += Number(pieces);
      const billedGpuMs = Number(billed);
      const interruptedGpuMs = Number(interrupted);
      const adjustment = servicePeriod !== row.period;
      const startMs = found.version.effectiveFromMs;
      // Interrupted GPU time is billed like the rest and credited back by its own line.
      if (billedGpuMs !== interruptedGpuMs) {
        preRated.push({ usageId: '', servicePeriod, gpuModel, capacityType, interrupted: false, adjustment, startMs, billedGpuMs: billedGpuMs - interruptedGpuMs, version: found.version, price: found.price });
      }
      if (interruptedGpuMs !== 0) {
        preRated.push({ usageId: '', servicePeriod, gpuModel, capacityType, interrupted: true, adjustment, startMs, billedGpuMs: interruptedGpuMs, version: found.version, price: found.price });
      }
    }
    return { pieces: [], preRated, pieceCount };
  }

  /** Rows in the database's order of their invoice ids (its collation, as the line index is ordered). */
  private async inIdOrder(rows: readonly InvoiceRow[]): Promise<InvoiceRow[]> {
    const byId = new Map(rows.map((r) => [r.invoice_id, r]));
    const ordered = await sql<{ id: string }>`SELECT id FROM unnest(${[...byId.keys()]}::text[]) AS ids(id) ORDER BY id`.execute(this.db);
    return ordered.rows.map((r) => byId.get(r.id)!);
  }

  /** What a chunk of a period run needs besides usage: tenants, credits, finalized documents, tax rates, grants. */
  private async chunkData(chunk: readonly InvoiceRow[], options: Omit<InputOptions, 'finalization'>) {
    const invoiceIds = chunk.map((r) => r.invoice_id);
    const tenantIds = [...new Set(chunk.map((r) => r.tenant_id))];
    const [tenantRows, creditRows, finalizedRows, settings] = await Promise.all([
      this.db.selectFrom(this.table('billing_tenants')).select(['tenant_id', 'name', 'currency', 'billing_time_zone']).where(sql<boolean>`tenant_id = ANY(${tenantIds}::text[])`).execute(),
      this.db.selectFrom(this.table('billing_sla_credits')).selectAll().where(sql<boolean>`invoice_id = ANY(${invoiceIds}::text[])`).where('assigned_sequence', '<=', options.cutoff).orderBy('sequence').execute(),
      this.db
        .selectFrom(this.table('billing_invoices'))
        .select(['tenant_id', 'document'])
        .where(sql<boolean>`tenant_id = ANY(${tenantIds}::text[])`)
        .where('status', '=', 'finalized')
        .where('finalized_sequence', '<=', options.cutoff)
        .where((eb) => eb.or([eb('replaced_sequence', 'is', null), eb('replaced_sequence', '>', options.cutoff)]))
        .orderBy('finalized_sequence')
        .execute(),
      this.store.tenantSettings(tenantIds, options.cutoff),
    ]);
    const tenants = new Map<string, TenantInfo>();
    for (const t of tenantRows) tenants.set(t.tenant_id, { tenantId: t.tenant_id, name: t.name, currency: t.currency, billingTimeZone: t.billing_time_zone });
    return {
      tenants,
      credits: groupBy(creditRows as SlaCreditRow[], (c) => c.invoice_id!),
      finalized: groupBy(finalizedRows, (r) => r.tenant_id),
      taxRateSets: settings.taxRateSets,
      grants: settings.grants,
      profiles: settings.profiles,
    };
  }

  /**
   * The same inputs for many draft invoices at once (a period run): a fixed number of queries per
   * chunk of invoices instead of several per invoice. Many invoices (more than a chunk) are taken
   * in the database's order of their ids, so a chunk's parts are one range of the line index:
   * Postgres sums the next chunk while this one is rated. Yields the inputs of one chunk at a time,
   * in that order.
   */
  async *inputsForMany(rows: readonly InvoiceRow[], options: Omit<InputOptions, 'finalization'>, chunkInvoices = RUN_CHUNK_INVOICES): AsyncGenerator<InvoiceInputs[]> {
    const priceVersions = await this.store.priceVersions(options.cutoff);
    const prices = new Map<string, { version: PriceVersion; price: RatePrice }>();
    for (const version of priceVersions) {
      for (const price of version.prices) prices.set([version.priceBookId, version.version, price.gpuModel, price.capacityType].join(FIELD_SEPARATOR), { version, price });
    }
    const bulk = rows.length > chunkInvoices;
    const ordered = bulk ? await this.inIdOrder(rows) : rows;
    const chunks: InvoiceRow[][] = [];
    for (let start = 0; start < ordered.length; start += chunkInvoices) chunks.push(ordered.slice(start, start + chunkInvoices));
    const periods = [...new Set(rows.map((r) => r.period))];
    const drafts = sql`SELECT invoice_id FROM ${sql.table(this.table('billing_invoices'))} WHERE period IN (${sql.join(periods)}) AND status = 'draft'`;
    const load = (index: number) => {
      if (index >= chunks.length) return undefined;
      const chunk = chunks[index]!;
      const loading = Promise.all([
        bulk ? this.partAggregates(drafts, { first: chunk[0]!.invoice_id, last: chunk[chunk.length - 1]!.invoice_id }) : this.partAggregates(sql.join(chunk.map((r) => r.invoice_id))),
        this.chunkData(chunk, options),
      ]);
      // Awaited below; marking it handled keeps a failure from being reported twice.
      void loading.catch(() => undefined);
      return loading;
    };
    // Chunks in flight: Postgres sums the next ranges while this chunk is rated.
    const pending = Array.from({ length: RUN_CHUNKS_IN_FLIGHT }, (_, index) => load(index));
    for (const [index, chunk] of chunks.entries()) {
      const [aggregates, data] = (await pending.shift())!;
      pending.push(load(index + RUN_CHUNKS_IN_FLIGHT));
      const batch: InvoiceInputs[] = [];
      for (const row of chunk) {
        const tenant = data.tenants.get(row.tenant_id);
        if (!tenant) throw new Error(`invoice ${row.invoice_id}: tenant ${row.tenant_id} is unknown to billing`);
        const usage = this.partsFromAggregates(row, aggregates.get(row.invoice_id), prices) ?? { pieces: await this.store.pieces(row.invoice_id, options.cutoff) };
        const raw: RawInvoiceData = {
          row,
          tenant,
          ...usage,
          finalized: (data.finalized.get(row.tenant_id) ?? []).map((r) => JSON.parse(r.document as string) as InvoiceDocument),
          slaCredits: data.credits.get(row.invoice_id) ?? [],
          priceVersions,
          taxRates: taxRatesInForce(data.taxRateSets.get(row.tenant_id) ?? [], { periodEndMs: periodBounds(row.period, tenant.billingTimeZone).endMs, atMs: options.atMs }),
          grants: await this.store.grantsOf(row.tenant_id, tenant.currency, options.cutoff, data.grants.get(row.tenant_id) ?? []),
          replaces: await this.store.replaced(row),
          buyer: data.profiles.get(row.tenant_id),
        };
        batch.push(assembleInputs(raw, { ...options, finalization: null }));
      }
      yield batch;
    }
  }
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    let list = groups.get(k);
    if (!list) groups.set(k, (list = []));
    list.push(item);
  }
  return groups;
}
