import { type StoredEvent } from '@fastgpu/contracts';
import type { Transaction } from 'kysely';
import type { BillingDatabase } from '@fastgpu/db';
import { addPeriods, compareCodeUnits, PriceTimeline } from '@fastgpu/money';
import type { TenantInfo } from '../invoices/invoice-document';
import type { FinanceActionKind } from '../finance-actions/finance-actions';
import { applyFinanceAction } from '../finance-actions/finance-actions.projection';
import { BillingStore, type StoreMemo } from './billing.store';
import type { InvoiceRow, PieceRow, TableName } from './billing-tables';
import { applyDraftDeleted, applyReissued } from './invoice-lifecycle';
import { invoiceIdFor } from './invoice-ids';
import type { LedgerContext, Target } from './ledger-context';
import { applyLateUsageBilled, applyLateUsageDismissed, applyLateUsageRecorded } from './review-decisions';
import { auditRowsOf, sameJson, writeAuditRows, type AuditEntry, type AuditOutcome, type AuditRow } from './billing-audit';
import { closePeriod, followAllocation, loseNodeAllocations } from './accrual-ledger';
import { applyInvoiceFinalized } from './finalization-ledger';
import { ratedPartRows, type RatedPartRow } from './rated-parts';
import { applySlaCreditIssued, applyUsageRecorded, splitPending, type ReviewedPiece } from './usage-ledger';

/**
 * Late usage: a piece whose period's invoice is finalized goes on the next invoice that is still a
 * draft, as an adjustment tagged with its service period, when that invoice is at most
 * LATE_PERIODS_MAX periods later; otherwise it goes to the review queue.
 */
export const LATE_PERIODS_MAX = 2;
/** Bound on the periods searched forward for a draft invoice. */
const FORWARD_PERIODS_MAX = 24;
/** Pieces re-rated per statement batch when a price version arrives. */
const RERATE_BATCH_PIECES = 1000;
/** Rated parts written per statement (12 parameters a row, far below PostgreSQL's 65,535). */
const PART_ROWS_PER_INSERT = 1000;

/**
 * Applies a batch of events in one transaction, one event after the other, with fewer statements
 * than events times their work (each is a round trip to Postgres, which is what a rebuild waits
 * on): what it reads again and again is remembered for the batch (price versions and timelines until
 * a price version arrives, tenants until their TenantCreated, each tenant's current invoice of a
 * period until an invoice changes, the issuer's last number until a finalization takes the next),
 * and what it writes without reading it back is held and written in multi-row statements (rated
 * parts before anything reads or changes them, the audit trail at the end). The rows are the same as
 * applying the events one per transaction: the ledger tests rebuild both ways and compare every
 * table with the live one.
 */
export class LedgerWriter implements LedgerContext {
  readonly store: BillingStore;
  private readonly memo: StoreMemo = { tenants: new Map<string, TenantInfo | undefined>() };
  /** Each tenant's current invoice of a period (`tenant \0 period`), as `findTarget` needs it; forgotten when an invoice changes. */
  private readonly currentInvoices = new Map<string, { invoiceId: string; status: InvoiceRow['status'] } | null>();
  /** The last invoice number taken per issuer (only a finalization takes one). */
  private readonly lastNumbers = new Map<string, number>();
  private pendingParts: RatedPartRow[] = [];
  private pendingAudit: AuditRow[] = [];

  constructor(
    readonly trx: Transaction<BillingDatabase>,
    readonly t: TableName,
  ) {
    this.store = new BillingStore(trx, t, this.memo);
  }

  /** Writes the rated parts held so far; called before any statement that reads or changes rated parts. */
  async flushParts(): Promise<void> {
    const rows = this.pendingParts;
    this.pendingParts = [];
    for (let start = 0; start < rows.length; start += PART_ROWS_PER_INSERT) await this.trx.insertInto(this.t('billing_rated_parts')).values(rows.slice(start, start + PART_ROWS_PER_INSERT)).execute();
  }

  /** Writes everything held for the batch: its rated parts, then its audit trail. */
  async flush(): Promise<void> {
    await this.flushParts();
    const audit = this.pendingAudit;
    this.pendingAudit = [];
    await writeAuditRows(this.trx, this.t, audit);
  }

