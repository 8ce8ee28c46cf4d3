import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { sql } from 'kysely';
import { deriveId, nameId, newEntityId, type DomainEvent, type EventData } from '@fastgpu/contracts';
import { notFoundError } from '@fastgpu/eventsourcing';
import { isWrongLastSequence, type EventPublisher } from '@fastgpu/messaging';
import { addPeriods, formatMoney, money, Money, periodBounds, periodIndex, periodOf, type PriceVersion } from '@fastgpu/money';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import { BILLING_OPTIONS, type BillingOptions } from '../billing.config';
import { BillingLedger } from '../ledger/billing.ledger';
import { BillingMetrics } from '../ledger/billing.metrics';
import { formatInvoiceNumber } from '../ledger/billing.projection';
import { accrualRange } from '../ledger/accrual';
import { financeAction, requestDiffers, type FinanceAction, type FinanceActionKind, type FinanceActionRow } from '../finance-actions/finance-actions';
import { buildFinalizedInvoice, buildInvoice, documentSha256, type InvoiceDocument, type InvoiceLine } from './invoice-document';
import { BillingRejection, decideDeleteDraft, decideFinalize, decidePay, decideReissue, decideVoid, type DraftUsageDisposition } from './invoice.decider';
import { successorInvoiceId, type LifecycleActionKind } from '../ledger/invoice-lifecycle';
import { factsOf, InvoiceReader, statusOf, type InvoiceView } from './invoice.reader';
import type { BillingProfileRequest, BillingProfileResponse } from '../billing-profiles/billing-profiles.schema';

export class InvoiceNotFound extends Error {}
export class ReviewItemNotFound extends Error {}

/** Review-queue rows one read returns, at most. */
export const REVIEW_QUEUE_ROWS_MAX = 1000;

/**
 * Idempotency-Key scope of grants and tax rates: the key alone (the tenant is part of the request
 * body, so a key reused for another tenant is another request: 409). Actions recorded before this
 * scope (keyed by tenant and key) are still found, so a retry across the change answers them.
 */
const TENANT_SETTINGS_SCOPE = 'tenant-settings';

export interface Actor {
  actor: string;
  reason: string;
}

export interface WhatIfLine {
  kind: string;
  servicePeriod: string;
  gpuModel: string | null;
  capacityType: string | null;
  tier: number | null;
  reference: string | null;
  currentAmount: string;
  whatIfAmount: string;
  difference: string;
}

/**
 * The billing shell: loads invoices, decides with the pure decider, then publishes the event
 * (`InvoiceFinalized` or a finance action: `InvoicePaid`, `InvoiceVoided`, `CreditGranted`,
 * `TaxRatesSet`; credit notes are credit-notes.service.ts's) and waits for the ledger to apply it
 * before answering (read-your-writes). Actions on an invoice are published with the invoice
 * subject's expected last sequence, so a decision taken on a stale state answers 409.
 * Finalizations are serialized: their numbers are taken in order and the ledger checks they stay
 * gapless.
 */
