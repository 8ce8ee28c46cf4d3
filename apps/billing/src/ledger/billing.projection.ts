import { deriveId, nameId, type StoredEvent } from '@fastgpu/contracts';
import type { Projection, ProjectionContext, ProjectionTransaction } from '@fastgpu/messaging';
import { addPeriods, billedParts, compareCodeUnits, gpuMs, periodBounds, periodIndex, PriceTimeline, splitAtPeriods } from '@fastgpu/money';
import { buildFinalizedInvoice, canonicalJson, documentSha256, type TenantInfo } from '../invoices/invoice-document';
import { FINANCE_ACTION_TYPES, type FinanceActionKind } from '../finance-actions/finance-actions';
import { applyFinanceAction } from '../finance-actions/finance-actions.projection';
import { allocationFromRow, allocationToRow, BillingStore, usagePieceOf, type BillingTable, type InvoiceRow, type PieceRow, type StoreMemo } from './billing.store';
import { applyDraftDeleted, applyReissued, LIFECYCLE_ACTION_TYPES } from './invoice-lifecycle';
import type { LedgerContext } from './ledger-context';
import { applyLateUsageBilled, applyLateUsageDismissed, applyLateUsageRecorded, REVIEW_DECISION_TYPES } from './review-decisions';
import { auditRowsOf, sameJson, writeAuditRows, type AuditEntry, type AuditOutcome, type AuditRow } from './billing-audit';
import { accrualRange, ALLOCATION_EVENT_TYPES, allocationOf, emptyAllocation, evolveAllocation, leaseKey, loseNode, OPEN_ALLOCATION_END_MS, stopPieces, subtaskKey, type OpenAllocation } from './accrual';

/**
 * The billing ledger: folds the domain stream into tenants, price versions, usage split into
 * billing-period pieces on the invoice that bills them, SLA credits, and invoices. Every row is
 * keyed by its event id (or the entity's own id) and inserted with ON CONFLICT DO NOTHING, so a
 * redelivered or republished event is counted once, forever.
 *
 * Late usage: a piece whose period's invoice is finalized goes on the next invoice that is still
 * a draft, as an adjustment tagged with its service period, when that invoice is at most
 * LATE_PERIODS_MAX periods later; otherwise it goes to the review queue.
 *
 * `InvoiceFinalized` freezes an invoice: pieces put on it after the event's cutoff move on as late
 * usage, the document is rebuilt from exactly what the cutoff covers, and its SHA-256 must equal
 * the event's. A mismatch throws, and the runner stalls there rather than skip money.
 *
 * Finance actions (paid, void, credit notes, prepaid grants, tax rates) are folded into
 * `billing_finance_actions` by finance-actions.projection.ts, checked against the log's state.
 *
 * Accrual (accrual.ts): the ledger follows which allocations are running; `BillingPeriodClosed`
 * cuts them at the period's end onto the closing period's invoice, and their UsageRecorded later
 * bills only the remainder. Accrued time that a stop shows was never used goes to the review queue.
 */
export const BILLING_PROJECTION = 'billing-ledger';
export const LATE_PERIODS_MAX = 2;
/** Bound on the periods searched forward for a draft invoice. */
const FORWARD_PERIODS_MAX = 24;
/** Review-queue piece number of an accrual overrun (accrued time after the allocation's end). */
export const ACCRUAL_OVERRUN_PIECE = -1;
/** Pieces re-rated per statement batch when a price version arrives. */
const RERATE_BATCH_PIECES = 1000;
/** Rated parts written per statement (12 parameters a row, far below PostgreSQL's 65,535). */
const PART_ROWS_PER_INSERT = 1000;

export function invoiceIdFor(tenantId: string, period: string): string {
  return nameId('invoice', tenantId, period);
}

export function parseInvoiceNumber(number: string): { issuer: string; sequence: number } {
  const m = /^(.+)-(\d{6,})$/.exec(number);
  if (!m) throw new Error(`invoice number "${number}" is not <issuer>-<sequence>`);
  return { issuer: m[1]!, sequence: Number(m[2]) };
}

export function formatInvoiceNumber(issuer: string, sequence: number): string {
  return `${issuer}-${String(sequence).padStart(6, '0')}`;
}

