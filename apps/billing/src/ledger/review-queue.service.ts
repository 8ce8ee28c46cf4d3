import { Inject, Injectable } from '@nestjs/common';
import { nameId, type DomainEvent } from '@fastgpu/contracts';
import type { Decider } from '@fastgpu/eventsourcing';
import { gpuMs } from '@fastgpu/money';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { BillingLedger } from './billing.ledger';
import { BillingRejection } from '../invoices/invoice.decider';
import { FinanceActionPublisher, type Actor } from '../finance-actions/finance-action-publisher';
import type { BillingTenantState } from '../finance-actions/billing-tenant.evolve';
import { reviewDecisionDecider, type ReviewDecisionCommand } from './review-decision.decider';

export class ReviewItemNotFound extends Error {}

/** Review-queue rows one read returns, at most. */
export const REVIEW_QUEUE_ROWS_MAX = 1000;

/**
 * The review queue (docs/billing.md, "Late usage in the review queue"): what the ledger would not
 * bill or apply automatically, and finance's decision on usage items, published as
 * `LateUsageBilled` / `LateUsageDismissed` (review-decision.decider.ts) and applied by the ledger
 * (review-decisions.ts).
 */
@Injectable()
export class ReviewQueueService {
  private readonly decider: Decider<BillingTenantState, ReviewDecisionCommand, DomainEvent>;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(BillingLedger) private readonly ledger: BillingLedger,
    @Inject(FinanceActionPublisher) private readonly actions: FinanceActionPublisher,
  ) {
    this.decider = actions.decider(reviewDecisionDecider);
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
      ...(r.gpu_model === null || r.capacity_type === null || r.gpus === null || r.start_ms === null || r.end_ms === null
        ? {}
        : { gpuModel: r.gpu_model, capacityType: r.capacity_type, gpus: r.gpus, startAt: new Date(Number(r.start_ms)).toISOString(), endAt: new Date(Number(r.end_ms)).toISOString(), gpuMs: gpuMs(r.gpus, Number(r.start_ms), Number(r.end_ms)) }),
    }));
  }

  /**
   * Finance's decision on a review item of usage: bill its piece onto an open draft of its tenant
   * (`LateUsageBilled`) or dismiss it (`LateUsageDismissed`), decided by review-decision.decider.ts
   * on the tenant's billing subject. One decision per item: its event id is the item's, so a retry
   * of the same decision answers it again and another decision is 409.
   */
  async decideReviewItem(decision: 'bill' | 'dismiss', usageEventId: string, piece: number, who: Actor, invoiceId?: string) {
    await this.ledger.catchUp();
    const db = this.runtime.db;
    const item = await db.selectFrom('billing_review_queue').selectAll().where('event_id', '=', usageEventId).where('piece', '=', piece).executeTakeFirst();
    if (!item) throw new ReviewItemNotFound(`${usageEventId}/${piece}`);
    const answer = (r: { resolution: string | null; resolved_invoice_id: string | null }) => ({ usageEventId, piece, status: r.resolution as string, invoiceId: r.resolved_invoice_id ?? null });
    const common = {
      eventId: nameId('ReviewDecision', usageEventId, String(piece)),
      usageEventId,
      piece,
      item: { kind: item.kind, tenantId: item.tenant_id, resolution: item.resolution, resolvedInvoiceId: item.resolved_invoice_id },
      at: this.actions.nowIso(),
      ...who,
    };
    let command: ReviewDecisionCommand = { kind: 'dismiss', ...common };
    if (decision === 'bill') {
      const invoice = await this.ledger.store().invoice(invoiceId!);
      const invoiceOpen = invoice !== undefined && invoice.tenant_id === item.tenant_id && invoice.status === 'draft' && !invoice.replaced_by_invoice_id;
      command = { kind: 'bill', ...common, invoiceId: invoiceId!, invoiceOpen };
    }
    await this.actions.onBillingTenant(this.decider, item.tenant_id, command);
    const after = await db.selectFrom('billing_review_queue').selectAll().where('event_id', '=', usageEventId).where('piece', '=', piece).executeTakeFirstOrThrow();
    if (after.resolution !== (decision === 'bill' ? 'billed' : 'dismissed') || (decision === 'bill' && after.resolved_invoice_id !== invoiceId)) {
      throw new BillingRejection(409, 'review_item_decided', after.resolution ? `the item was already ${after.resolution}` : 'the decision was not applied; read the item again');
    }
    return answer(after);
  }
}
