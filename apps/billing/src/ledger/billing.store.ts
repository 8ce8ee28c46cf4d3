import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import { money, periodBounds, periodIndex, sumMoney, scopeKey, taxRatesInForce, type TaxRateSet, type PrepaidGrant, type RatedPart, type PriceTier, type PriceVersion, type RatePrice, type TaxRate, type UsagePiece } from '@fastgpu/money';
import { INCREMENT_MS_DEFAULT, MINIMUM_MS_DEFAULT, TIER_MODE_DEFAULT, type TierMode } from '@fastgpu/contracts';
import { buyerProfileOf, type AdjustmentReference, type BuyerProfile, type CarriedCredit, type InvoiceDocument, type InvoiceInputs, type SlaCreditInput, type TenantInfo } from '../invoices/invoice-document';
import type { OpenAllocation } from './accrual';

/**
 * Reads and writes of billing's tables, always through `table(name)`, so that a rebuild runs the
 * same code into fresh suffixed tables, finance actions included (they are folded from their
 * catalogue events like everything else).
 */
export const BILLING_TABLES = [
  'billing_tenants',
  'billing_price_books',
  'billing_usage',
  'billing_usage_pieces',
  'billing_sla_credits',
  'billing_invoices',
  'billing_review_queue',
  'billing_grant_usage',
  'billing_rated_parts',
  'billing_finance_actions',
  'billing_open_allocations',
  'billing_accruals',
  'billing_deleted_invoices',
  'billing_audit',
] as const;
export type BillingTable = (typeof BILLING_TABLES)[number];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Db = Kysely<any> | Transaction<any>;

export interface InvoiceRow {
  invoice_id: string;
  tenant_id: string;
  period: string;
  status: 'draft' | 'finalized';
  issuer: string | null;
  number: string | null;
  number_sequence: number | null;
  cutoff_sequence: number | null;
  finalized_sequence: number | null;
  finalized_event_id: string | null;
  finalized_at: string | null;
  price_book_version: number | null;
  sha256: string | null;
  document: string | null;
  total: string | null;
  actor: string | null;
  reason: string | null;
  /** A reissue's replacement: the void invoice it replaces. */
  replaces_invoice_id?: string | null;
  /** A reissued invoice: its replacement, and the sequence of the reissue. */
  replaced_by_invoice_id?: string | null;
  replaced_sequence?: number | null;
}

export interface PieceRow {
  event_id: string;
  piece: number;
  usage_id: string;
  tenant_id: string;
  service_period: string;
  invoice_id: string | null;
  gpu_model: string;
  capacity_type: string;
  gpus: number;
  start_ms: number;
  end_ms: number;
  allocation_start_ms: number;
  allocation_end_ms: number;
  interrupted: boolean;
  sequence: number;
  assigned_sequence: number;
}

/** Largest sequence a filter can take: "everything applied so far". */
export const SEQUENCE_MAX = Number.MAX_SAFE_INTEGER;

function parsePrices(raw: unknown): RatePrice[] {
  const list = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Array<Record<string, unknown>>;
  return list.map((p) => ({
    gpuModel: String(p.gpuModel),
    capacityType: String(p.capacityType),
    pricePerGpuHour: String(p.pricePerGpuHour),
    incrementMs: Number(p.incrementMs ?? INCREMENT_MS_DEFAULT),
    minimumMs: Number(p.minimumMs ?? MINIMUM_MS_DEFAULT),
    ...(Array.isArray(p.tiers) && p.tiers.length ? { tiers: p.tiers as PriceTier[], tierMode: (p.tierMode as TierMode | undefined) ?? TIER_MODE_DEFAULT } : {}),
  }));
}

interface GrantPayload {
  grantId: string;
  amount: string;
  currency: string;
  priority: number;
  expiresAt: string | null;
}

/** A CreditGranted as recorded: its payload and when it was granted. */
interface GrantRow {
  payload: GrantPayload;
  atMs: number;
}

/** What finance recorded for tenants up to a cutoff (see `BillingStore.tenantSettings`). */
export interface TenantSettings {
  taxRateSets: Map<string, TaxRateSet[]>;
  profiles: Map<string, BuyerProfile>;
  grants: Map<string, GrantRow[]>;
}

