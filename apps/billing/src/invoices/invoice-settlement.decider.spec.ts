/**
 * Proves the settlement decider as given (the invoice subject's events) / when (pay or void) /
 * then (the event decided, or the refusal): a finalized invoice is paid once, for what is left
 * after the credit notes on its subject (so a pay decided again after a credit note landed pays
 * the new balance), and never when void; it is voided only when unpaid; a draft is neither. The
 * refusals are invoice.decider.ts's, with their HTTP status.
 */
import { describe, expect, it } from 'vitest';
import { makeEvent, subjectFor, topology, type DomainEvent } from '@fastgpu/contracts';
import type { BuildEvent } from '@fastgpu/eventsourcing';
import { refusalOf } from './refusal.testing';
import { settlementDecider, type SettlementCommand } from './invoice-settlement.decider';

const topo = topology('spec');
const build: BuildEvent = (type, data, meta) => makeEvent(type, data, { ...meta, source: 'billing' }, subjectFor(topo, type, data));
const decider = settlementDecider(build);
const at = '2026-11-05T10:00:00.000Z';
const meta = (id: string) => ({ id, time: at, tenantId: 'acme', correlationId: id });
const ids = { finalized: '0190d000-0000-7000-8000-000000000001', note: '0190d000-0000-7000-8000-000000000002', paid: '0190d000-0000-7000-8000-000000000003', voided: '0190d000-0000-7000-8000-000000000004' };
const finalized = build('InvoiceFinalized', { invoiceId: 'inv-1', tenantId: 'acme', period: '2026-10', number: 'FGPU-000001', total: '24.00', currency: 'USD', cutoffSequence: 10, priceBookVersion: 1, sha256: 'a'.repeat(64), actor: 'k', reason: 'month end', finalizedAt: at }, meta(ids.finalized));
const creditNote = build('CreditNoteIssued', { creditNoteId: 'cn-1', number: 'CN-FGPU-000001', invoiceId: 'inv-1', tenantId: 'acme', amount: '6.00', currency: 'USD', issuedAt: at, actor: 'k', reason: 'goodwill' }, meta(ids.note));
const common = { invoiceId: 'inv-1', tenantId: 'acme', total: '24.00', currency: 'USD', at, actor: 'k', reason: 'settled' };
const pay: SettlementCommand = { kind: 'pay', eventId: ids.paid, amountDue: '24.00', ...common };
const voidIt: SettlementCommand = { kind: 'void', eventId: ids.voided, number: 'FGPU-000001', ...common };
const decide = (given: readonly DomainEvent[], command: SettlementCommand) => decider.decide(command, given.reduce(decider.evolve, decider.initialState()));
const refused = (given: readonly DomainEvent[], command: SettlementCommand) => refusalOf(decider, given, command);

describe('settlement decider', () => {
  it('pays a finalized invoice for its amount due', () => {
    const [paid] = decide([finalized], pay) as [DomainEvent<'InvoicePaid'>];
    expect([paid.type, paid.id, paid.data.amount, paid.data.currency]).toEqual(['InvoicePaid', ids.paid, '24.00', 'USD']);
  });
  it('pays what is left after the credit notes on the subject (decided again after one landed)', () => {
    const [paid] = decide([finalized, creditNote], pay) as [DomainEvent<'InvoicePaid'>];
    expect(paid.data.amount).toBe('18.00');
  });
  it('pays once, and never a void invoice or a draft', () => {
    const [paid] = decide([finalized], pay);
    expect(refused([finalized, paid!], pay)).toEqual([409, 'invoice_paid']);
    const [voided] = decide([finalized], voidIt);
    expect(refused([finalized, voided!], pay)).toEqual([409, 'invoice_void']);
    expect(refused([], pay)).toEqual([409, 'invoice_draft']);
  });
  it('voids a finalized, unpaid invoice once, under its number', () => {
    const [voided] = decide([finalized], voidIt) as [DomainEvent<'InvoiceVoided'>];
    expect([voided.type, voided.data.number]).toEqual(['InvoiceVoided', 'FGPU-000001']);
    expect(refused([finalized, voided], voidIt)).toEqual([409, 'invoice_void']);
    const [paid] = decide([finalized], pay);
    expect(refused([finalized, paid!], voidIt)).toEqual([409, 'invoice_paid']);
    expect(refused([], voidIt)).toEqual([409, 'invoice_draft']);
  });
});
