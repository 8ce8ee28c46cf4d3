/**
 * Proves the invoice lifecycle decider as given (the invoice subject's events) / when (finalize,
 * delete the draft, reissue) / then (the events decided, or the refusal with its HTTP status):
 * a draft (nothing on its subject) is finalized once, with the InvoiceFinalized the shell built
 * (its number and hash untouched), and never with validation errors nor once deleted; only a draft
 * is deleted, once; a finalized, unpaid invoice is reissued as a void and a reissue in one decision,
 * a void one as a reissue alone, and never a draft, a paid invoice or one reissued already. Ids
 * come from the command, so a decision taken again is the same events.
 */
import { describe, expect, it } from 'vitest';
import { makeEvent, subjectFor, topology, type DomainEvent, type EventData } from '@fastgpu/contracts';
import { spec, type BuildEvent } from '@fastgpu/eventsourcing';
import { lifecycleDecider, type LifecycleCommand } from './invoice-lifecycle.decider';
import { refusalOf } from './refusal.testing';

const topo = topology('spec');
const build: BuildEvent = (type, data, meta) => makeEvent(type, data, { ...meta, source: 'billing' }, subjectFor(topo, type, data));
const decider = lifecycleDecider(build);
const at = '2026-11-05T10:00:00.000Z';
const meta = (id: string) => ({ id, time: at, tenantId: 'acme', correlationId: id });
const ids = {
  finalized: '0190d000-0000-7000-8000-000000000001',
  paid: '0190d000-0000-7000-8000-000000000002',
  voided: '0190d000-0000-7000-8000-000000000003',
  deleted: '0190d000-0000-7000-8000-000000000004',
  reissued: '0190d000-0000-7000-8000-000000000005',
  reissueVoid: '0190d000-0000-7000-8000-000000000006',
};
const who = { actor: 'finance-key', reason: 'month end' };
const finalizedData: EventData<'InvoiceFinalized'> = { invoiceId: 'inv-1', tenantId: 'acme', period: '2026-10', number: 'FGPU-000001', total: '24.00', currency: 'USD', cutoffSequence: 10, priceBookVersion: 1, sha256: 'a'.repeat(64), ...who, finalizedAt: at };
const finalize = (validationErrors = 0): LifecycleCommand => ({ kind: 'finalize', eventId: ids.finalized, finalized: finalizedData, validationErrors });
const deleteDraft: LifecycleCommand = { kind: 'deleteDraft', eventId: ids.deleted, invoiceId: 'inv-1', tenantId: 'acme', period: '2026-10', usage: 'move', replacementInvoiceId: 'inv-2', at, ...who };
const reissue: LifecycleCommand = { kind: 'reissue', eventId: ids.reissued, voidEventId: ids.reissueVoid, invoiceId: 'inv-1', tenantId: 'acme', period: '2026-10', number: 'FGPU-000001', replacementInvoiceId: 'inv-2', at, ...who };

const finalized = build('InvoiceFinalized', finalizedData, meta(ids.finalized));
const paid = build('InvoicePaid', { invoiceId: 'inv-1', tenantId: 'acme', amount: '24.00', currency: 'USD', paidAt: at, ...who }, meta(ids.paid));
const voided = build('InvoiceVoided', { invoiceId: 'inv-1', tenantId: 'acme', number: 'FGPU-000001', voidedAt: at, ...who }, meta(ids.voided));
const deleted = build('InvoiceDraftDeleted', { invoiceId: 'inv-1', tenantId: 'acme', period: '2026-10', usage: 'move', replacementInvoiceId: 'inv-2', deletedAt: at, ...who }, meta(ids.deleted));
const reissued = build('InvoiceReissued', { invoiceId: 'inv-1', tenantId: 'acme', period: '2026-10', number: 'FGPU-000001', replacementInvoiceId: 'inv-2', reissuedAt: at, ...who }, meta(ids.reissued));
const reissueVoided = build('InvoiceVoided', { invoiceId: 'inv-1', tenantId: 'acme', number: 'FGPU-000001', voidedAt: at, ...who }, meta(ids.reissueVoid));

const refused = (given: readonly DomainEvent[], command: LifecycleCommand) => refusalOf(decider, given, command);

describe('invoice lifecycle decider', () => {
  it('finalizes a draft with the InvoiceFinalized the shell built, its number and hash untouched', () => {
    spec(decider).given([]).when(finalize()).then([finalized]);
    expect(finalized).toMatchObject({ id: ids.finalized, subject: topo.subjects.invoice('inv-1'), data: { number: 'FGPU-000001', sha256: 'a'.repeat(64) } });
  });

  it('finalizes once: an invoice finalized already (concurrently too) is refused', () => {
    expect(refused([finalized], finalize())).toEqual([409, 'invoice_finalized']);
    expect(refused([finalized, paid], finalize())).toEqual([409, 'invoice_finalized']);
  });

  it('keeps a draft with validation errors a draft (422), and never finalizes a deleted one', () => {
    expect(refused([], finalize(2))).toEqual([422, 'invoice_invalid']);
    expect(refused([deleted], finalize())).toEqual([409, 'invoice_deleted']);
  });

  it('deletes a draft once, and never a finalized invoice', () => {
    spec(decider).given([]).when(deleteDraft).then([deleted]);
    expect(refused([deleted], deleteDraft)).toEqual([409, 'invoice_deleted']);
    expect(refused([finalized], deleteDraft)).toEqual([409, 'invoice_finalized']);
  });

  it('reissues a finalized, unpaid invoice as its void and its reissue, in one decision', () => {
    spec(decider).given([finalized]).when(reissue).then([reissueVoided, reissued]);
  });

  it('reissues a void invoice without voiding it again (also after a half-done append)', () => {
    spec(decider).given([finalized, voided]).when(reissue).then([reissued]);
    spec(decider).given([finalized, reissueVoided]).when(reissue).then([reissued]);
  });

  it('never reissues a draft, a paid invoice, or one reissued already', () => {
    expect(refused([], reissue)).toEqual([409, 'invoice_draft']);
    expect(refused([finalized, paid], reissue)).toEqual([409, 'invoice_paid']);
    expect(refused([finalized, reissueVoided, reissued], reissue)).toEqual([409, 'invoice_reissued']);
  });
});