/** What the ledger remembers within one batch (see BillingStore). */
export interface StoreMemo {
  tenants: Map<string, TenantInfo | undefined>;
  /** Every price version applied so far, with its stream sequence; unset until read, and when one is added. */
  priceVersions?: Array<{ sequence: number; version: PriceVersion }>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function priceVersionOf(r: Record<string, any>): PriceVersion {
  return { priceBookId: r.price_book_id, version: r.version, currency: r.currency, effectiveFromMs: r.effective_from_ms, prices: parsePrices(r.prices) };
}

export class BillingStore {
  /**
   * @param memo what a reader that knows when it changes may remember between reads (the ledger,
   * within one batch: a tenant row is only ever inserted, by its TenantCreated; a price version only
   * by its PriceBookPublished; each forgets what it changes).
   */
  constructor(
    readonly db: Db,
    readonly table: (name: BillingTable) => string,
    private readonly memo?: StoreMemo,
  ) {}

  async tenant(tenantId: string): Promise<TenantInfo | undefined> {
    if (this.memo?.tenants.has(tenantId)) return this.memo.tenants.get(tenantId);
    const row = await this.db.selectFrom(this.table('billing_tenants')).selectAll().where('tenant_id', '=', tenantId).executeTakeFirst();
    const tenant = row ? { tenantId: row.tenant_id, name: row.name, currency: row.currency, billingTimeZone: row.billing_time_zone } : undefined;
    this.memo?.tenants.set(tenantId, tenant);
    return tenant;
  }

  async priceVersions(maxSequence = SEQUENCE_MAX): Promise<PriceVersion[]> {
    if (this.memo) {
      this.memo.priceVersions ??= (await this.db.selectFrom(this.table('billing_price_books')).selectAll().orderBy('sequence').execute()).map((r) => ({ sequence: Number(r.sequence), version: priceVersionOf(r) }));
      return this.memo.priceVersions.filter((v) => v.sequence <= maxSequence).map((v) => v.version);
    }
    const rows = await this.db.selectFrom(this.table('billing_price_books')).selectAll().where('sequence', '<=', maxSequence).orderBy('sequence').execute();
    return rows.map(priceVersionOf);
  }

  async invoice(invoiceId: string): Promise<InvoiceRow | undefined> {
    return (await this.db.selectFrom(this.table('billing_invoices')).selectAll().where('invoice_id', '=', invoiceId).executeTakeFirst()) as InvoiceRow | undefined;
  }

  /** The tenant's current invoice of a period: the one not replaced by a reissue (deleted drafts are gone). */
  async invoiceFor(tenantId: string, period: string): Promise<InvoiceRow | undefined> {
    return (await this.db
      .selectFrom(this.table('billing_invoices'))
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('period', '=', period)
      .where('replaced_by_invoice_id', 'is', null)
      .executeTakeFirst()) as InvoiceRow | undefined;
  }

  /** The void invoice a reissue's replacement replaces (its id and number), for its document. */
  async replaced(row: InvoiceRow): Promise<{ invoiceId: string; number: string | null } | undefined> {
    if (!row.replaces_invoice_id) return undefined;
    const original = await this.invoice(row.replaces_invoice_id);
    return { invoiceId: row.replaces_invoice_id, number: original?.number ?? null };
  }

  /** The id the next draft of a tenant's period takes: its first id, or the successor named by the last deletion. */
  async nextDraftId(tenantId: string, period: string, firstId: string): Promise<string> {
    const deleted = await this.db
      .selectFrom(this.table('billing_deleted_invoices'))
      .select('successor_invoice_id')
      .where('tenant_id', '=', tenantId)
      .where('period', '=', period)
      .orderBy('sequence', 'desc')
      .executeTakeFirst();
    return deleted?.successor_invoice_id ?? firstId;
  }

  async pieces(invoiceId: string, maxAssignedSequence = SEQUENCE_MAX): Promise<PieceRow[]> {
    return (await this.db
      .selectFrom(this.table('billing_usage_pieces'))
      .selectAll()
      .where('invoice_id', '=', invoiceId)
      .where('assigned_sequence', '<=', maxAssignedSequence)
      .orderBy('sequence')
      .orderBy('piece')
      .execute()) as PieceRow[];
  }

  async lastNumberSequence(issuer: string): Promise<number> {
    const row = await this.db.selectFrom(this.table('billing_invoices')).select(sql<number | null>`max(number_sequence)`.as('last')).where('issuer', '=', issuer).executeTakeFirst();
    return Number(row?.last ?? 0);
  }

