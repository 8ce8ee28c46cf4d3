/**
 * Proves the invoice lifecycle rules as given / when / then: draft → finalized → paid | void,
 * void only when unpaid, credit notes only against finalized invoices and never beyond what is
 * left to credit, finalization refused while usage has no price; only drafts are deleted; a reissue
 * replaces a finalized, unpaid (or void) invoice once. Each refusal names 409 or 422.
 */
import { describe, expect, it } from 'vitest';
import { BillingRejection, decideCreditNote, decideDeleteDraft, decideFinalize, decidePay, decideReissue, decideVoid, type InvoiceFacts } from './invoice.decider';

const given = (facts: Partial<InvoiceFacts>): InvoiceFacts => ({ status: 'finalized', settlement: null, validationErrors: 0, total: '100.00', credited: '0', lineCount: 1, ...facts });
function thenThrows(action: () => void, status: 409 | 422, code: string): void {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(BillingRejection);
    expect([(error as BillingRejection).status, (error as BillingRejection).code]).toEqual([status, code]);
    return;
  }
  throw new Error(`expected a ${status} ${code}`);
}

describe('finalize', () => {
  it('finalizes a valid draft', () => expect(() => decideFinalize(given({ status: 'draft' }))).not.toThrow());
  it('refuses a draft with validation errors (422)', () => thenThrows(() => decideFinalize(given({ status: 'draft', validationErrors: 2 })), 422, 'invoice_invalid'));
  it('refuses a finalized invoice (409)', () => thenThrows(() => decideFinalize(given({})), 409, 'invoice_finalized'));
});

describe('pay and void', () => {
  it('pays a finalized invoice once', () => {
    expect(() => decidePay(given({}))).not.toThrow();
    thenThrows(() => decidePay(given({ settlement: 'paid' })), 409, 'invoice_paid');
  });
  it('never pays a draft or a void invoice', () => {
    thenThrows(() => decidePay(given({ status: 'draft' })), 409, 'invoice_draft');
    thenThrows(() => decidePay(given({ settlement: 'void' })), 409, 'invoice_void');
  });
  it('voids only a finalized, unpaid invoice', () => {
    expect(() => decideVoid(given({}))).not.toThrow();
    thenThrows(() => decideVoid(given({ settlement: 'paid' })), 409, 'invoice_paid');
    thenThrows(() => decideVoid(given({ settlement: 'void' })), 409, 'invoice_void');
    thenThrows(() => decideVoid(given({ status: 'draft' })), 409, 'invoice_draft');
  });
});

describe('credit notes', () => {
  it('credits up to what is left of the total, paid or not', () => {
    expect(() => decideCreditNote(given({ credited: '40.00' }), '60.00')).not.toThrow();
    expect(() => decideCreditNote(given({ settlement: 'paid' }), '100.00')).not.toThrow();
  });
  it('refuses more than is left (422), a non-positive amount (422), a draft or void invoice (409)', () => {
    thenThrows(() => decideCreditNote(given({ credited: '40.00' }), '60.01'), 422, 'credit_exceeds_invoice');
    thenThrows(() => decideCreditNote(given({}), '0'), 422, 'amount_not_positive');
    thenThrows(() => decideCreditNote(given({ status: 'draft' }), '1'), 409, 'invoice_draft');
    thenThrows(() => decideCreditNote(given({ settlement: 'void' }), '1'), 409, 'invoice_void');
  });
});

describe('draft deletion', () => {
  it('deletes a draft, never a finalized invoice (409)', () => {
    expect(() => decideDeleteDraft(given({ status: 'draft' }))).not.toThrow();
    thenThrows(() => decideDeleteDraft(given({})), 409, 'invoice_finalized');
    thenThrows(() => decideDeleteDraft(given({ settlement: 'void' })), 409, 'invoice_finalized');
  });
});

describe('void with reissue', () => {
  const reissue = (facts: Partial<InvoiceFacts>, replacedBy: string | null = null) => () => decideReissue({ ...given(facts), replacedBy });
  it('reissues a finalized unpaid invoice, or a void one, once', () => {
    expect(reissue({})).not.toThrow();
    expect(reissue({ settlement: 'void' })).not.toThrow();
    thenThrows(reissue({ settlement: 'void' }, 'inv-2'), 409, 'invoice_reissued');
  });
  it('refuses a paid invoice and a draft (409)', () => {
    thenThrows(reissue({ settlement: 'paid' }), 409, 'invoice_paid');
    thenThrows(reissue({ status: 'draft' }), 409, 'invoice_draft');
  });
});