  /** An invoice row was inserted, updated or deleted other than by `findTarget`: what was remembered of current invoices may be stale. */
  invoicesChanged(): void {
    this.currentInvoices.clear();
  }

  private async currentInvoice(tenantId: string, period: string): Promise<{ invoiceId: string; status: InvoiceRow['status'] } | null> {
    const key = `${tenantId}\u0000${period}`;
    const known = this.currentInvoices.get(key);
    if (known !== undefined) return known;
    const row = await this.store.invoiceFor(tenantId, period);
    const found = row ? { invoiceId: row.invoice_id, status: row.status } : null;
    this.currentInvoices.set(key, found);
    return found;
  }

  /** The issuer's last invoice number taken, as of the events applied so far (remembered for the batch). */
  async lastNumberOf(issuer: string): Promise<number> {
    return this.lastNumbers.get(issuer) ?? (await this.store.lastNumberSequence(issuer));
  }

  /** A finalization took the issuer's next number. */
  numberTaken(issuer: string, numberSequence: number): void {
    this.lastNumbers.set(issuer, numberSequence);
  }

  private timelines?: Map<string, PriceTimeline>;

  /** Price timelines per currency, as of the events applied so far (cached for the batch). */
  async timeline(currency: string): Promise<PriceTimeline> {
    if (!this.timelines) {
      const versions = await this.store.priceVersions();
      this.timelines = new Map();
      for (const c of new Set(versions.map((v) => v.currency))) this.timelines.set(c, new PriceTimeline(versions.filter((v) => v.currency === c)));
    }
    return this.timelines.get(currency) ?? new PriceTimeline([]);
  }

  /** Rates pieces with libs/money (at the prices in force now) and stores their billed parts (rows without a price keep a null version). */
  async writeParts(pieces: readonly PieceRow[], currency: string): Promise<void> {
    if (pieces.length === 0) return;
    const timeline = await this.timeline(currency);
    for (const p of pieces) this.pendingParts.push(...ratedPartRows(p, timeline));
  }

  /**
   * A new price version re-rates the pieces of draft invoices that it reaches; the audit trail names
   * each draft it re-rated (what the invoice's audit shows, and what announces `invoice.updated`).
   */
  async rerateDrafts(currency: string, effectiveFromMs: number, version: string): Promise<void> {
    this.timelines = undefined;
    this.memo.priceVersions = undefined;
    const pieces = (await this.trx
      .selectFrom(`${this.t('billing_usage_pieces')} as p`)
      .innerJoin(`${this.t('billing_invoices')} as i`, 'i.invoice_id', 'p.invoice_id')
      .innerJoin(`${this.t('billing_tenants')} as t`, 't.tenant_id', 'p.tenant_id')
      .selectAll('p')
      .where('i.status', '=', 'draft')
      .where('t.currency', '=', currency)
      .where('p.allocation_end_ms', '>', effectiveFromMs)
      .execute()) as PieceRow[];
    await this.flushParts();
    const drafts = new Map<string, string>();
    for (const p of pieces) drafts.set(p.invoice_id!, p.tenant_id);
    for (const [invoiceId, tenantId] of [...drafts].sort(([a], [b]) => compareCodeUnits(a, b))) this.audit('applied', invoiceId, tenantId, `re-rated by ${version}`);
    for (let start = 0; start < pieces.length; start += RERATE_BATCH_PIECES) {
      const batch = pieces.slice(start, start + RERATE_BATCH_PIECES);
      for (const p of batch) await this.trx.deleteFrom(this.t('billing_rated_parts')).where('event_id', '=', p.event_id).where('piece', '=', p.piece).execute();
      await this.writeParts(batch, currency);
      await this.flushParts();
    }
  }

  /** The invoice that bills something of `servicePeriod` for a tenant, created as a draft when absent. */
  async target(tenantId: string, servicePeriod: string, usage = false): Promise<Target> {
    const found = await this.findTarget(tenantId, servicePeriod);
    if ('invoiceId' in found) {
      this.audit('applied', found.invoiceId, tenantId);
      if (usage && found.period !== servicePeriod) this.audit('late', found.invoiceId, tenantId, `usage of ${servicePeriod} as an adjustment on ${found.period}`);
      return { invoiceId: found.invoiceId };
    }
    return found;
  }