type Target = { invoiceId: string } | { review: string };

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
class LedgerWriter implements LedgerContext {
  readonly store: BillingStore;
  private readonly memo: StoreMemo = { tenants: new Map<string, TenantInfo | undefined>() };
  /** Each tenant's current invoice of a period (`tenant \0 period`), as `findTarget` needs it; forgotten when an invoice changes. */
  private readonly currentInvoices = new Map<string, { invoiceId: string; status: InvoiceRow['status'] } | null>();
  /** The last invoice number taken per issuer (only a finalization takes one). */
  private readonly lastNumbers = new Map<string, number>();
  private pendingParts: RatedPartRow[] = [];
  private pendingAudit: AuditRow[] = [];

  constructor(
    readonly trx: ProjectionTransaction,
    readonly t: (name: BillingTable) => string,
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
  private repeated(same: boolean, invoiceId: string | null, tenantId: string | null, what: string): void {
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

  /** Splits a tenant's not-yet-split usage into period pieces and puts each on its invoice. */
  async splitPending(tenantId: string, assignedSequence: number): Promise<void> {
    const tenant = await this.store.tenant(tenantId);
    if (!tenant) return;
    const usage = (await this.trx.selectFrom(this.t('billing_usage')).selectAll().where('tenant_id', '=', tenantId).where('split', '=', false).orderBy('sequence').execute()) as UsageToSplit[];
    for (const u of usage) {
      await this.splitUsage(tenant, u, assignedSequence);
      await this.trx.updateTable(this.t('billing_usage')).set({ split: true }).where('event_id', '=', u.event_id).execute();
    }
  }

  /** Splits one usage record of a known tenant into period pieces and puts each on its invoice. */
  private async splitUsage(tenant: TenantInfo, u: UsageToSplit, assignedSequence: number): Promise<void> {
    const tenantId = tenant.tenantId;
    const accrued = u.accrued_until_ms === null ? null : { startMs: Number(u.accrued_from_ms), endMs: Number(u.accrued_until_ms) };
    const { pieces, overrunMs } = stopPieces(u.start_ms, u.end_ms, accrued, tenant.billingTimeZone);
    if (overrunMs > 0) {
      const reason = `accrued at period close to ${new Date(accrued!.endMs).toISOString()} from ${new Date(accrued!.startMs).toISOString()}, but the allocation ran ${new Date(u.start_ms).toISOString()} to ${new Date(u.end_ms).toISOString()}: ${u.gpus * overrunMs} GPU-ms were billed that it did not use`;
      await this.review(u.event_id, ACCRUAL_OVERRUN_PIECE, 'accrual-overrun', tenantId, u.usage_id, pieces[0]?.period ?? '', reason, u.sequence);
    }
    for (const [index, piece] of pieces.entries()) {
      const target = await this.target(tenantId, piece.period, true);
      if ('review' in target) {
        const reviewed = { gpu_model: u.gpu_model, capacity_type: u.capacity_type, gpus: u.gpus, start_ms: piece.startMs, end_ms: piece.endMs, allocation_start_ms: u.start_ms, allocation_end_ms: u.end_ms, interrupted: u.interrupted };
        await this.review(u.event_id, index, 'usage', tenantId, u.usage_id, piece.period, target.review, u.sequence, reviewed);
        continue;
      }
      const pieceRow: PieceRow = {
        event_id: u.event_id,
        piece: index,
        usage_id: u.usage_id,
        tenant_id: tenantId,
        service_period: piece.period,
        invoice_id: target.invoiceId,
        gpu_model: u.gpu_model,
        capacity_type: u.capacity_type,
        gpus: u.gpus,
        start_ms: piece.startMs,
        end_ms: piece.endMs,
        allocation_start_ms: u.start_ms,
        allocation_end_ms: u.end_ms,
        interrupted: u.interrupted,
        sequence: u.sequence,
        assigned_sequence: Math.max(u.sequence, assignedSequence),
      };
      await this.trx.insertInto(this.t('billing_usage_pieces')).values(pieceRow).execute();
      await this.writeParts([pieceRow], tenant.currency);
    }
  }

  private async allocation(key: string): Promise<OpenAllocation | undefined> {
    const row = await this.trx.selectFrom(this.t('billing_open_allocations')).selectAll().where('allocation_key', '=', key).executeTakeFirst();
    return row ? allocationFromRow(row) : undefined;
  }

  private async saveAllocation(a: OpenAllocation, sequence: number): Promise<void> {
    const row = { ...allocationToRow(a), sequence };
    await this.trx
      .insertInto(this.t('billing_open_allocations'))
      .values(row)
      .onConflict((oc) => oc.column('allocation_key').doUpdateSet(row))
      .execute();
  }

  /** Folds an event that opens or ends an allocation (accrual.ts has the rules). */
  private async followAllocation(stored: StoredEvent): Promise<void> {
    const of = allocationOf(stored)!;
    const current = (await this.allocation(of.key)) ?? emptyAllocation(of.key, of.kind);
    const next = evolveAllocation(current, stored);
    if (JSON.stringify(next) !== JSON.stringify(current)) await this.saveAllocation(next, stored.sequence);
  }

  /**
   * A UsageRecorded ends its allocation for good; returns it (with the range period closes already
   * cut) when the ledger knew it. Sub-tasks and leases are found by their ids, an external
   * allocation by its start event, which is among the usage's source sequences.
   */
  private async closeAllocation(d: { tenantId: string; subtaskId?: string; attempt?: number; leaseId?: string; sourceSequences: number[] }, sequence: number): Promise<OpenAllocation | undefined> {
    let found: OpenAllocation | undefined;
    if (d.subtaskId && d.attempt) found = await this.allocation(subtaskKey(d.subtaskId, d.attempt));
    else if (d.leaseId) found = await this.allocation(leaseKey(d.leaseId));
    else if (d.sourceSequences.length) {
      const row = await this.trx
        .selectFrom(this.t('billing_open_allocations'))
        .selectAll()
        .where('kind', '=', 'external')
        .where('tenant_id', '=', d.tenantId)
        .where('start_sequence', 'in', d.sourceSequences)
        .orderBy('allocation_key')
        .executeTakeFirst();
      found = row ? allocationFromRow(row) : undefined;
    }
    if (!found || found.tenantId !== d.tenantId) return undefined;
    if (!found.ended) await this.saveAllocation({ ...found, ended: true }, sequence);
    return found;
  }

  /**
   * A period close: every running allocation of the tenant is cut at the period's end, from where
   * the last cut stopped, onto the invoice of each period it covers (the closing period's draft;
   * an earlier period already finalized takes it as late usage, like any).
   */
  private async closePeriod({ event, sequence }: StoredEvent<'BillingPeriodClosed'>): Promise<void> {
    const d = event.data;
    const tenant = await this.store.tenant(d.tenantId);
    if (!tenant) throw new Error(`BillingPeriodClosed ${event.id}: tenant ${d.tenantId} is unknown to billing`);
    const periodEndMs = periodBounds(d.period, tenant.billingTimeZone).endMs;
    // A close before the period's end would bill time not yet used: it cuts nothing.
    if (Date.parse(d.closedAt) < periodEndMs) {
      await this.review(event.id, 0, 'period-close', d.tenantId, event.id, d.period, `closed at ${d.closedAt}, before the period ends (${new Date(periodEndMs).toISOString()}): nothing accrued`, sequence);
      return;
    }
    const rows = await this.trx.selectFrom(this.t('billing_open_allocations')).selectAll().where('tenant_id', '=', d.tenantId).where('ended', '=', false).orderBy('allocation_key').execute();
    for (const a of rows.map(allocationFromRow)) {
      const range = accrualRange(a, periodEndMs);
      if (!range) continue;
      const accrualId = deriveId(event.id, `accrual:${a.allocationKey}`);
      await this.trx
        .insertInto(this.t('billing_accruals'))
        .values({ accrual_id: accrualId, allocation_key: a.allocationKey, tenant_id: d.tenantId, period: d.period, close_event_id: event.id, gpu_model: a.gpuModel!, capacity_type: a.capacityType!, gpus: a.gpus!, start_ms: range.fromMs, end_ms: range.toMs, sequence })
        .execute();
      for (const [index, piece] of splitAtPeriods(range.fromMs, range.toMs, tenant.billingTimeZone).entries()) {
        const target = await this.target(d.tenantId, piece.period, true);
        if ('review' in target) {
          const reviewed = { gpu_model: a.gpuModel!, capacity_type: a.capacityType!, gpus: a.gpus!, start_ms: piece.startMs, end_ms: piece.endMs, allocation_start_ms: a.startMs!, allocation_end_ms: OPEN_ALLOCATION_END_MS, interrupted: false };
          await this.review(accrualId, index, 'usage', d.tenantId, accrualId, piece.period, target.review, sequence, reviewed);
          continue;
        }
        const pieceRow: PieceRow = {
          event_id: accrualId,
          piece: index,
          usage_id: accrualId,
          tenant_id: d.tenantId,
          service_period: piece.period,
          invoice_id: target.invoiceId,
          gpu_model: a.gpuModel!,
          capacity_type: a.capacityType!,
          gpus: a.gpus!,
          start_ms: piece.startMs,
          end_ms: piece.endMs,
          allocation_start_ms: a.startMs!,
          allocation_end_ms: OPEN_ALLOCATION_END_MS,
          interrupted: false,
          sequence,
          assigned_sequence: sequence,
        };
        await this.trx.insertInto(this.t('billing_usage_pieces')).values(pieceRow).execute();
        await this.writeParts([pieceRow], tenant.currency);
      }
      await this.saveAllocation({ ...a, accruedFromMs: a.accruedFromMs ?? range.fromMs, accruedUntilMs: range.toMs }, sequence);
    }
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
        await this.splitPending(d.tenantId, sequence);
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
      case 'UsageRecorded': {
        const d = event.data;
        const startMs = Date.parse(d.startAt);
        const endMs = Date.parse(d.endAt);
        const expectedGpuMs = endMs < startMs ? null : gpuMs(d.gpus, startMs, endMs);
        if (expectedGpuMs === null || d.gpuMs !== expectedGpuMs) {
          throw new Error(`UsageRecorded ${event.id}: gpuMs ${d.gpuMs} is not gpus × (end − start) = ${expectedGpuMs ?? 'nothing: it ends before it starts'}`);
        }
        const allocation = await this.closeAllocation(d, sequence);
        // A known tenant has no usage left to split (its TenantCreated split what waited for it):
        // this record is split at once, so it is stored split.
        const tenant = await this.store.tenant(d.tenantId);
        const usage: UsageToSplit = {
          event_id: event.id,
          usage_id: d.usageId,
          gpu_model: d.gpuModel,
          capacity_type: d.capacityType,
          gpus: d.gpus,
          start_ms: startMs,
          end_ms: endMs,
          interrupted: d.interrupted,
          sequence,
          accrued_from_ms: allocation?.accruedFromMs ?? null,
          accrued_until_ms: allocation?.accruedUntilMs ?? null,
        };
        const inserted = await this.trx
          .insertInto(this.t('billing_usage'))
          .values({
            event_id: event.id,
            usage_id: d.usageId,
            tenant_id: d.tenantId,
            project_id: d.projectId,
            job_id: d.jobId ?? null,
            subtask_id: d.subtaskId ?? null,
            attempt: d.attempt ?? null,
            lease_id: d.leaseId ?? null,
            gpu_model: d.gpuModel,
            capacity_type: d.capacityType,
            gpus: d.gpus,
            start_ms: startMs,
            end_ms: endMs,
            gpu_ms: d.gpuMs,
            interrupted: d.interrupted,
            source_sequences: JSON.stringify(d.sourceSequences),
            sequence,
            allocation_key: allocation?.allocationKey ?? null,
            accrued_from_ms: allocation?.accruedFromMs ?? null,
            accrued_until_ms: allocation?.accruedUntilMs ?? null,
            split: tenant !== undefined,
          })
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) {
          const seen = await this.trx.selectFrom(this.t('billing_usage')).selectAll().where((eb) => eb.or([eb('event_id', '=', event.id), eb('usage_id', '=', d.usageId)])).executeTakeFirstOrThrow();
          const same =
            seen.event_id === event.id ||
            (seen.tenant_id === d.tenantId && Number(seen.start_ms) === startMs && Number(seen.end_ms) === endMs && seen.gpus === d.gpus && seen.gpu_model === d.gpuModel && seen.capacity_type === d.capacityType && seen.interrupted === d.interrupted);
          this.repeated(same, null, d.tenantId, `usage ${d.usageId} (first: event ${seen.event_id}, sequence ${seen.sequence})`);
          return;
        }
        if (tenant) await this.splitUsage(tenant, usage, sequence);
        return;
      }
      case 'SlaCreditIssued': {
        const d = event.data;
        const seen = await this.trx.selectFrom(this.t('billing_sla_credits')).selectAll().where((eb) => eb.or([eb('event_id', '=', event.id), eb('credit_id', '=', d.creditId)])).executeTakeFirst();
        const reviewed = seen ? undefined : await this.trx.selectFrom(this.t('billing_review_queue')).selectAll().where('event_id', '=', event.id).executeTakeFirst();
        if (seen) {
          this.repeated(seen.event_id === event.id || (seen.tenant_id === d.tenantId && seen.period === d.period && seen.credit_percent === d.creditPercent), null, d.tenantId, `SLA credit ${d.creditId} (first: event ${seen.event_id}, sequence ${seen.sequence})`);
          return;
        }
        if (reviewed) {
          this.audit('duplicate', null, d.tenantId, `event ${event.id} already in review`);
          return;
        }
        const target = await this.target(d.tenantId, d.period);
        if ('review' in target) {
          await this.review(event.id, 0, 'sla-credit', d.tenantId, d.creditId, d.period, target.review, sequence);
          return;
        }
        await this.trx
          .insertInto(this.t('billing_sla_credits'))
          .values({
            event_id: event.id,
            credit_id: d.creditId,
            tenant_id: d.tenantId,
            period: d.period,
            metric: d.metric,
            measured: d.measured,
            target: d.target,
            credit_percent: d.creditPercent,
            invoice_id: target.invoiceId,
            sequence,
            assigned_sequence: sequence,
          })
          .execute();
        this.audit('applied', target.invoiceId, d.tenantId);
        return;
      }
      case 'InvoiceFinalized':
        await this.finalize(stored as StoredEvent<'InvoiceFinalized'>, issuerCheck);
        return;
      case 'SubtaskPlaced':
      case 'SubtaskStarted':
      case 'SubtaskCompleted':
      case 'SubtaskFailed':
      case 'SubtaskPreempted':
      case 'LeaseGranted':
      case 'LeaseReleased':
      case 'ExternalAllocationStarted':
      case 'ExternalAllocationStopped':
        await this.followAllocation(stored);
        return;
      case 'NodeLost': {
        const rows = await this.trx.selectFrom(this.t('billing_open_allocations')).selectAll().where('node_id', '=', event.data.nodeId).where('ended', '=', false).orderBy('allocation_key').execute();
        for (const row of rows) await this.saveAllocation(loseNode(allocationFromRow(row)), sequence);
        return;
      }
      case 'BillingPeriodClosed':
        await this.closePeriod(stored as StoredEvent<'BillingPeriodClosed'>);
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

  private async finalize({ event, sequence }: StoredEvent<'InvoiceFinalized'>, issuerCheck: boolean): Promise<void> {
    const d = event.data;
    const row = await this.store.invoice(d.invoiceId);
    if (!row) throw new Error(`InvoiceFinalized ${event.id}: invoice ${d.invoiceId} is unknown`);
    if (row.status !== 'draft') {
      // A second finalization of one invoice cannot be applied: the first one stands (same in every rebuild).
      this.repeated(row.finalized_event_id === event.id, row.invoice_id, row.tenant_id, `finalization of ${row.invoice_id} (first: ${row.number}, event ${row.finalized_event_id})`);
      return;
    }
    const { issuer, sequence: numberSequence } = parseInvoiceNumber(d.number);
    if (issuerCheck) {
      const last = this.lastNumbers.get(issuer) ?? (await this.store.lastNumberSequence(issuer));
      if (numberSequence !== last + 1) throw new Error(`InvoiceFinalized ${event.id}: number ${d.number} is not the next of issuer ${issuer} (last ${last}); numbers must be gapless`);
    }
    // What arrived after the cutoff is late for this invoice: it moves on as adjustments.
    const late = await this.trx.selectFrom(this.t('billing_usage_pieces')).selectAll().where('invoice_id', '=', row.invoice_id).where('assigned_sequence', '>', d.cutoffSequence).execute();
    const lateCredits = await this.trx.selectFrom(this.t('billing_sla_credits')).selectAll().where('invoice_id', '=', row.invoice_id).where('assigned_sequence', '>', d.cutoffSequence).execute();

    const finalizedAtMs = Date.parse(d.finalizedAt);
    const inputs = await this.store.inputs(row, { cutoff: d.cutoffSequence, atMs: finalizedAtMs, issuer, finalization: { number: d.number, finalizedAt: d.finalizedAt } });
    // In the document layout its hash was taken of (invoices finalized before layout 2 keep layout 1).
    const built = buildFinalizedInvoice(inputs, d.sha256);
    const sha256 = documentSha256(built.document);
    if (sha256 !== d.sha256) {
      throw new Error(`InvoiceFinalized ${event.id}: invoice ${d.invoiceId} rebuilt to SHA-256 ${sha256}, the event says ${d.sha256}`);
    }
    if (built.document.validationErrors.length) throw new Error(`InvoiceFinalized ${event.id}: invoice ${d.invoiceId} has validation errors`);
    await this.trx
      .updateTable(this.t('billing_invoices'))
      .set({
        status: 'finalized',
        issuer,
        number: d.number,
        number_sequence: numberSequence,
        cutoff_sequence: d.cutoffSequence,
        finalized_sequence: sequence,
        finalized_event_id: event.id,
        finalized_at: d.finalizedAt,
        price_book_version: d.priceBookVersion,
        sha256,
        document: canonicalJson(built.document),
        total: built.document.total,
        actor: d.actor,
        reason: d.reason,
      })
      .where('invoice_id', '=', row.invoice_id)
      .execute();
    this.invoicesChanged();
    if (issuerCheck) this.lastNumbers.set(issuer, numberSequence);
    this.audit('applied', row.invoice_id, row.tenant_id, `finalized as ${d.number}`);
    for (const p of built.document.prepaidCredits) {
      await this.trx
        .insertInto(this.t('billing_grant_usage'))
        .values({ invoice_id: row.invoice_id, grant_id: p.grantId, tenant_id: row.tenant_id, amount: p.amount, finalized_sequence: sequence })
        .execute();
    }
    // Late pieces move with their rated parts.
    await this.flushParts();
    for (const piece of late) {
      const target = await this.target(row.tenant_id, piece.service_period, true);
      if ('review' in target) {
        await this.trx.deleteFrom(this.t('billing_usage_pieces')).where('event_id', '=', piece.event_id).where('piece', '=', piece.piece).execute();
        await this.trx.deleteFrom(this.t('billing_rated_parts')).where('event_id', '=', piece.event_id).where('piece', '=', piece.piece).execute();
        await this.review(piece.event_id, piece.piece, 'usage', row.tenant_id, piece.usage_id, piece.service_period, target.review, sequence, reviewedPiece(piece as PieceRow));
        continue;
      }
      await this.trx
        .updateTable(this.t('billing_usage_pieces'))
        .set({ invoice_id: target.invoiceId, assigned_sequence: sequence })
        .where('event_id', '=', piece.event_id)
        .where('piece', '=', piece.piece)
        .execute();
      await this.trx.updateTable(this.t('billing_rated_parts')).set({ invoice_id: target.invoiceId }).where('event_id', '=', piece.event_id).where('piece', '=', piece.piece).execute();
    }
    for (const credit of lateCredits) {
      const target = await this.target(row.tenant_id, credit.period);
      if ('review' in target) {
        await this.trx.deleteFrom(this.t('billing_sla_credits')).where('event_id', '=', credit.event_id).execute();
        await this.review(credit.event_id, 0, 'sla-credit', row.tenant_id, credit.credit_id, credit.period, target.review, sequence);
        continue;
      }
      await this.trx.updateTable(this.t('billing_sla_credits')).set({ invoice_id: target.invoiceId, assigned_sequence: sequence }).where('event_id', '=', credit.event_id).execute();
    }
  }
}

/** What splitting reads of a usage record (a `billing_usage` row). */
interface UsageToSplit {
  event_id: string;
  usage_id: string;
  gpu_model: string;
  capacity_type: string;
  gpus: number;
  start_ms: number;
  end_ms: number;
  interrupted: boolean;
  sequence: number;
  accrued_from_ms: number | null;
  accrued_until_ms: number | null;
}

/** What a review-queue item of usage keeps of the piece it would bill. */
export type ReviewedPiece = Pick<PieceRow, 'gpu_model' | 'capacity_type' | 'gpus' | 'start_ms' | 'end_ms' | 'allocation_start_ms' | 'allocation_end_ms' | 'interrupted'>;

export function reviewedPiece(p: ReviewedPiece): ReviewedPiece {
  return { gpu_model: p.gpu_model, capacity_type: p.capacity_type, gpus: p.gpus, start_ms: p.start_ms, end_ms: p.end_ms, allocation_start_ms: p.allocation_start_ms, allocation_end_ms: p.allocation_end_ms, interrupted: p.interrupted };
}

export interface RatedPartRow {
  event_id: string;
  piece: number;
  part: number;
  invoice_id: string;
  service_period: string;
  gpu_model: string;
  capacity_type: string;
  interrupted: boolean;
  price_book_id: string | null;
  version: number | null;
  start_ms: number;
  billed_gpu_ms: number;
}

/** One piece rated by libs/money into the rows of `billing_rated_parts` (a part without a price keeps a null version). */
export function ratedPartRows(p: PieceRow, timeline: PriceTimeline): RatedPartRow[] {
  const piece = usagePieceOf(p, false);
  const { parts, errors } = billedParts([piece], timeline);
  const common = { event_id: p.event_id, piece: p.piece, invoice_id: p.invoice_id!, service_period: p.service_period, gpu_model: p.gpu_model, capacity_type: p.capacity_type, interrupted: p.interrupted };
  const rows: RatedPartRow[] = [];
  for (const part of parts) rows.push({ ...common, part: rows.length, price_book_id: part.version.priceBookId, version: part.version.version, start_ms: part.startMs, billed_gpu_ms: part.billedGpuMs });
  for (const error of errors) rows.push({ ...common, part: rows.length, price_book_id: null, version: null, start_ms: error.atMs, billed_gpu_ms: 0 });
  // A piece always has a part 0, so counting parts 0 counts pieces. A piece that bills nothing at a
  // price (a zero-length piece at an allocation's end whose rounding is nil) names that price: a
  // part without a version means a missing price (the held-invoices gauge counts them).
  if (rows.length === 0) {
    const found = timeline.priceAt(p.start_ms, p.gpu_model, p.capacity_type);
    rows.push({ ...common, part: 0, price_book_id: found?.version.priceBookId ?? null, version: found?.version.version ?? null, start_ms: p.start_ms, billed_gpu_ms: 0 });
  }
  return rows;
}

export function billingProjection(name = BILLING_PROJECTION): Projection {
  return {
    name,
    types: new Set(['TenantCreated', 'PriceBookPublished', 'UsageRecorded', 'SlaCreditIssued', 'InvoiceFinalized', ...FINANCE_ACTION_TYPES, ...ALLOCATION_EVENT_TYPES, 'NodeLost', 'BillingPeriodClosed', ...LIFECYCLE_ACTION_TYPES, ...REVIEW_DECISION_TYPES]),
    // Money: an undecodable event of these types stops the ledger (and any rebuild) rather than being skipped.
    stopsOnUndecodable: true,
    async apply(trx: ProjectionTransaction, events: StoredEvent[], context: ProjectionContext): Promise<void> {
      const writer = new LedgerWriter(trx, (table) => context.table(table));
      for (const stored of events) await writer.apply(stored, true);
      await writer.flush();
    },
  };
}

/** Periods between two billing periods (b − a), for reports. */
export function periodsBetween(a: string, b: string): number {
  return periodIndex(b) - periodIndex(a);
}

export type { InvoiceRow };