  /**
   * Finalized documents of a tenant, in finalization order, up to a sequence — without those
   * reissued by then: their replacement bills the same again (tier positions, SLA credit bases and
   * carried credits count it once).
   */
  async finalizedDocuments(tenantId: string, maxFinalizedSequence = SEQUENCE_MAX): Promise<InvoiceDocument[]> {
    const rows = await this.db
      .selectFrom(this.table('billing_invoices'))
      .select(['document'])
      .where('tenant_id', '=', tenantId)
      .where('status', '=', 'finalized')
      .where('finalized_sequence', '<=', maxFinalizedSequence)
      .where((eb) => eb.or([eb('replaced_sequence', 'is', null), eb('replaced_sequence', '>', maxFinalizedSequence)]))
      .orderBy('finalized_sequence')
      .execute();
    return rows.map((r) => JSON.parse(r.document as string) as InvoiceDocument);
  }

  /** Prepaid credit used by invoices finalized up to a sequence, less what voids up to it returned. */
  async grantUsage(tenantId: string, maxFinalizedSequence = SEQUENCE_MAX): Promise<Map<string, string>> {
    const rows = await this.db
      .selectFrom(this.table('billing_grant_usage'))
      .select(['grant_id', 'amount'])
      .where('tenant_id', '=', tenantId)
      .where('finalized_sequence', '<=', maxFinalizedSequence)
      .where((eb) => eb.or([eb('released_sequence', 'is', null), eb('released_sequence', '>', maxFinalizedSequence)]))
      .execute();
    const used = new Map<string, string>();
    for (const r of rows) used.set(r.grant_id, money(used.get(r.grant_id) ?? '0').plus(r.amount).toString());
    return used;
  }