@Injectable()
export class InvoicesService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('billing');
  private readonly publisher: EventPublisher;
  private finalizeChain: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(BillingLedger) private readonly ledger: BillingLedger,
    @Inject(BILLING_OPTIONS) readonly options: BillingOptions,
    @Inject(BillingMetrics) private readonly metrics: BillingMetrics,
  ) {
    this.publisher = publisherFor(runtime, 'billing');
  }

  onModuleInit(): void {
    if (this.options.autoFinalizeIntervalMs > 0) {
      this.timer = setInterval(() => {
        this.finalizeDue(this.runtime.clock.now(), { actor: 'billing-scheduler', reason: 'grace period after the billing period elapsed' }).catch((error: Error) => this.logger.warn(`automatic finalization: ${error.message}`));
      }, this.options.autoFinalizeIntervalMs);
      this.timer.unref();
    }
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }

  reader(): InvoiceReader {
    return new InvoiceReader(this.ledger.store(), this.options.issuer);
  }

  private nowMs(): number {
    return this.runtime.clock.now().getTime();
  }

  /** An invoice as the caller may see it: another tenant's invoice does not exist for them. */
  async view(invoiceId: string, tenantScope: string | null): Promise<InvoiceView> {
    const row = await this.ledger.store().invoice(invoiceId);
    if (!row || (tenantScope !== null && row.tenant_id !== tenantScope)) throw new InvoiceNotFound(invoiceId);
    return this.reader().view(row, this.ledger.runner.lastSequence, this.nowMs());
  }

  /** Serializes finalizations in this process (numbers are taken one at a time). */
  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const next = this.finalizeChain.then(work, work);
    this.finalizeChain = next.catch(() => undefined);
    return next;
  }

  async finalize(invoiceId: string, who: Actor, at: Date): Promise<InvoiceDocument> {
    if (at.getTime() > this.nowMs() + 1000) throw new BillingRejection(422, 'finalized_in_future', 'an invoice cannot be finalized at a time in the future', 'at');
    return this.serialized(() => this.withIssuerLock(() => this.finalizeNow(invoiceId, who, at)));
  }

  /** Across billing processes on one Postgres, one finalization at a time (PGlite is one process already). */
  private async withIssuerLock<T>(work: () => Promise<T>): Promise<T> {
    if (!this.runtime.config.databaseUrl) return work();
    return this.runtime.db.connection().execute(async (conn) => {
      await sql`SELECT pg_advisory_lock(hashtext(${`fastgpu.billing.issuer.${this.options.issuer}`}))`.execute(conn);
      try {
        return await work();
      } finally {
        await sql`SELECT pg_advisory_unlock(hashtext(${`fastgpu.billing.issuer.${this.options.issuer}`}))`.execute(conn);
      }
    });
  }

  private async finalizeNow(invoiceId: string, who: Actor, at: Date): Promise<InvoiceDocument> {
    const draft = await this.ledger.store().invoice(invoiceId);
    // Running allocations are cut at the period's end onto this invoice first (accrual).
    if (draft?.status === 'draft') await this.closePeriod(draft.tenant_id, draft.period, who, at);
    const cutoff = await this.ledger.catchUp();
    const store = this.ledger.store();
    const row = await store.invoice(invoiceId);
    if (!row) throw new InvoiceNotFound(invoiceId);
    if (row.status !== 'draft') decideFinalize({ status: row.status, settlement: null, validationErrors: 0, total: row.total ?? '0', credited: '0', lineCount: 0 });
    const number = formatInvoiceNumber(this.options.issuer, (await store.lastNumberSequence(this.options.issuer)) + 1);
    const finalizedAt = at.toISOString();
    const built = buildInvoice(await store.inputs(row, { cutoff, atMs: at.getTime(), issuer: this.options.issuer, finalization: { number, finalizedAt } }));
    decideFinalize({ status: 'draft', settlement: null, validationErrors: built.document.validationErrors.length, total: built.document.total, credited: '0', lineCount: built.document.lines.length });
    const eventId = nameId('InvoiceFinalized', invoiceId);
    const event = this.publisher.build(
      'InvoiceFinalized',
      {
        invoiceId,
        tenantId: row.tenant_id,
        period: row.period,
        number,
        total: built.document.total,
        currency: built.document.currency,
        cutoffSequence: cutoff,
        priceBookVersion: built.priceBookVersion,
        sha256: documentSha256(built.document),
        actor: who.actor,
        reason: who.reason,
        finalizedAt,
      },
      { id: eventId, time: finalizedAt, tenantId: row.tenant_id, correlationId: eventId },
    );
    let published;
    try {
      // Only one InvoiceFinalized may ever stand on an invoice's subject.
      published = await this.publisher.publish(event, { expectedLastSubjectSequence: 0 });
    } catch (error) {
      if (isWrongLastSequence(error)) throw new BillingRejection(409, 'invoice_finalized', 'the invoice was finalized concurrently');
      throw error;
    }
    if (published.duplicate) throw new BillingRejection(409, 'invoice_finalized', 'the invoice is already finalized');
    await this.ledger.waitFor(published.sequence);
    return built.document;
  }

  /**
   * Closes a tenant's period (`BillingPeriodClosed`): the ledger cuts every running allocation at
   * the period's end onto its invoices. Only once the period has ended at `at` (the command's time;
   * the cut itself is at the period's end, from event times), and only when some running
   * allocation has time before that end not cut yet; waits until the ledger applied it.
   */
  async closePeriod(tenantId: string, period: string, who: Actor, at: Date): Promise<boolean> {
    const cutoff = await this.ledger.catchUp();
    const store = this.ledger.store();
    const tenant = await store.tenant(tenantId);
    if (!tenant) return false;
    const periodEndMs = periodBounds(period, tenant.billingTimeZone).endMs;
    if (at.getTime() < periodEndMs) return false;
    if (!(await store.runningAllocations(tenantId)).some((a) => accrualRange(a, periodEndMs) !== null)) return false;
    const eventId = nameId('BillingPeriodClosed', tenantId, period, String(cutoff));
    const closedAt = at.toISOString();
    const event = this.publisher.build(
      'BillingPeriodClosed',
      { tenantId, period, closedAt, actor: who.actor, reason: `${who.reason}: running allocations accrued to the end of ${period}` },
      { id: eventId, time: closedAt, tenantId, correlationId: eventId },
    );
    const published = await this.publisher.publish(event);
    await this.ledger.waitFor(published.sequence);
    return true;
  }

  /**
   * Closes, for every tenant with running allocations, the last period whose grace ended at
   * `asOf`, so those allocations are on the drafts `finalizeDue` then finalizes (an allocation
   * running for a whole month has no usage record yet, so without the close no draft would exist).
   */
  private async closeDue(asOf: Date, who: Actor): Promise<void> {
    const store = this.ledger.store();
    const running = await store.runningAllocations();
    const tenants = [...new Set(running.map((a) => a.tenantId).filter((t): t is string => t !== null))];
    for (const tenantId of tenants) {
      const tenant = await store.tenant(tenantId);
      if (!tenant) continue;
      const period = addPeriods(periodOf(asOf.getTime() - this.options.graceMs, tenant.billingTimeZone), -1);
      const periodEndMs = periodBounds(period, tenant.billingTimeZone).endMs;
      // Most ticks have nothing to cut: only then is the log asked.
      if (running.some((a) => a.tenantId === tenantId && accrualRange(a, periodEndMs) !== null)) await this.closePeriod(tenantId, period, who, asOf);
    }
  }

  /** Finalizes every draft whose grace period ended at `asOf` (a command time, not the processing clock). */
  async finalizeDue(asOf: Date, who: Actor): Promise<{ finalized: Array<{ invoiceId: string; number: string }>; skipped: Array<{ invoiceId: string; reason: string }> }> {
    await this.ledger.catchUp();
    await this.closeDue(asOf, who);
    const due = await this.reader().dueDrafts(asOf.getTime(), this.options.graceMs);
    const finalized: Array<{ invoiceId: string; number: string }> = [];
    const skipped: Array<{ invoiceId: string; reason: string }> = [];
    for (const row of due) {
      try {
        const doc = await this.finalize(row.invoice_id, who, asOf);
        finalized.push({ invoiceId: row.invoice_id, number: doc.number! });
      } catch (error) {
        skipped.push({ invoiceId: row.invoice_id, reason: (error as Error).message });
      }
    }
    return { finalized, skipped };
  }

  /** Sequence of the last event on a subject (0 when none): the state a decision is taken against. */
  private async lastSubjectSequence(subject: string): Promise<number> {
    const bus = this.runtime.bus;
    try {
      const message = await bus.jsm.streams.getMessage(bus.topology.streams.events, { last_by_subj: subject });
      return message?.seq ?? 0;
    } catch (error) {
      if (/no message found|not found/i.test((error as Error).message)) return 0;
      throw error;
    }
  }

  /**
   * Publishes a finance action and waits for the ledger to apply it (read-your-writes). With
   * `expectedLastSubjectSequence`, the action only lands if nothing else happened on its subject
   * since the state it was decided against; otherwise it answers 409 and changes nothing.
   */
  private async publishAction<K extends FinanceActionKind>(kind: K, eventId: string, data: FinanceAction<K>, time: string, expectedLastSubjectSequence?: number): Promise<number> {
    const event = this.publisher.build(kind, data, { id: eventId, time, tenantId: data.tenantId, correlationId: eventId });
    let published;
    try {
      published = await this.publisher.publish(event as DomainEvent, expectedLastSubjectSequence === undefined ? {} : { expectedLastSubjectSequence });
    } catch (error) {
      if (isWrongLastSequence(error)) throw new BillingRejection(409, 'invoice_changed', 'the invoice changed concurrently (another finance action landed first); nothing was recorded, read it again and retry');
      throw error;
    }
    await this.ledger.waitFor(published.sequence);
    return published.sequence;
  }

  /**
   * The invoice as of everything on its subject (finalization and earlier finance actions), and
   * that subject's last sequence, to publish the next action against.
   */
  private async invoiceState(invoiceId: string): Promise<{ view: InvoiceView; subjectSequence: number }> {
    const subjectSequence = await this.lastSubjectSequence(this.runtime.bus.topology.subjects.invoice(invoiceId));
    await this.ledger.waitFor(subjectSequence);
    return { view: await this.view(invoiceId, null), subjectSequence };
  }

  /**
   * The answer to a retried request: the action its Idempotency-Key already recorded, when the
   * request is the same; 409 when the key was used for another request (it is never answered with
   * the original as if it were this one).
   */
  private retried(existing: FinanceActionRow | undefined, requested: Record<string, unknown>): FinanceActionRow | undefined {
    if (!existing) return undefined;
    const field = requestDiffers(existing.payload, requested);
    if (field) {
      this.metrics.idempotencyConflicts.inc({ action: existing.kind });
      throw new BillingRejection(409, 'idempotency_key_reused', `this Idempotency-Key was used for another request (${field} differs); a new request needs a new key`, field);
    }
    this.metrics.idempotentReplays.inc({ action: existing.kind });
    return existing;
  }

  /** An action id: from the client's Idempotency-Key (a retry finds the same id), else `fallback`. */
  private actionId(kind: FinanceActionKind | LifecycleActionKind, scope: string, key: string | undefined, fallback: () => string): string {
    return key ? nameId(kind, scope, key) : fallback();
  }

  /**
   * Records payment of what is left to pay: the amount due less the credit notes issued against the
   * invoice (`balanceDue`), so a payment after a credit note is not the amount due the credit note
   * already took off.
   */
  async pay(invoiceId: string, who: Actor, input: { paymentReference?: string; actionId?: string }): Promise<InvoiceView> {
    // One payment per invoice: without a key the id is the invoice's, so a re-sent publish is a duplicate.
    const eventId = this.actionId('InvoicePaid', invoiceId, input.actionId, () => nameId('InvoicePaid', invoiceId));
    const { view, subjectSequence } = await this.invoiceState(invoiceId);
    if (input.actionId && this.retried(await financeAction(this.ledger.store(), eventId), { reason: who.reason, paymentReference: input.paymentReference })) return view;
    decidePay(factsOf(view));
    const at = this.runtime.clock.now().toISOString();
    const data: FinanceAction<'InvoicePaid'> = {
      invoiceId,
      tenantId: view.row.tenant_id,
      amount: view.balanceDue,
      currency: view.document.currency,
      ...(input.paymentReference ? { paymentReference: input.paymentReference } : {}),
      paidAt: at,
      ...who,
    };
    await this.publishAction('InvoicePaid', eventId, data, at, subjectSequence);
    return this.view(invoiceId, null);
  }

  async void(invoiceId: string, who: Actor, input: { actionId?: string }): Promise<InvoiceView> {
    const eventId = this.actionId('InvoiceVoided', invoiceId, input.actionId, () => nameId('InvoiceVoided', invoiceId));
    const { view, subjectSequence } = await this.invoiceState(invoiceId);
    if (input.actionId && this.retried(await financeAction(this.ledger.store(), eventId), { reason: who.reason })) return view;
    decideVoid(factsOf(view));
    const at = this.runtime.clock.now().toISOString();
    await this.publishAction('InvoiceVoided', eventId, { invoiceId, tenantId: view.row.tenant_id, number: view.row.number!, voidedAt: at, ...who }, at, subjectSequence);
    return this.view(invoiceId, null);
  }

  async grantCredit(input: { tenantId: string; amount: string; priority: number; expiresAt: string | null; actionId?: string } & Actor): Promise<FinanceAction<'CreditGranted'>> {
    const grantId = this.actionId('CreditGranted', TENANT_SETTINGS_SCOPE, input.actionId, newEntityId);
    const store = this.ledger.store();
    if (input.actionId) {
      const existing = this.retried((await financeAction(store, grantId)) ?? (await financeAction(store, nameId('CreditGranted', input.tenantId, input.actionId))), { tenantId: input.tenantId, amount: input.amount, priority: input.priority, expiresAt: input.expiresAt, reason: input.reason });
      if (existing) return existing.payload as FinanceAction<'CreditGranted'>;
    }
    const tenant = await store.tenant(input.tenantId);
    if (!tenant) throw new BillingRejection(422, 'unknown_tenant', `tenant ${input.tenantId} is unknown to billing`, 'tenantId');
    const amount = money(input.amount);
    if (!amount.eq(money(formatMoney(amount, tenant.currency)))) throw new BillingRejection(422, 'amount_precision', `amount must have at most the ${tenant.currency} minor digits`, 'amount');
    const at = this.runtime.clock.now().toISOString();
    const data: FinanceAction<'CreditGranted'> = {
      grantId,
      tenantId: input.tenantId,
      amount: formatMoney(amount, tenant.currency),
      currency: tenant.currency,
      priority: input.priority,
      expiresAt: input.expiresAt,
      grantedAt: at,
      actor: input.actor,
      reason: input.reason,
    };
    await this.publishAction('CreditGranted', grantId, data, at);
    return data;
  }

  async setTaxRates(input: { tenantId: string; rates: Array<{ name: string; rate: string }>; effectiveFrom?: string; actionId?: string } & Actor): Promise<FinanceAction<'TaxRatesSet'>> {
    const eventId = this.actionId('TaxRatesSet', TENANT_SETTINGS_SCOPE, input.actionId, newEntityId);
    const store = this.ledger.store();
    if (input.actionId) {
      const existing = this.retried((await financeAction(store, eventId)) ?? (await financeAction(store, nameId('TaxRatesSet', input.tenantId, input.actionId))), { tenantId: input.tenantId, rates: input.rates, effectiveFrom: input.effectiveFrom, reason: input.reason });
      if (existing) return existing.payload as FinanceAction<'TaxRatesSet'>;
    }
    const tenant = await store.tenant(input.tenantId);
    if (!tenant) throw new BillingRejection(422, 'unknown_tenant', `tenant ${input.tenantId} is unknown to billing`, 'tenantId');
    const at = this.runtime.clock.now().toISOString();
    const data: FinanceAction<'TaxRatesSet'> = {
      tenantId: input.tenantId,
      rates: input.rates,
      effectiveAt: at,
      ...(input.effectiveFrom ? { effectiveFrom: new Date(input.effectiveFrom).toISOString() } : {}),
      actor: input.actor,
      reason: input.reason,
    };
    await this.publishAction('TaxRatesSet', eventId, data, at);
    return data;
  }

  /**
   * Sets a tenant's billing profile (`TenantBillingProfileSet`): the buyer its documents name from
   * the next cutoff on (a finalized invoice keeps the one in force at its cutoff). The
   * Idempotency-Key rule of every finance route holds: the same key and request answer the profile
   * recorded, another request 409.
   */
  async setBillingProfile(input: BillingProfileRequest & { tenantId: string; actionId?: string; actor: string }): Promise<BillingProfileResponse> {
    const eventId = this.actionId('TenantBillingProfileSet', TENANT_SETTINGS_SCOPE, input.actionId, newEntityId);
    const store = this.ledger.store();
    const requested = { tenantId: input.tenantId, legalName: input.legalName, addressLines: input.addressLines, country: input.country, taxId: input.taxId, reason: input.reason };
    if (input.actionId) {
      const existing = this.retried(await financeAction(store, eventId), requested);
      if (existing) return billingProfileAnswer(existing);
    }
    if (!(await store.tenant(input.tenantId))) throw notFoundError('tenant_not_found', 'no such tenant');
    const at = this.runtime.clock.now().toISOString();
    const data: FinanceAction<'TenantBillingProfileSet'> = {
      tenantId: input.tenantId,
      legalName: input.legalName,
      addressLines: input.addressLines,
      country: input.country,
      ...(input.taxId ? { taxId: input.taxId } : {}),
      setAt: at,
      actor: input.actor,
      reason: input.reason,
    };
    await this.publishAction('TenantBillingProfileSet', eventId, data, at);
    const recorded = await financeAction(this.ledger.store(), eventId);
    if (!recorded) throw new Error(`the ledger did not record billing profile ${eventId}`);
    return billingProfileAnswer(recorded);
  }

  /** The billing profile in force for a tenant now (404 when none was set, or for another tenant's caller). */
  async billingProfile(tenantId: string, tenantScope: string | null): Promise<BillingProfileResponse> {
    if (tenantScope !== null && tenantScope !== tenantId) throw notFoundError('billing_profile_not_found', 'no billing profile for this tenant');
    await this.ledger.catchUp();
    const row = (await this.runtime.db
      .selectFrom('billing_finance_actions')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('kind', '=', 'TenantBillingProfileSet')
      .orderBy('sequence', 'desc')
      .executeTakeFirst()) as FinanceActionRow | undefined;
    if (!row) throw notFoundError('billing_profile_not_found', 'no billing profile for this tenant');
    return billingProfileAnswer(row);
  }

  /**
   * Deletes a draft (`InvoiceDraftDeleted`): no number is used; its usage moves to a new draft of
   * the period or is discarded, as finance chooses. Published against the invoice subject's last
   * sequence, so a deletion and a finalization cannot both land.
   */
  async deleteDraft(invoiceId: string, who: Actor, input: { usage: DraftUsageDisposition; actionId?: string }): Promise<{ deletedInvoiceId: string; usage: DraftUsageDisposition; replacementInvoiceId: string | null }> {
    const eventId = this.actionId('InvoiceDraftDeleted', invoiceId, input.actionId, () => nameId('InvoiceDraftDeleted', invoiceId));
    const answer = (payload: Record<string, unknown>) => ({ deletedInvoiceId: invoiceId, usage: payload.usage as DraftUsageDisposition, replacementInvoiceId: payload.usage === 'move' ? (payload.replacementInvoiceId as string) : null });
    const existing = await financeAction(this.ledger.store(), eventId);
    if (existing && input.actionId) return answer(this.retried(existing, { usage: input.usage, reason: who.reason })!.payload);
    if (existing || (await this.isDeleted(invoiceId))) throw new BillingRejection(409, 'invoice_deleted', 'the draft was already deleted');
    const { view, subjectSequence } = await this.invoiceState(invoiceId);
    decideDeleteDraft(factsOf(view));
    const at = this.runtime.clock.now().toISOString();
    const replacementInvoiceId = successorInvoiceId(view.row.tenant_id, view.row.period, invoiceId);
    const data = { invoiceId, tenantId: view.row.tenant_id, period: view.row.period, usage: input.usage, replacementInvoiceId, deletedAt: at, ...who };
    await this.publishLifecycle('InvoiceDraftDeleted', eventId, data, at, subjectSequence);
    return answer(data);
  }

  private async isDeleted(invoiceId: string): Promise<boolean> {
    return (await this.runtime.db.selectFrom('billing_deleted_invoices').select('invoice_id').where('invoice_id', '=', invoiceId).executeTakeFirst()) !== undefined;
  }

  /**
   * Void with reissue: the invoice is voided (`InvoiceVoided`, when not void yet: it must be unpaid)
   * and replaced (`InvoiceReissued`) by a new draft of its period holding what it billed, rated
   * with the price versions in force now; finalizing the replacement gives it the next number, and
   * it names the invoice it replaces.
   */
  async reissue(invoiceId: string, who: Actor, input: { actionId?: string }): Promise<{ voidedInvoiceId: string; number: string; replacementInvoiceId: string }> {
    const eventId = this.actionId('InvoiceReissued', invoiceId, input.actionId, () => nameId('InvoiceReissued', invoiceId));
    const answer = (payload: Record<string, unknown>) => ({ voidedInvoiceId: invoiceId, number: payload.number as string, replacementInvoiceId: payload.replacementInvoiceId as string });
    const existing = input.actionId ? await financeAction(this.ledger.store(), eventId) : undefined;
    if (existing) return answer(this.retried(existing, { reason: who.reason })!.payload);
    let { view, subjectSequence } = await this.invoiceState(invoiceId);
    decideReissue({ ...factsOf(view), replacedBy: view.row.replaced_by_invoice_id ?? null });
    const at = this.runtime.clock.now().toISOString();
    if (view.settlement !== 'void') {
      const voidId = deriveId(eventId, 'void');
      subjectSequence = await this.publishAction('InvoiceVoided', voidId, { invoiceId, tenantId: view.row.tenant_id, number: view.row.number!, voidedAt: at, ...who }, at, subjectSequence);
      view = await this.view(invoiceId, null);
      if (view.settlement !== 'void') throw new BillingRejection(409, 'invoice_changed', 'the invoice changed concurrently; nothing was reissued, read it again and retry');
    }
    const data = { invoiceId, tenantId: view.row.tenant_id, period: view.row.period, number: view.row.number!, replacementInvoiceId: successorInvoiceId(view.row.tenant_id, view.row.period, invoiceId), reissuedAt: at, ...who };
    await this.publishLifecycle('InvoiceReissued', eventId, data, at, subjectSequence);
    return answer(data);
  }

  /** Publishes a lifecycle event against the invoice subject's last sequence and waits for the ledger (409 when the invoice changed). */
  private async publishLifecycle<K extends 'InvoiceDraftDeleted' | 'InvoiceReissued'>(kind: K, eventId: string, data: EventData<K>, time: string, expectedLastSubjectSequence: number): Promise<void> {
    const event = this.publisher.build(kind, data, { id: eventId, time, tenantId: data.tenantId, correlationId: eventId });
    let published;
    try {
      published = await this.publisher.publish(event as DomainEvent, { expectedLastSubjectSequence });
    } catch (error) {
      if (isWrongLastSequence(error)) throw new BillingRejection(409, 'invoice_changed', 'the invoice changed concurrently (another action landed first); nothing was recorded, read it again and retry');
      throw error;
    }
    await this.ledger.waitFor(published.sequence);
    if (!(await financeAction(this.ledger.store(), eventId))) {
      const review = await this.runtime.db.selectFrom('billing_review_queue').select('reason').where('event_id', '=', eventId).executeTakeFirst();
      throw new BillingRejection(409, 'invoice_changed', review?.reason ?? `${kind} was not applied`);
    }
  }

  /** The usage records and event sequences behind one line of an invoice. */
  async evidence(invoiceId: string, lineNumber: number, tenantScope: string | null) {
    const view = await this.view(invoiceId, tenantScope);
    const built = await this.reader().build(view.row, view.document.cutoffSequence, this.nowMs());
    const line = built.document.lines[lineNumber - 1];
    if (!line) throw new InvoiceNotFound(`${invoiceId} line ${lineNumber}`);
    const usageIds = built.evidence[lineNumber - 1] ?? [];
    const usage = usageIds.length
      ? await this.runtime.db.selectFrom('billing_usage').selectAll().where('usage_id', 'in', usageIds).orderBy('sequence').execute()
      : [];
    const pieces = usageIds.length
      ? await this.runtime.db.selectFrom('billing_usage_pieces').selectAll().where('invoice_id', '=', invoiceId).where('usage_id', 'in', usageIds).orderBy('sequence').orderBy('piece').execute()
      : [];
    // An SLA credit line, or one carrying an earlier invoice's SLA credit forward: the SlaCreditIssued behind it.
    const credits = (line.kind === 'sla-credit' || line.kind === 'carried-credit') && line.reference ? await this.runtime.db.selectFrom('billing_sla_credits').selectAll().where('credit_id', '=', line.reference).execute() : [];
    const sequences = new Set<number>();
    for (const u of usage) {
      sequences.add(u.sequence);
      for (const s of u.source_sequences as number[]) sequences.add(s);
    }
    for (const c of credits) sequences.add(c.sequence);
    return {
      invoiceId,
      line,
      usage: usage.map((u) => ({
        usageId: u.usage_id,
        eventId: u.event_id,
        eventSequence: u.sequence,
        sourceSequences: u.source_sequences,
        projectId: u.project_id,
        jobId: u.job_id,
        subtaskId: u.subtask_id,
        attempt: u.attempt,
        leaseId: u.lease_id,
        gpuModel: u.gpu_model,
        capacityType: u.capacity_type,
        gpus: u.gpus,
        startAt: new Date(u.start_ms).toISOString(),
        endAt: new Date(u.end_ms).toISOString(),
        gpuMs: u.gpu_ms,
        interrupted: u.interrupted,
        pieces: pieces.filter((p) => p.usage_id === u.usage_id).map((p) => ({ servicePeriod: p.service_period, startAt: new Date(p.start_ms).toISOString(), endAt: new Date(p.end_ms).toISOString() })),
      })),
      slaCredits: credits.map((c) => ({ creditId: c.credit_id, eventId: c.event_id, eventSequence: c.sequence, period: c.period, percent: c.credit_percent })),
      eventSequences: [...sequences].sort((a, b) => a - b),
    };
  }

  /** Rates an invoice's usage under one price-book version, changing nothing, and shows the difference per line. */
  async whatIf(invoiceId: string, priceBookId: string, version: number) {
    const view = await this.view(invoiceId, null);
    const store = this.ledger.store();
    const chosen: PriceVersion | undefined = (await store.priceVersions()).find((v) => v.priceBookId === priceBookId && v.version === version);
    if (!chosen) throw new BillingRejection(422, 'unknown_price_book_version', `price book ${priceBookId} has no version ${version}`, 'version');
    if (chosen.currency !== view.document.currency) throw new BillingRejection(422, 'currency_mismatch', `price book ${priceBookId} is in ${chosen.currency}, the invoice in ${view.document.currency}`, 'priceBookId');
    const row = view.row;
    const finalized = row.status === 'finalized';
    const inputs = await store.inputs(row, {
      cutoff: finalized ? row.cutoff_sequence! : view.document.cutoffSequence,
      atMs: finalized ? Date.parse(row.finalized_at!) : this.nowMs(),
      issuer: row.issuer ?? this.options.issuer,
      finalization: finalized ? { number: row.number!, finalizedAt: row.finalized_at! } : null,
    });
    const current = (finalized ? buildFinalizedInvoice(inputs, row.sha256!) : buildInvoice(inputs)).document;
    const alternative = buildInvoice({ ...inputs, fixedVersion: chosen }).document;
    const key = (l: InvoiceLine) => [l.kind, l.servicePeriod, l.gpuModel, l.capacityType, l.tier, l.reference].join('|');
    const lines = new Map<string, WhatIfLine>();
    const zero = formatMoney(new Money(0), current.currency);
    const entry = (l: InvoiceLine): WhatIfLine => {
      let e = lines.get(key(l));
      if (!e) {
        e = { kind: l.kind, servicePeriod: l.servicePeriod, gpuModel: l.gpuModel, capacityType: l.capacityType, tier: l.tier, reference: l.reference, currentAmount: zero, whatIfAmount: zero, difference: zero };
        lines.set(key(l), e);
      }
      return e;
    };
    for (const l of current.lines) entry(l).currentAmount = formatMoney(money(entry(l).currentAmount).plus(l.amount), current.currency);
    for (const l of alternative.lines) entry(l).whatIfAmount = formatMoney(money(entry(l).whatIfAmount).plus(l.amount), current.currency);
    for (const e of lines.values()) e.difference = formatMoney(money(e.whatIfAmount).minus(e.currentAmount), current.currency);
    return {
      invoiceId,
      priceBook: { priceBookId, version },
      currency: current.currency,
      lines: [...lines.values()],
      total: { current: current.total, whatIf: alternative.total, difference: formatMoney(money(alternative.total).minus(current.total), current.currency) },
      validationErrors: alternative.validationErrors,
    };
  }

  /**
   * The review queue: every item with its decision (`status` open, billed or dismissed). Usage
   * items (`usage`, `late-usage`) name the piece they would bill; finance bills them onto an open
   * draft or dismisses them (`decideReviewItem`).
   */
  async reviewQueue(tenantId: string | null, kinds?: readonly string[]) {
    await this.ledger.catchUp();
    let query = this.runtime.db.selectFrom('billing_review_queue').selectAll();
    if (tenantId) query = query.where('tenant_id', '=', tenantId);
    if (kinds) query = query.where('kind', 'in', kinds);
    const rows = await query.orderBy('sequence').orderBy('event_id').orderBy('piece').limit(REVIEW_QUEUE_ROWS_MAX).execute();
    return rows.map((r) => ({
      kind: r.kind,
      tenantId: r.tenant_id,
      referenceId: r.reference_id,
      servicePeriod: r.service_period,
      eventId: r.event_id,
      piece: r.piece,
      eventSequence: r.sequence,
      reason: r.reason,
      status: (r.resolution ?? 'open') as 'open' | 'billed' | 'dismissed',
      resolvedInvoiceId: r.resolved_invoice_id ?? null,
      ...(r.gpu_model === null || r.start_ms === null
        ? {}
        : { gpuModel: r.gpu_model, capacityType: r.capacity_type, gpus: r.gpus, startAt: new Date(Number(r.start_ms)).toISOString(), endAt: new Date(Number(r.end_ms)).toISOString(), gpuMs: r.gpus * (Number(r.end_ms) - Number(r.start_ms)) }),
    }));
  }

  /**
   * Finance's decision on a review item of usage: bill its piece onto an open draft of its tenant
   * (`LateUsageBilled`) or dismiss it (`LateUsageDismissed`). One decision per item: its event id
   * is the item's, so a retry of the same decision answers it again and another decision is 409.
   */
  async decideReviewItem(decision: 'bill' | 'dismiss', usageEventId: string, piece: number, who: Actor, invoiceId?: string) {
    await this.ledger.catchUp();
    const db = this.runtime.db;
    const item = await db.selectFrom('billing_review_queue').selectAll().where('event_id', '=', usageEventId).where('piece', '=', piece).executeTakeFirst();
    if (!item) throw new ReviewItemNotFound(`${usageEventId}/${piece}`);
    const answer = (r: Record<string, unknown>) => ({ usageEventId, piece, status: r.resolution as string, invoiceId: (r.resolved_invoice_id as string | null) ?? null });
    const wanted = decision === 'bill' ? 'billed' : 'dismissed';
    if (item.resolution !== null) {
      if (item.resolution === wanted && (decision === 'dismiss' || item.resolved_invoice_id === invoiceId)) return answer(item);
      throw new BillingRejection(409, 'review_item_decided', `the item was already ${item.resolution}${item.resolved_invoice_id ? ` onto ${item.resolved_invoice_id}` : ''}`);
    }
    if (item.kind !== 'usage' && item.kind !== 'late-usage') throw new BillingRejection(409, 'not_usage', `a ${item.kind} item is not billed or dismissed; it is resolved by its own means`);
    if (decision === 'bill') {
      const invoice = await this.ledger.store().invoice(invoiceId!);
      if (!invoice || invoice.tenant_id !== item.tenant_id || invoice.status !== 'draft' || invoice.replaced_by_invoice_id) {
        throw new BillingRejection(422, 'invoice_not_open', `invoice ${invoiceId} is not an open draft of tenant ${item.tenant_id}`, 'invoiceId');
      }
    }
    const at = this.runtime.clock.now().toISOString();
    const eventId = nameId('ReviewDecision', usageEventId, String(piece));
    const common = { tenantId: item.tenant_id, usageEventId, piece, ...who };
    const event =
      decision === 'bill'
        ? this.publisher.build('LateUsageBilled', { ...common, invoiceId: invoiceId!, billedAt: at }, { id: eventId, time: at, tenantId: item.tenant_id, correlationId: eventId })
        : this.publisher.build('LateUsageDismissed', { ...common, dismissedAt: at }, { id: eventId, time: at, tenantId: item.tenant_id, correlationId: eventId });
    const published = await this.publisher.publish(event);
    await this.ledger.waitFor(published.sequence);
    const after = await db.selectFrom('billing_review_queue').selectAll().where('event_id', '=', usageEventId).where('piece', '=', piece).executeTakeFirstOrThrow();
    if (after.resolution !== wanted || (decision === 'bill' && after.resolved_invoice_id !== invoiceId)) {
      throw new BillingRejection(409, 'review_item_decided', after.resolution ? `the item was already ${after.resolution}` : 'the decision was not applied; read the item again');
    }
    return answer(after);
  }

  /** Every invoice of a period, as documents (drafts built as of the ledger's sequence). */
  async periodDocuments(period: string, tenantId: string | null): Promise<InvoiceDocument[]> {
    periodIndex(period);
    return this.reader().periodDocuments(period, tenantId ?? undefined, this.ledger.runner.lastSequence, this.nowMs());
  }
}

