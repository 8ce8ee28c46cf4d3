import type { DomainEvent, EventData } from '@fastgpu/contracts';
import type { BuildEvent, Decider } from '@fastgpu/eventsourcing';
import { BillingRejection, decideDeleteDraft, decideFinalize, decideReissue, type DraftUsageDisposition, type InvoiceFacts } from './invoice.decider';
import { evolveInvoiceSubject, invoiceSubjectInitialState, type InvoiceSubjectState } from './invoice-settlement.decider';

/**
 * An invoice's lifecycle as a decider over its own subject (`…billing.invoice.<id>`): finalizing a
 * draft (`InvoiceFinalized`), deleting a draft (`InvoiceDraftDeleted`) and reissuing a finalized
 * invoice (`InvoiceVoided` when not void yet, then `InvoiceReissued`). The kernel (libs/eventsourcing
 * `handleCommand`) reads the subject, decides, appends against its last sequence and decides again
 * when another action landed first (JetStream 10071), so a deletion and a finalization can never
 * both land, and one InvoiceFinalized at most ever stands on an invoice. The rules are
 * invoice.decider.ts's; the state is the one fold of the invoice subject (evolveInvoiceSubject),
 * the same one settling (pay, void) reads.
 *
 * What the shell computed from the ledger arrives in the command: the finalized document's facts
 * (number, totals, SHA-256: the frozen bytes are built from the ledger, never here) and the ids.
 * Pure: time, ids and the actor arrive in the command too.
 */
interface Audit {
  /** The event's id (derived from the Idempotency-Key, or from the invoice). */
  eventId: string;
  invoiceId: string;
  tenantId: string;
  at: string;
  actor: string;
  reason: string;
}

export type LifecycleCommand =
  | {
      kind: 'finalize';
      eventId: string;
      /** InvoiceFinalized as built from the ledger's draft: the document's number, totals and hash. */
      finalized: EventData<'InvoiceFinalized'>;
      /** The built document's validation errors (usage without a price): such a draft stays a draft. */
      validationErrors: number;
    }
  | ({ kind: 'deleteDraft'; period: string; usage: DraftUsageDisposition; replacementInvoiceId: string } & Audit)
  | ({ kind: 'reissue'; voidEventId: string; period: string; number: string; replacementInvoiceId: string } & Audit);

function factsOf(state: InvoiceSubjectState, validationErrors = 0): InvoiceFacts {
  return { status: state.finalized ? 'finalized' : 'draft', settlement: state.settlement, validationErrors, total: '0', credited: state.credited, lineCount: 0 };
}

const deletedDraft = () => new BillingRejection(409, 'invoice_deleted', 'the draft was already deleted');

export function lifecycleDecider(build: BuildEvent): Decider<InvoiceSubjectState, LifecycleCommand, DomainEvent> {
  const meta = (id: string, time: string, tenantId: string) => ({ id, time, tenantId, correlationId: id });
  return {
    initialState: invoiceSubjectInitialState,
    decide(command, state) {
      switch (command.kind) {
        case 'finalize': {
          if (state.deleted) throw deletedDraft();
          decideFinalize(factsOf(state, command.validationErrors));
          const { finalized } = command;
          return [build('InvoiceFinalized', finalized, meta(command.eventId, finalized.finalizedAt, finalized.tenantId))];
        }
        case 'deleteDraft': {
          if (state.deleted) throw deletedDraft();
          decideDeleteDraft(factsOf(state));
          const data: EventData<'InvoiceDraftDeleted'> = {
            invoiceId: command.invoiceId,
            tenantId: command.tenantId,
            period: command.period,
            usage: command.usage,
            replacementInvoiceId: command.replacementInvoiceId,
            deletedAt: command.at,
            actor: command.actor,
            reason: command.reason,
          };
          return [build('InvoiceDraftDeleted', data, meta(command.eventId, command.at, command.tenantId))];
        }
        case 'reissue': {
          decideReissue({ ...factsOf(state), replacedBy: state.replacedBy });
          const events: DomainEvent[] = [];
          // A reissue voids the invoice first when it is not void yet (decideReissue: only when unpaid).
          if (state.settlement !== 'void') {
            const voided = { invoiceId: command.invoiceId, tenantId: command.tenantId, number: command.number, voidedAt: command.at, actor: command.actor, reason: command.reason };
            events.push(build('InvoiceVoided', voided, meta(command.voidEventId, command.at, command.tenantId)));
          }
          const reissued: EventData<'InvoiceReissued'> = {
            invoiceId: command.invoiceId,
            tenantId: command.tenantId,
            period: command.period,
            number: command.number,
            replacementInvoiceId: command.replacementInvoiceId,
            reissuedAt: command.at,
            actor: command.actor,
            reason: command.reason,
          };
          events.push(build('InvoiceReissued', reissued, meta(command.eventId, command.at, command.tenantId)));
          return events;
        }
        default: {
          const unreachable: never = command;
          throw new Error(`unknown lifecycle command ${JSON.stringify(unreachable)}`);
        }
      }
    },
    evolve: evolveInvoiceSubject,
  };
}