  /**
   * The settings finance recorded for some tenants among the events in the log up to `maxSequence`
   * (an invoice's cutoff), in one read, so a document depends on the log up to its cutoff only: every
   * TaxRatesSet (`taxRatesInForce` picks an invoice's rates among them), the billing profile in force
   * (the last TenantBillingProfileSet, so a finalized document names the buyer as of its cutoff), and
   * the CreditGranted rows (prepaid grants).
   */
  async tenantSettings(tenantIds: readonly string[], maxSequence = SEQUENCE_MAX): Promise<TenantSettings> {
    const settings: TenantSettings = { taxRateSets: new Map(), profiles: new Map(), grants: new Map() };
    if (tenantIds.length === 0) return settings;
    const rows = await this.db
      .selectFrom(this.table('billing_finance_actions'))
      .select(['tenant_id', 'kind', 'payload', 'at_ms', 'sequence'])
      .where(sql<boolean>`tenant_id = ANY(${tenantIds}::text[])`)
      .where('kind', 'in', ['TaxRatesSet', 'TenantBillingProfileSet', 'CreditGranted'])
      .where('sequence', '<=', maxSequence)
      .orderBy('sequence')
      .execute();
    const listOf = <T>(map: Map<string, T[]>, tenantId: string): T[] => {
      let list = map.get(tenantId);
      if (!list) map.set(tenantId, (list = []));
      return list;
    };
    for (const r of rows) {
      const payload = (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as Record<string, unknown>;
      if (r.kind === 'TaxRatesSet') {
        const p = payload as { rates?: TaxRate[]; effectiveFrom?: string };
        listOf(settings.taxRateSets, r.tenant_id).push({ rates: p.rates ?? [], setAtMs: Number(r.at_ms), effectiveFromMs: p.effectiveFrom ? Date.parse(p.effectiveFrom) : null, sequence: Number(r.sequence) });
      } else if (r.kind === 'TenantBillingProfileSet') {
        settings.profiles.set(r.tenant_id, buyerProfileOf(payload as Parameters<typeof buyerProfileOf>[0]));
      } else {
        listOf(settings.grants, r.tenant_id).push({ payload: payload as unknown as GrantPayload, atMs: Number(r.at_ms) });
      }
    }
    return settings;
  }

  /** Every TaxRatesSet of some tenants up to `maxSequence` (see `tenantSettings`). */
  async taxRateSets(tenantIds: readonly string[], maxSequence = SEQUENCE_MAX): Promise<Map<string, TaxRateSet[]>> {
    return (await this.tenantSettings(tenantIds, maxSequence)).taxRateSets;
  }

  /** The billing profile in force for some tenants at `maxSequence` (see `tenantSettings`). */
  async billingProfiles(tenantIds: readonly string[], maxSequence = SEQUENCE_MAX): Promise<Map<string, BuyerProfile>> {
    return (await this.tenantSettings(tenantIds, maxSequence)).profiles;
  }

  /** Prepaid grants in the log up to `maxSequence`, less what invoices finalized up to it used. */
  async grants(tenantId: string, currency: string, maxSequence = SEQUENCE_MAX): Promise<PrepaidGrant[]> {
    return this.grantsOf(tenantId, currency, maxSequence, (await this.tenantSettings([tenantId], maxSequence)).grants.get(tenantId) ?? []);
  }

  /** Prepaid grants from their CreditGranted rows (in log order), less what invoices finalized up to `maxSequence` used. */
  private async grantsOf(tenantId: string, currency: string, maxSequence: number, rows: readonly GrantRow[]): Promise<PrepaidGrant[]> {
    if (rows.length === 0) return [];
    const used = await this.grantUsage(tenantId, maxSequence);
    return rows
      .map((r) => r.payload)
      .filter((g) => g.currency === currency)
      .map((g, i) => ({
        grantId: g.grantId,
        remaining: money(g.amount).minus(used.get(g.grantId) ?? '0'),
        priority: g.priority,
        grantedAtMs: rows[i]!.atMs,
        expiresAtMs: g.expiresAt ? Date.parse(g.expiresAt) : null,
      }));
  }

  /** Allocations the ledger knows to be running (not ended), of one tenant or all, in key order. */
  async runningAllocations(tenantId?: string): Promise<OpenAllocation[]> {
    let query = this.db.selectFrom(this.table('billing_open_allocations')).selectAll().where('ended', '=', false);
    if (tenantId) query = query.where('tenant_id', '=', tenantId);
    return (await query.orderBy('allocation_key').execute()).map(allocationFromRow);
  }

  async slaCredits(invoiceId: string, maxAssignedSequence = SEQUENCE_MAX) {
    return this.db.selectFrom(this.table('billing_sla_credits')).selectAll().where('invoice_id', '=', invoiceId).where('assigned_sequence', '<=', maxAssignedSequence).orderBy('sequence').execute();
  }

  /**
   * Everything `buildInvoice` needs for an invoice as of a cutoff: the pieces and credits put on it
   * up to the cutoff, the price versions published up to it, and what finalized invoices (up to
   * it) already billed for the same periods (tier positions, SLA credit bases, grant balances).
   */
  async inputs(row: InvoiceRow, options: InputOptions): Promise<InvoiceInputs> {
    const tenant = await this.tenant(row.tenant_id);
    if (!tenant) throw new Error(`invoice ${row.invoice_id}: tenant ${row.tenant_id} is unknown to billing`);
    const settings = await this.tenantSettings([row.tenant_id], options.cutoff);
    return assembleInputs(
      {
        row,
        tenant,
        pieces: await this.pieces(row.invoice_id, options.cutoff),
        finalized: await this.finalizedDocuments(row.tenant_id, options.cutoff),
        slaCredits: (await this.slaCredits(row.invoice_id, options.cutoff)) as SlaCreditRow[],
        priceVersions: await this.priceVersions(options.cutoff),
        taxRates: taxRatesInForce(settings.taxRateSets.get(row.tenant_id) ?? [], { periodEndMs: periodBounds(row.period, tenant.billingTimeZone).endMs, atMs: options.atMs }),
        grants: await this.grantsOf(row.tenant_id, tenant.currency, options.cutoff, settings.grants.get(row.tenant_id) ?? []),
        replaces: await this.replaced(row),
        buyer: settings.profiles.get(row.tenant_id),
      },
      options,
    );
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
      this.tenantSettings(tenantIds, options.cutoff),
    ]);
    const tenants = new Map<string, TenantInfo>();
    for (const t of tenantRows) tenants.set(t.tenant_id, { tenantId: t.tenant_id, name: t.name, currency: t.currency, billingTimeZone: t.billing_time_zone });
    return {
      tenants,
      credits: groupBy(creditRows as SlaCreditRow[], (c) => c.invoice_id!),
      finalized: groupBy(finalizedRows, (r) => r.tenant_id as string),
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
    const priceVersions = await this.priceVersions(options.cutoff);
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
        const usage = this.partsFromAggregates(row, aggregates.get(row.invoice_id), prices) ?? { pieces: await this.pieces(row.invoice_id, options.cutoff) };
        const raw: RawInvoiceData = {
          row,
          tenant,
          ...usage,
          finalized: (data.finalized.get(row.tenant_id) ?? []).map((r) => JSON.parse(r.document as string) as InvoiceDocument),
          slaCredits: data.credits.get(row.invoice_id) ?? [],
          priceVersions,
          taxRates: taxRatesInForce(data.taxRateSets.get(row.tenant_id) ?? [], { periodEndMs: periodBounds(row.period, tenant.billingTimeZone).endMs, atMs: options.atMs }),
          grants: await this.grantsOf(row.tenant_id, tenant.currency, options.cutoff, data.grants.get(row.tenant_id) ?? []),
          replaces: await this.replaced(row),
          buyer: data.profiles.get(row.tenant_id),
        };
        batch.push(assembleInputs(raw, { ...options, finalization: null }));
      }
      yield batch;
    }
  }
}

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

