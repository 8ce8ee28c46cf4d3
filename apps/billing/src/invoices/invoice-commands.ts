import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { sql } from 'kysely';
import { deriveId, nameId, type DomainEvent, type EventData } from '@fastgpu/contracts';
import { handleCommand, JetStreamEventStream, type BuildEvent, type Decider } from '@fastgpu/eventsourcing';
import { addPeriods, periodOf } from '@fastgpu/money';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { BILLING_OPTIONS, type BillingOptions } from '../billing.config';
import { BillingLedger } from '../ledger/billing.ledger';
import { formatInvoiceNumber } from '../ledger/invoice-ids';
import { successorInvoiceId } from '../ledger/invoice-lifecycle';
import { financeAction } from '../finance-actions/finance-actions';
import { FinanceActionPublisher, type Actor } from '../finance-actions/finance-action-publisher';
import type { BillingTenantState } from '../finance-actions/billing-tenant.evolve';
import { documentSha256, type InvoiceDocument } from './invoice-document';
import { buildInvoice } from './invoice-builder';
import { BillingRejection, decideFinalize, type DraftUsageDisposition } from './invoice.decider';
import { settlementDecider, type InvoiceSubjectState, type SettlementCommand } from './invoice-settlement.decider';
import { lifecycleDecider, type LifecycleCommand } from './invoice-lifecycle.decider';
import { billingPeriodDecider, periodCloseCuts, type ClosePeriodCommand } from './billing-period.decider';
import type { InvoiceView } from './invoice.reader';
import { InvoiceNotFound, InvoiceQueries } from './invoice-queries';

/**
 * Invoice commands, the shell around the pure invoice deciders: loads the invoice as the ledger
 * applied it, runs the command on the event-sourcing kernel (libs/eventsourcing `handleCommand` on
 * the invoice's subject: decided on the subject's events, appended against its last sequence and
 * decided again when another action landed first) and waits for the ledger to apply it before
 * answering (read-your-writes). Pay and void are invoice-settlement.decider.ts's; finalization,
 * draft deletion and reissue invoice-lifecycle.decider.ts's; the close of a period
 * (`BillingPeriodClosed`, the cut of running allocations, on the tenant's billing subject)
 * billing-period.decider.ts's. Finalizations are serialized: their numbers are taken in order and
 * the ledger checks they stay gapless. Reads are invoice-queries.ts; tenant settings (grants, tax
 * rates, billing profiles) tenant-settings.service.ts; credit notes credit-notes.service.ts.
 */
