import { allocationEventTypes, type StoredEvent } from '@fastgpu/contracts';
import type { Projection, ProjectionContext, ProjectionTransaction } from '@fastgpu/messaging';
import { periodIndex } from '@fastgpu/money';
import { FINANCE_ACTION_TYPES } from '../finance-actions/finance-actions';
import { LIFECYCLE_ACTION_TYPES } from './invoice-lifecycle';
import { LedgerWriter } from './ledger-writer';
import { REVIEW_DECISION_TYPES } from './review-decisions';

/**
 * The billing ledger: folds the domain stream into tenants, price versions, usage split into
 * billing-period pieces on the invoice that bills them, SLA credits, and invoices. Every row is
 * keyed by its event id (or the entity's own id) and inserted with ON CONFLICT DO NOTHING, so a
 * redelivered or republished event is counted once, forever.
 *
 * Where each reason to change lives: the batch writer and the dispatch of each event to its
 * handler, the invoice a piece goes to (drafts, late usage, the review queue), the audit trail
 * (ledger-writer.ts); usage and SLA credits (usage-ledger.ts); accrual at period close
 * (accrual-ledger.ts over the pure rules of accrual.ts); finalization, checked against the event's
 * SHA-256 (finalization-ledger.ts); rating (rated-parts.ts); finance actions
 * (finance-actions.projection.ts); draft deletion and reissue (invoice-lifecycle.ts); review-queue
 * decisions (review-decisions.ts); the rows (billing-tables.ts) and reads (billing.store.ts).
 */
export const BILLING_PROJECTION = 'billing-ledger';

export function billingProjection(name = BILLING_PROJECTION): Projection {
  return {
    name,
    types: new Set(['TenantCreated', 'PriceBookPublished', 'UsageRecorded', 'SlaCreditIssued', 'InvoiceFinalized', ...FINANCE_ACTION_TYPES, ...allocationEventTypes, 'NodeLost', 'BillingPeriodClosed', ...LIFECYCLE_ACTION_TYPES, ...REVIEW_DECISION_TYPES]),
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