/** A recorded `TenantBillingProfileSet` as the profile routes answer it. */
function billingProfileAnswer(row: FinanceActionRow): BillingProfileResponse {
  const p = row.payload as FinanceAction<'TenantBillingProfileSet'>;
  return { tenantId: p.tenantId, legalName: p.legalName, addressLines: p.addressLines, country: p.country, taxId: p.taxId ?? null, setAt: p.setAt, actor: p.actor, reason: p.reason, eventId: row.event_id, eventSequence: Number(row.sequence) };
}

export function summary(view: InvoiceView) {
  const d = view.document;
  return {
    invoiceId: d.invoiceId,
    tenantId: d.tenant.tenantId,
    period: d.period,
    status: statusOf(view),
    number: d.number,
    revision: d.revision,
    currency: d.currency,
    subtotal: d.subtotal,
    total: d.total,
    amountDue: d.amountDue,
    credited: formatMoney(money(view.credited), d.currency),
    /** What is left to pay: the amount due less the credit notes, never negative. */
    balanceDue: view.balanceDue,
    finalizedAt: d.finalizedAt,
    cutoffSequence: d.cutoffSequence,
    priceBookVersion: view.row.price_book_version,
    sha256: view.row.sha256,
    validationErrors: d.validationErrors.length,
  };
}
