import { sql, type Selectable } from 'kysely';
import { money, periodBounds, taxRatesInForce, type TaxRateSet, type PrepaidGrant, type PriceTier, type PriceVersion, type RatePrice, type TaxRate } from '@fastgpu/money';
import { INCREMENT_MS_DEFAULT, MINIMUM_MS_DEFAULT, TIER_MODE_DEFAULT, type TierMode } from '@fastgpu/contracts';
import type { BillingPriceBooksTable } from '@fastgpu/db';
import { buyerProfileOf, type BuyerProfile, type InvoiceDocument, type InvoiceInputs, type TenantInfo } from '../invoices/invoice-document';
import type { OpenAllocation } from './accrual';
import { allocationFromRow, SEQUENCE_MAX, type Db, type InvoiceRow, type PieceRow, type TableName } from './billing-tables';
import { assembleInputs, type InputOptions } from './invoice-inputs';
import { PeriodRun, RUN_CHUNK_INVOICES } from './period-run';

/**
 * Reads of billing's tables (tenants, price versions, invoices, pieces, credits, finance settings,
 * running allocations) and the inputs of one invoice, always through `table(name)`, so that a
 * rebuild runs the same code into fresh suffixed tables. The row types are billing-tables.ts, the
 * pure assembly of an invoice's inputs invoice-inputs.ts, the many-invoice read period-run.ts.
 */
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
export interface GrantRow {
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

function priceVersionOf(r: Selectable<BillingPriceBooksTable>): PriceVersion {
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
    readonly table: TableName,
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
    return (await this.db.selectFrom(this.table('billing_invoices')).selectAll().where('invoice_id', '=', invoiceId).executeTakeFirst());
  }

  /** The tenant's current invoice of a period: the one not replaced by a reissue (deleted drafts are gone). */
  async invoiceFor(tenantId: string, period: string): Promise<InvoiceRow | undefined> {
    return (await this.db
      .selectFrom(this.table('billing_invoices'))
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('period', '=', period)
      .where('replaced_by_invoice_id', 'is', null)
      .executeTakeFirst());
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
      .execute());
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

  /** Prepaid grants from their CreditGranted rows (in log order), less what invoices finalized up to `maxSequence` used (a period run reads the rows of many tenants at once). */
  async grantsOf(tenantId: string, currency: string, maxSequence: number, rows: readonly GrantRow[]): Promise<PrepaidGrant[]> {
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
        slaCredits: (await this.slaCredits(row.invoice_id, options.cutoff)),
        priceVersions: await this.priceVersions(options.cutoff),
        taxRates: taxRatesInForce(settings.taxRateSets.get(row.tenant_id) ?? [], { periodEndMs: periodBounds(row.period, tenant.billingTimeZone).endMs, atMs: options.atMs }),
        grants: await this.grantsOf(row.tenant_id, tenant.currency, options.cutoff, settings.grants.get(row.tenant_id) ?? []),
        replaces: await this.replaced(row),
        buyer: settings.profiles.get(row.tenant_id),
      },
      options,
    );
  }

  /** The inputs of many draft invoices at once, a chunk at a time (period-run.ts). */
  inputsForMany(rows: readonly InvoiceRow[], options: Omit<InputOptions, 'finalization'>, chunkInvoices = RUN_CHUNK_INVOICES): AsyncGenerator<InvoiceInputs[]> {
    return new PeriodRun(this).inputsForMany(rows, options, chunkInvoices);
  }
}
