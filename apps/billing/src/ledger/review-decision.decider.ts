import type { DomainEvent } from '@fastgpu/contracts';
import type { BuildEvent, Decider } from '@fastgpu/eventsourcing';
import { BillingRejection } from '../invoices/invoice.decider';
import { billingTenantInitialState, evolveBillingTenant, reviewItemKey, type BillingTenantState } from '../finance-actions/billing-tenant.evolve';

/**
 * Finance's decision on a review item of usage as a decider over the tenant's billing subject
 * (`…billing.tenant.<tenantId>`): bill its piece onto an open draft of the tenant
 * (`LateUsageBilled`) or dismiss it (`LateUsageDismissed`). One decision per item: the same
 * decision again decides nothing (the shell answers what was recorded), another is refused 409,
 * whether the ledger has applied the first already (the item's resolution, from the command) or
 * it is only on the subject (another decision landed first). Only usage items are decided, and an
 * item is billed only onto an open draft of its tenant. What only the ledger knows arrives in the
 * command: the item and the invoice; the decision's id, time and actor too.
 */
export interface ReviewItemFacts {
  kind: string;
  tenantId: string;
  /** The ledger's resolution of the item, null while it is open. */
  resolution: string | null;
  resolvedInvoiceId: string | null;
}

interface DecisionCommon {
  /** nameId('ReviewDecision', usageEventId, piece): the item's, so one decision per item. */
  eventId: string;
  usageEventId: string;
  piece: number;
  item: ReviewItemFacts;
  at: string;
  actor: string;
  reason: string;
}

export type ReviewDecisionCommand =
  | ({ kind: 'bill'; invoiceId: string; /** Whether the invoice is an open draft of the item's tenant (not finalized, not replaced). */ invoiceOpen: boolean } & DecisionCommon)
  | ({ kind: 'dismiss' } & DecisionCommon);

const RESOLUTION_OF = { bill: 'billed', dismiss: 'dismissed' } as const;
/** Review-queue kinds finance can bill or dismiss (the ledger applies decisions on these only, review-decisions.ts). */
export const USAGE_KINDS: ReadonlySet<string> = new Set(['usage', 'late-usage']);

export function reviewDecisionDecider(build: BuildEvent): Decider<BillingTenantState, ReviewDecisionCommand, DomainEvent> {
  return {
    initialState: billingTenantInitialState,
    decide(command, state) {
      const { item } = command;
      const invoiceId = command.kind === 'bill' ? command.invoiceId : null;
      if (item.resolution !== null) {
        if (item.resolution === RESOLUTION_OF[command.kind] && (command.kind === 'dismiss' || item.resolvedInvoiceId === invoiceId)) return [];
        throw new BillingRejection(409, 'review_item_decided', `the item was already ${item.resolution}${item.resolvedInvoiceId ? ` onto ${item.resolvedInvoiceId}` : ''}`);
      }
      if (!USAGE_KINDS.has(item.kind)) throw new BillingRejection(409, 'not_usage', `a ${item.kind} item is not billed or dismissed; it is resolved by its own means`);
      const decided = state.decisions.get(reviewItemKey(command.usageEventId, command.piece));
      if (decided) {
        if (decided.decision === command.kind && decided.invoiceId === invoiceId) return [];
        throw new BillingRejection(409, 'review_item_decided', `the item was already ${RESOLUTION_OF[decided.decision]}${decided.invoiceId ? ` onto ${decided.invoiceId}` : ''}`);
      }
      const meta = { id: command.eventId, time: command.at, tenantId: item.tenantId, correlationId: command.eventId };
      const common = { tenantId: item.tenantId, usageEventId: command.usageEventId, piece: command.piece, actor: command.actor, reason: command.reason };
      switch (command.kind) {
        case 'bill':
          if (!command.invoiceOpen) throw new BillingRejection(422, 'invoice_not_open', `invoice ${command.invoiceId} is not an open draft of tenant ${item.tenantId}`, 'invoiceId');
          return [build('LateUsageBilled', { ...common, invoiceId: command.invoiceId, billedAt: command.at }, meta)];
        case 'dismiss':
          return [build('LateUsageDismissed', { ...common, dismissedAt: command.at }, meta)];
        default: {
          const unreachable: never = command;
          throw new Error(`unknown review decision ${JSON.stringify(unreachable)}`);
        }
      }
    },
    evolve: evolveBillingTenant,
  };
}