export interface InputOptions {
  cutoff: number;
  atMs: number;
  issuer: string;
  finalization: { number: string; finalizedAt: string } | null;
}

export interface SlaCreditRow {
  event_id: string;
  credit_id: string;
  tenant_id: string;
  period: string;
  metric: string;
  measured: string;
  target: string;
  credit_percent: number;
  invoice_id: string | null;
  sequence: number;
  assigned_sequence: number;
}

/** What one invoice's inputs are assembled from, however it was loaded. */
export interface RawInvoiceData {
  row: InvoiceRow;
  tenant: TenantInfo;
  pieces: readonly PieceRow[];
  /** Parts summed by a period run, instead of pieces (see piecesOrAggregates). */
  preRated?: readonly RatedPart[];
  pieceCount?: number;
  finalized: readonly InvoiceDocument[];
  slaCredits: readonly SlaCreditRow[];
  priceVersions: readonly PriceVersion[];
  taxRates: readonly TaxRate[];
  grants: readonly PrepaidGrant[];
  /** A reissue's replacement: the void invoice it replaces. */
  replaces?: { invoiceId: string; number: string | null };
  /** The tenant's billing profile in force at the cutoff. */
  buyer?: BuyerProfile;
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

/** A stored piece as libs/money rates it; `adjustment` marks late usage of an earlier period. */
export function usagePieceOf(p: PieceRow, adjustment: boolean): UsagePiece {
  return {
    usageId: p.usage_id,
    gpus: p.gpus,
    gpuModel: p.gpu_model,
    capacityType: p.capacity_type,
    startMs: p.start_ms,
    endMs: p.end_ms,
    allocationStartMs: p.allocation_start_ms,
    allocationEndMs: p.allocation_end_ms,
    interrupted: p.interrupted,
    servicePeriod: p.service_period,
    adjustment,
  };
}

/**
 * The invoice each adjustment (late usage of an earlier period) corrects: the tenant's invoice of
 * that service period finalized last up to this invoice's cutoff (a reissue replaces a void one),
 * with its number. These are facts of the ledger at the cutoff, so a rebuild finds the same.
 */
export function adjustmentReferencesOf(row: InvoiceRow, raw: Pick<RawInvoiceData, 'pieces' | 'preRated' | 'finalized'>): AdjustmentReference[] {
  const periods = new Set<string>();
  for (const p of raw.pieces) if (p.service_period !== row.period) periods.add(p.service_period);
  for (const p of raw.preRated ?? []) if (p.servicePeriod !== row.period) periods.add(p.servicePeriod);
  const references: AdjustmentReference[] = [];
  for (const servicePeriod of [...periods].sort()) {
    const original = raw.finalized.filter((doc) => doc.period === servicePeriod && doc.invoiceId !== row.invoice_id).at(-1);
    if (original) references.push({ servicePeriod, invoiceId: original.invoiceId, number: original.number });
  }
  return references;
}

/** Pure: raw rows of one invoice → the inputs of `buildInvoice`. */
export function assembleInputs(raw: RawInvoiceData, options: InputOptions): InvoiceInputs {
  const { row } = raw;
  const pieces: UsagePiece[] = raw.pieces.map((p) => usagePieceOf(p, p.service_period !== row.period));
  const priorQuantityGpuMs = new Map<string, number>();
  const finalizedBase = new Map<string, ReturnType<typeof money>>();
  for (const doc of raw.finalized) {
    if (doc.invoiceId === row.invoice_id) continue;
    for (const line of doc.lines) {
      if (line.kind === 'sla-credit' || line.gpuModel === null || line.capacityType === null) continue;
      if (line.kind !== 'interruption-credit') {
        const key = scopeKey(line.servicePeriod, line.gpuModel, line.capacityType);
        priorQuantityGpuMs.set(key, (priorQuantityGpuMs.get(key) ?? 0) + (line.quantityGpuMs ?? 0));
      }
      finalizedBase.set(line.servicePeriod, sumMoney([finalizedBase.get(line.servicePeriod) ?? money('0'), money(line.amount)]));
    }
  }
  // Credits carried forward: each finalized document (in finalization order) lists what is left of
  // every credit it held; a carried-credit line means it took some. Open to invoices of later periods.
  const carried = new Map<string, { credit: CarriedCredit; holderPeriod: string }>();
  for (const doc of raw.finalized) {
    if (doc.invoiceId === row.invoice_id) continue;
    for (const line of doc.lines) if (line.kind === 'carried-credit' && line.reference !== null) carried.delete(line.reference);
    for (const credit of doc.creditsCarriedForward ?? []) carried.set(credit.reference, { credit, holderPeriod: doc.period });
  }
  const carriedCredits = [...carried.values()].filter((c) => periodIndex(c.holderPeriod) < periodIndex(row.period)).map((c) => c.credit);
  const slaCredits: SlaCreditInput[] = raw.slaCredits.map((c) => ({
    creditId: c.credit_id,
    period: c.period,
    metric: c.metric,
    measured: c.measured,
    target: c.target,
    percent: c.credit_percent,
    finalizedBase: (finalizedBase.get(c.period) ?? money('0')).toString(),
  }));
  const adjustmentReferences = adjustmentReferencesOf(row, raw);
  return {
    invoiceId: row.invoice_id,
    issuer: options.issuer,
    tenant: raw.tenant,
    period: row.period,
    // Each piece or credit accepted onto the invoice up to the cutoff is one revision.
    revision: (raw.pieceCount ?? pieces.length) + slaCredits.length,
    cutoffSequence: options.cutoff,
    finalization: options.finalization,
    pieces,
    ...(raw.preRated ? { preRated: raw.preRated } : {}),
    priceVersions: raw.priceVersions,
    priorQuantityGpuMs,
    slaCredits,
    ...(carriedCredits.length ? { carriedCredits } : {}),
    ...(adjustmentReferences.length ? { adjustmentReferences } : {}),
    ...(raw.replaces ? { replaces: raw.replaces } : {}),
    ...(raw.buyer ? { buyer: raw.buyer } : {}),
    taxRates: raw.taxRates,
    grants: raw.grants,
    atMs: options.atMs,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function allocationFromRow(r: Record<string, any>): OpenAllocation {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    allocationKey: r.allocation_key,
    kind: r.kind,
    tenantId: r.tenant_id,
    projectId: r.project_id,
    gpuModel: r.gpu_model,
    capacityType: r.capacity_type,
    gpus: num(r.gpus),
    nodeId: r.node_id,
    leaseEpoch: num(r.lease_epoch),
    placedMs: num(r.placed_ms),
    startMs: num(r.start_ms),
    startEpoch: num(r.start_epoch),
    startSequence: num(r.start_sequence),
    endEpoch: num(r.end_epoch),
    ended: Boolean(r.ended),
    accruedFromMs: num(r.accrued_from_ms),
    accruedUntilMs: num(r.accrued_until_ms),
  };
}

export function allocationToRow(a: OpenAllocation) {
  return {
    allocation_key: a.allocationKey,
    kind: a.kind,
    tenant_id: a.tenantId,
    project_id: a.projectId,
    gpu_model: a.gpuModel,
    capacity_type: a.capacityType,
    gpus: a.gpus,
    node_id: a.nodeId,
    lease_epoch: a.leaseEpoch,
    placed_ms: a.placedMs,
    start_ms: a.startMs,
    start_epoch: a.startEpoch,
    start_sequence: a.startSequence,
    end_epoch: a.endEpoch,
    ended: a.ended,
    accrued_from_ms: a.accruedFromMs,
    accrued_until_ms: a.accruedUntilMs,
  };
}
