import type { DomainEvent, EventData } from '@fastgpu/contracts';
import type { BuildEvent, Decider } from '@fastgpu/eventsourcing';
import { formatMoney, money, Money, sumMoney } from '@fastgpu/money';
import { decidePay, decideVoid, type InvoiceFacts } from './invoice.decider';

/**
 * Settling a finalized invoice (pay or void) as a decider over the invoice's own subject
 * (`…billing.invoice.<id>`), which holds its `InvoiceFinalized`, payments, voids and credit notes:
 * the kernel (libs/eventsourcing `handleCommand`) reads them, decides, appends against the subject's
 * last sequence and decides again when another action landed first (JetStream 10071) — so a pay
 * racing a void or a credit note is decided on what landed, never on a stale balance. The rules
 * are invoice.decider.ts's (`decidePay`, `decideVoid`); the amount paid is what is left to pay:
 * the finalized document's amount due less the credit notes and payments on the subject.
 *
 * What the frozen document says (amount due, number, currency) arrives in the command: it never
 * changes after finalization. Pure: time, ids and the actor arrive in the command too.
 */
export interface InvoiceSubjectState {
  finalized: boolean;
  settlement: 'paid' | 'void' | null;
  /** Credit notes' totals on the subject (what reduces the balance due). */
  credited: string;
  /** Payments recorded on the subject. */
  paid: string;
  /** The draft was deleted (InvoiceDraftDeleted). */
  deleted: boolean;
  /** The invoice replacing this one, once it was reissued (InvoiceReissued). */
  replacedBy: string | null;
}

/** What settling needs of the invoice subject's state (the one state every invoice decider folds). */
export type SettlementState = InvoiceSubjectState;

/** The invoice subject before any event: a draft (drafts have nothing on their subject). */
export const invoiceSubjectInitialState = (): InvoiceSubjectState => ({ finalized: false, settlement: null, credited: '0', paid: '0', deleted: false, replacedBy: null });

/**
 * The one fold of an invoice's subject, shared by the settlement decider and the lifecycle decider
 * (invoice-lifecycle.decider.ts), so both decide on the same reading of the same events.
 */
export function evolveInvoiceSubject(state: InvoiceSubjectState, event: DomainEvent): InvoiceSubjectState {
  switch (event.type) {
    case 'InvoiceFinalized':
      return { ...state, finalized: true };
    case 'InvoicePaid':
      return { ...state, settlement: state.settlement ?? 'paid', paid: sumMoney([money(state.paid), money(event.data.amount)]).toString() };
    case 'InvoiceVoided':
      return { ...state, settlement: 'void' };
    case 'CreditNoteIssued':
      return { ...state, credited: sumMoney([money(state.credited), money(event.data.amount)]).toString() };
    case 'InvoiceDraftDeleted':
      return { ...state, deleted: true };
    case 'InvoiceReissued':
      return { ...state, replacedBy: event.data.replacementInvoiceId };
    default:
      return state;
  }
}

interface Common {
  eventId: string;
  invoiceId: string;
  tenantId: string;
  /** The finalized document's total (what credit notes may not exceed) and currency. */
  total: string;
  currency: string;
  at: string;
  actor: string;
  reason: string;
}

export type SettlementCommand = ({ kind: 'pay'; amountDue: string; paymentReference?: string } & Common) | ({ kind: 'void'; number: string } & Common);

function factsOf(state: SettlementState, command: SettlementCommand): InvoiceFacts {
  return { status: state.finalized ? 'finalized' : 'draft', settlement: state.settlement, validationErrors: 0, total: command.total, credited: state.credited, lineCount: 0 };
}

/** What is left to pay: the amount due less credit notes and payments, never negative (a credit beyond it is owed back). */
export function balanceDue(state: SettlementState, amountDue: string, currency: string): string {
  const left = state.settlement === 'void' ? money(0) : Money.max(money(amountDue).minus(state.credited).minus(state.paid), 0);
  return formatMoney(left, currency);
}

export function settlementDecider(build: BuildEvent): Decider<SettlementState, SettlementCommand, DomainEvent> {
  return {
    initialState: invoiceSubjectInitialState,
    decide(command, state) {
      const meta = { id: command.eventId, time: command.at, tenantId: command.tenantId, correlationId: command.eventId };
      switch (command.kind) {
        case 'pay': {
          decidePay(factsOf(state, command));
          const data: EventData<'InvoicePaid'> = {
            invoiceId: command.invoiceId,
            tenantId: command.tenantId,
            amount: balanceDue(state, command.amountDue, command.currency),
            currency: command.currency,
            ...(command.paymentReference ? { paymentReference: command.paymentReference } : {}),
            paidAt: command.at,
            actor: command.actor,
            reason: command.reason,
          };
          return [build('InvoicePaid', data, meta)];
        }
        case 'void': {
          decideVoid(factsOf(state, command));
          return [build('InvoiceVoided', { invoiceId: command.invoiceId, tenantId: command.tenantId, number: command.number, voidedAt: command.at, actor: command.actor, reason: command.reason }, meta)];
        }
        default: {
          const unreachable: never = command;
          throw new Error(`unknown settlement command ${JSON.stringify(unreachable)}`);
        }
      }
    },
    evolve: evolveInvoiceSubject,
  };
}
