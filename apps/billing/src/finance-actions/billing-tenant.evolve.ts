import type { DomainEvent } from '@fastgpu/contracts';

/**
 * The one fold of a tenant's billing subject (`…billing.tenant.<tenantId>`), which holds the
 * tenant's settings (`CreditGranted`, `TaxRatesSet`, `TenantBillingProfileSet`), the closes of its
 * periods (`BillingPeriodClosed`) and finance's decisions on its review items (`LateUsageBilled`,
 * `LateUsageDismissed`). The deciders of that subject (tenant-settings.decider.ts,
 * billing-period.decider.ts, review-decision.decider.ts) all decide on this reading of it, as the
 * invoice deciders share the fold of the invoice subject.
 */
export interface BillingTenantState {
  /** Ids of the events on the subject: a command whose event is there already has landed (a retry, or another instance first). */
  eventIds: ReadonlySet<string>;
  /** Finance's decision on each review item (`<usageEventId>/<piece>`), as the subject holds it. */
  decisions: ReadonlyMap<string, ReviewDecisionRecord>;
}

export interface ReviewDecisionRecord {
  decision: 'bill' | 'dismiss';
  /** The invoice a billed item was put on; null for a dismissal. */
  invoiceId: string | null;
}

/** The key of a review item: the usage event it came from and its period piece. */
export const reviewItemKey = (usageEventId: string, piece: number): string => `${usageEventId}/${piece}`;

export const billingTenantInitialState = (): BillingTenantState => ({ eventIds: new Set(), decisions: new Map() });

export function evolveBillingTenant(state: BillingTenantState, event: DomainEvent): BillingTenantState {
  switch (event.type) {
    case 'CreditGranted':
    case 'TaxRatesSet':
    case 'TenantBillingProfileSet':
    case 'BillingPeriodClosed':
      return { ...state, eventIds: new Set(state.eventIds).add(event.id) };
    case 'LateUsageBilled':
    case 'LateUsageDismissed': {
      const d = event.data;
      const record: ReviewDecisionRecord = event.type === 'LateUsageBilled' ? { decision: 'bill', invoiceId: event.data.invoiceId } : { decision: 'dismiss', invoiceId: null };
      const key = reviewItemKey(d.usageEventId, d.piece);
      // The first decision on an item is the one that stands: the decider appends no second one (a
      // log written before it may hold one, which the ledger applied only when the first was refused).
      const decisions = state.decisions.has(key) ? state.decisions : new Map(state.decisions).set(key, record);
      return { eventIds: new Set(state.eventIds).add(event.id), decisions };
    }
    default:
      return state;
  }
}