  private async findTarget(tenantId: string, servicePeriod: string): Promise<{ invoiceId: string; period: string } | { review: string }> {
    for (let step = 0; step <= FORWARD_PERIODS_MAX; step++) {
      const period = addPeriods(servicePeriod, step);
      const row = await this.currentInvoice(tenantId, period);
      if (row && row.status !== 'draft') continue;
      if (step > LATE_PERIODS_MAX) return { review: `the next open invoice (${period}) is more than ${LATE_PERIODS_MAX} periods after the service period ${servicePeriod}` };
      const invoiceId = row?.invoiceId ?? (await this.store.nextDraftId(tenantId, period, invoiceIdFor(tenantId, period)));
      if (!row) {
        await this.trx.insertInto(this.t('billing_invoices')).values({ invoice_id: invoiceId, tenant_id: tenantId, period, status: 'draft' }).execute();
        this.currentInvoices.set(`${tenantId}\u0000${period}`, { invoiceId, status: 'draft' });
      }
      return { invoiceId, period };
    }
    return { review: `no open invoice within ${FORWARD_PERIODS_MAX} periods of ${servicePeriod}` };
  }

  /** Records a repeated id: the same payload is a duplicate, another payload a conflict (the first stands). */
  repeated(same: boolean, invoiceId: string | null, tenantId: string | null, what: string): void {
    this.audit(same ? 'duplicate' : 'conflict', invoiceId, tenantId, same ? `${what} seen before` : `${what} seen before with another payload; the first stands`);
  }

  async review(eventId: string, piece: number, kind: string, tenantId: string, referenceId: string, servicePeriod: string, reason: string, sequence: number, usage?: ReviewedPiece): Promise<void> {
    this.audit('review', null, tenantId, `${kind} ${referenceId}${servicePeriod ? ` (${servicePeriod})` : ''}: ${reason}`);
    if (kind === 'usage' || kind === 'late-usage') this.audit('late', null, tenantId, `usage ${referenceId} of ${servicePeriod}: to the review queue`);
    await this.trx
      .insertInto(this.t('billing_review_queue'))
      .values({ event_id: eventId, piece, kind, tenant_id: tenantId, reference_id: referenceId, service_period: servicePeriod, reason, sequence, ...(usage ?? {}) })
      .onConflict((oc) => oc.columns(['event_id', 'piece']).doNothing())
      .execute();
  }

  /** Audit entries of the event being applied (see billing-audit.ts). */
  private entries: AuditEntry[] = [];

  audit(outcome: AuditOutcome, invoiceId: string | null, tenantId: string | null, detail: string | null = null): void {
    this.entries.push({ outcome, invoiceId, tenantId, detail });
  }

  async apply(stored: StoredEvent, issuerCheck: boolean): Promise<void> {
    this.entries = [];
    await this.handle(stored, issuerCheck);
    this.pendingAudit.push(...auditRowsOf(stored, this.entries));
  }