@Injectable()
export class InvoiceCommands implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('billing');
  private finalizeChain: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private readonly store: JetStreamEventStream;
  private readonly settlement: Decider<InvoiceSubjectState, SettlementCommand, DomainEvent>;
  private readonly lifecycle: Decider<InvoiceSubjectState, LifecycleCommand, DomainEvent>;
  private readonly billingPeriod: Decider<BillingTenantState, ClosePeriodCommand, DomainEvent>;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(BillingLedger) private readonly ledger: BillingLedger,
    @Inject(BILLING_OPTIONS) readonly options: BillingOptions,
    @Inject(InvoiceQueries) private readonly queries: InvoiceQueries,
    @Inject(FinanceActionPublisher) private readonly actions: FinanceActionPublisher,
  ) {
    this.store = new JetStreamEventStream(runtime.bus, actions.publisher);
    const build: BuildEvent = (type, data, meta) => actions.publisher.build(type, data, meta);
    this.settlement = settlementDecider(build);
    this.lifecycle = lifecycleDecider(build);
    this.billingPeriod = actions.decider(billingPeriodDecider);
  }

  /** The invoice's subject: its aggregate for the kernel. */
  private subject(invoiceId: string): string {
    return this.runtime.bus.topology.subjects.invoice(invoiceId);
  }

  onModuleInit(): void {
    if (this.options.autoFinalizeIntervalMs > 0) {
      // One pass at a time: a pass that outlasts the interval (waiting for the issuer lock another
      // instance holds, or for the ledger) is not joined by the next, which would queue without bound.
      let running = false;
      this.timer = setInterval(() => {
        if (running) return;
        running = true;
        this.finalizeDue(this.runtime.clock.now(), { actor: 'billing-scheduler', reason: 'grace period after the billing period elapsed' })
          .catch((error: Error) => this.logger.warn(`automatic finalization: ${error.message}`))
          .finally(() => (running = false));
      }, this.options.autoFinalizeIntervalMs);
      this.timer.unref();
    }
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private nowMs(): number {
    return this.runtime.clock.now().getTime();
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
    const eventId = nameId('InvoiceFinalized', invoiceId);
    const finalized: EventData<'InvoiceFinalized'> = {
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
    };
    // Only one InvoiceFinalized may ever stand on an invoice's subject: the decider refuses a second.
    const { version } = await handleCommand(this.store, this.lifecycle, this.subject(invoiceId), { kind: 'finalize', eventId, finalized, validationErrors: built.document.validationErrors.length });
    await this.ledger.waitFor(version);
    return built.document;
  }

  /**
   * Closes a tenant's period (`BillingPeriodClosed`, billing-period.decider.ts on the tenant's
   * billing subject): the ledger cuts every running allocation at the period's end onto its
   * invoices. Only once the period has ended at `at` (the command's time; the cut itself is at the
   * period's end, from event times), and only when some running allocation has time before that end
   * not cut yet; waits until the ledger applied it. True when a close was appended.
   */
  async closePeriod(tenantId: string, period: string, who: Actor, at: Date): Promise<boolean> {
    const cutoff = await this.ledger.catchUp();
    const store = this.ledger.store();
    const tenant = await store.tenant(tenantId);
    if (!tenant) return false;
    const running = await store.runningAllocations(tenantId);
    // Most finalizations have nothing to cut: only then is the log asked.
    if (!periodCloseCuts(running, period, tenant.billingTimeZone, at.getTime())) return false;
    const eventId = nameId('BillingPeriodClosed', tenantId, period, String(cutoff));
    const command: ClosePeriodCommand = { kind: 'closePeriod', eventId, tenantId, period, billingTimeZone: tenant.billingTimeZone, running, at: at.toISOString(), ...who };
    const { events } = await this.actions.onBillingTenant(this.billingPeriod, tenantId, command);
    return events.length > 0;
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
      // Most ticks have nothing to cut: only then is the log asked.
      // Under the issuer lock, as finalizations: another billing instance closing the same period
      // first is seen (closePeriod catches up after taking it), so the period is closed once.
      const tenantRunning = running.filter((a) => a.tenantId === tenantId);
      if (periodCloseCuts(tenantRunning, period, tenant.billingTimeZone, asOf.getTime())) await this.serialized(() => this.withIssuerLock(() => this.closePeriod(tenantId, period, who, asOf)));
    }
  }

  /** Finalizes every draft whose grace period ended at `asOf` (a command time, not the processing clock). */
  async finalizeDue(asOf: Date, who: Actor): Promise<{ finalized: Array<{ invoiceId: string; number: string }>; skipped: Array<{ invoiceId: string; reason: string }> }> {
    await this.ledger.catchUp();
    await this.closeDue(asOf, who);
    const due = await this.queries.reader().dueDrafts(asOf.getTime(), this.options.graceMs);
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

  /**
   * The invoice as of everything on its subject (finalization and earlier finance actions), and
   * that subject's last sequence, to publish the next action against.
   */
  private async invoiceState(invoiceId: string): Promise<{ view: InvoiceView; subjectSequence: number }> {
    const subjectSequence = await this.actions.lastSubjectSequence(this.runtime.bus.topology.subjects.invoice(invoiceId));
    await this.ledger.waitFor(subjectSequence);
    return { view: await this.queries.view(invoiceId, null), subjectSequence };
  }

  /**
   * Records payment of what is left to pay: the amount due less the credit notes issued against the
   * invoice (`balanceDue`), so a payment after a credit note is not the amount due the credit note
   * already took off.
   */
  async pay(invoiceId: string, who: Actor, input: { paymentReference?: string; actionId?: string }): Promise<InvoiceView> {
    // One payment per invoice: without a key the id is the invoice's, so a re-sent publish is a duplicate.
    const eventId = this.actions.actionId('InvoicePaid', invoiceId, input.actionId, () => nameId('InvoicePaid', invoiceId));
    const { view } = await this.invoiceState(invoiceId);
    if (input.actionId && this.actions.retried(await financeAction(this.ledger.store(), eventId), { reason: who.reason, paymentReference: input.paymentReference })) return view;
    const { version } = await handleCommand(this.store, this.settlement, this.subject(invoiceId), {
      kind: 'pay',
      eventId,
      invoiceId,
      tenantId: view.row.tenant_id,
      total: view.document.total,
      amountDue: view.document.amountDue,
      currency: view.document.currency,
      ...(input.paymentReference ? { paymentReference: input.paymentReference } : {}),
      at: this.actions.nowIso(),
      ...who,
    });
    await this.ledger.waitFor(version);
    return this.queries.view(invoiceId, null);
  }

  async void(invoiceId: string, who: Actor, input: { actionId?: string }): Promise<InvoiceView> {
    const eventId = this.actions.actionId('InvoiceVoided', invoiceId, input.actionId, () => nameId('InvoiceVoided', invoiceId));
    const { view } = await this.invoiceState(invoiceId);
    if (input.actionId && this.actions.retried(await financeAction(this.ledger.store(), eventId), { reason: who.reason })) return view;
    const command: SettlementCommand = { kind: 'void', eventId, invoiceId, tenantId: view.row.tenant_id, number: view.row.number ?? '', total: view.document.total, currency: view.document.currency, at: this.actions.nowIso(), ...who };
    const { version } = await handleCommand(this.store, this.settlement, this.subject(invoiceId), command);
    await this.ledger.waitFor(version);
    return this.queries.view(invoiceId, null);
  }

  /**
   * Deletes a draft (`InvoiceDraftDeleted`): no number is used; its usage moves to a new draft of
   * the period or is discarded, as finance chooses. Decided on the invoice's subject, so a deletion
   * and a finalization cannot both land.
   */
  async deleteDraft(invoiceId: string, who: Actor, input: { usage: DraftUsageDisposition; actionId?: string }): Promise<{ deletedInvoiceId: string; usage: DraftUsageDisposition; replacementInvoiceId: string | null }> {
    const eventId = this.actions.actionId('InvoiceDraftDeleted', invoiceId, input.actionId, () => nameId('InvoiceDraftDeleted', invoiceId));
    const answer = (payload: Record<string, unknown>) => ({ deletedInvoiceId: invoiceId, usage: payload.usage as DraftUsageDisposition, replacementInvoiceId: payload.usage === 'move' ? (payload.replacementInvoiceId as string) : null });
    const existing = await financeAction(this.ledger.store(), eventId);
    if (existing && input.actionId) return answer(this.actions.retried(existing, { usage: input.usage, reason: who.reason })!.payload);
    // A deleted draft has left the invoices: answered 409 here, before looking it up would answer 404.
    if (existing || (await this.isDeleted(invoiceId))) throw new BillingRejection(409, 'invoice_deleted', 'the draft was already deleted');
    const { view } = await this.invoiceState(invoiceId);
    const command: LifecycleCommand = {
      kind: 'deleteDraft',
      eventId,
      invoiceId,
      tenantId: view.row.tenant_id,
      period: view.row.period,
      usage: input.usage,
      replacementInvoiceId: successorInvoiceId(view.row.tenant_id, view.row.period, invoiceId),
      at: this.actions.nowIso(),
      ...who,
    };
    const [deleted] = await this.runLifecycle(invoiceId, command, eventId);
    return answer((deleted as DomainEvent<'InvoiceDraftDeleted'>).data);
  }

  private async isDeleted(invoiceId: string): Promise<boolean> {
    return (await this.runtime.db.selectFrom('billing_deleted_invoices').select('invoice_id').where('invoice_id', '=', invoiceId).executeTakeFirst()) !== undefined;
  }

  /**
   * Void with reissue: the invoice is voided (`InvoiceVoided`, when not void yet: it must be unpaid)
   * and replaced (`InvoiceReissued`) by a new draft of its period holding what it billed, rated
   * with the price versions in force now; finalizing the replacement gives it the next number, and
   * it names the invoice it replaces. Both events are one decision on the invoice's subject.
   */
  async reissue(invoiceId: string, who: Actor, input: { actionId?: string }): Promise<{ voidedInvoiceId: string; number: string; replacementInvoiceId: string }> {
    const eventId = this.actions.actionId('InvoiceReissued', invoiceId, input.actionId, () => nameId('InvoiceReissued', invoiceId));
    const answer = (payload: Record<string, unknown>) => ({ voidedInvoiceId: invoiceId, number: payload.number as string, replacementInvoiceId: payload.replacementInvoiceId as string });
    const existing = input.actionId ? await financeAction(this.ledger.store(), eventId) : undefined;
    if (existing) return answer(this.actions.retried(existing, { reason: who.reason })!.payload);
    const { view } = await this.invoiceState(invoiceId);
    const command: LifecycleCommand = {
      kind: 'reissue',
      eventId,
      voidEventId: deriveId(eventId, 'void'),
      invoiceId,
      tenantId: view.row.tenant_id,
      period: view.row.period,
      // A draft has no number: the decider refuses it before the number is used.
      number: view.row.number ?? '',
      replacementInvoiceId: successorInvoiceId(view.row.tenant_id, view.row.period, invoiceId),
      at: this.actions.nowIso(),
      ...who,
    };
    const events = await this.runLifecycle(invoiceId, command, eventId);
    return answer((events.at(-1) as DomainEvent<'InvoiceReissued'>).data);
  }

  /**
   * Runs a deletion or a reissue on the kernel and waits for the ledger; 409 `invoice_changed` when
   * the ledger did not record the action (it put it in the review queue, whose reason is the answer).
   */
  private async runLifecycle(invoiceId: string, command: LifecycleCommand, eventId: string): Promise<readonly DomainEvent[]> {
    const { events, version } = await handleCommand(this.store, this.lifecycle, this.subject(invoiceId), command);
    await this.ledger.waitFor(version);
    if (!(await financeAction(this.ledger.store(), eventId))) {
      const review = await this.runtime.db.selectFrom('billing_review_queue').select('reason').where('event_id', '=', eventId).executeTakeFirst();
      throw new BillingRejection(409, 'invoice_changed', review?.reason ?? `${events.at(-1)?.type ?? command.kind} was not applied`);
    }
    return events;
  }
}