  private async handle(stored: StoredEvent, issuerCheck: boolean): Promise<void> {
    const { event, sequence } = stored;
    switch (event.type) {
      case 'TenantCreated': {
        const d = event.data;
        const inserted = await this.trx
          .insertInto(this.t('billing_tenants'))
          .values({ tenant_id: d.tenantId, name: d.name, currency: d.currency, billing_time_zone: d.billingTimeZone, event_id: event.id, sequence })
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        // The tenant exists now: this event's, or the first one's (read again when needed).
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) this.memo.tenants.set(d.tenantId, { tenantId: d.tenantId, name: d.name, currency: d.currency, billingTimeZone: d.billingTimeZone });
        else this.memo.tenants.delete(d.tenantId);
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) {
          const seen = await this.trx.selectFrom(this.t('billing_tenants')).selectAll().where('tenant_id', '=', d.tenantId).executeTakeFirstOrThrow();
          this.repeated(seen.event_id === event.id || (seen.name === d.name && seen.currency === d.currency && seen.billing_time_zone === d.billingTimeZone), null, d.tenantId, `tenant ${d.tenantId} (first: event ${seen.event_id}, sequence ${seen.sequence})`);
        }
        await splitPending(this, d.tenantId, sequence);
        return;
      }
      case 'PriceBookPublished': {
        const d = event.data;
        const inserted = await this.trx
          .insertInto(this.t('billing_price_books'))
          .values({
            price_book_id: d.priceBookId,
            version: d.version,
            currency: d.currency,
            effective_from_ms: Date.parse(d.effectiveFrom),
            prices: JSON.stringify(d.prices),
            published_by: d.publishedBy,
            published_at: d.publishedAt,
            event_id: event.id,
            sequence,
          })
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) {
          // The price book itself is applied (no invoice), and so is each draft it re-rates.
          this.audit('applied', null, null);
          await this.rerateDrafts(d.currency, Date.parse(d.effectiveFrom), `price book ${d.priceBookId} v${d.version}`);
          return;
        }
        const seen = await this.trx.selectFrom(this.t('billing_price_books')).selectAll().where('price_book_id', '=', d.priceBookId).where('version', '=', d.version).executeTakeFirstOrThrow();
        const same = seen.event_id === event.id || (seen.currency === d.currency && Number(seen.effective_from_ms) === Date.parse(d.effectiveFrom) && sameJson(typeof seen.prices === 'string' ? JSON.parse(seen.prices) : seen.prices, d.prices));
        this.repeated(same, null, null, `price book ${d.priceBookId} v${d.version} (first: event ${seen.event_id}, sequence ${seen.sequence})`);
        return;
      }
      case 'UsageRecorded':
        await applyUsageRecorded(this, stored as StoredEvent<'UsageRecorded'>);
        return;
      case 'SlaCreditIssued':
        await applySlaCreditIssued(this, stored as StoredEvent<'SlaCreditIssued'>);
        return;
      case 'InvoiceFinalized':
        await applyInvoiceFinalized(this, stored as StoredEvent<'InvoiceFinalized'>, issuerCheck);
        return;
      case 'SubtaskPlaced':
      case 'SubtaskStarted':
      case 'SubtaskCompleted':
      case 'SubtaskFailed':
      case 'SubtaskPreempted':
      case 'SubtaskRequeued':
      case 'LeaseGranted':
      case 'LeaseReleased':
      case 'ExternalAllocationStarted':
      case 'ExternalAllocationStopped':
        await followAllocation(this, stored);
        return;
      case 'NodeLost':
        await loseNodeAllocations(this, stored as StoredEvent<'NodeLost'>);
        return;
      case 'BillingPeriodClosed':
        await closePeriod(this, stored as StoredEvent<'BillingPeriodClosed'>);
        return;
      case 'InvoiceDraftDeleted':
        await applyDraftDeleted(this, stored as StoredEvent<'InvoiceDraftDeleted'>);
        return;
      case 'InvoiceReissued':
        await applyReissued(this, stored as StoredEvent<'InvoiceReissued'>);
        return;
      case 'LateUsageRecorded':
        await applyLateUsageRecorded(this, stored as StoredEvent<'LateUsageRecorded'>);
        return;
      case 'LateUsageBilled':
        await applyLateUsageBilled(this, stored as StoredEvent<'LateUsageBilled'>);
        return;
      case 'LateUsageDismissed':
        await applyLateUsageDismissed(this, stored as StoredEvent<'LateUsageDismissed'>);
        return;
      case 'InvoicePaid':
      case 'InvoiceVoided':
      case 'CreditNoteIssued':
      case 'CreditGranted':
      case 'TaxRatesSet':
      case 'TenantBillingProfileSet': {
        const outcome = await applyFinanceAction(this.trx, this.t, this.store, stored as StoredEvent<FinanceActionKind>);
        const d = event.data as { tenantId: string; invoiceId?: string };
        this.audit(outcome.outcome, d.invoiceId ?? null, d.tenantId, outcome.detail);
        return;
      }
      default:
        return;
    }
  }

}
