/**
 * Proves the ledger's judgement of finance-action events as given (the invoice and the actions
 * the log already holds) / when (an event) / then (applied, or the reason it goes to review):
 * one settlement per invoice, void only when unpaid and under its own number, credit notes only
 * on finalized, non-void invoices, never beyond the total, numbered gapless per issuer; grants and
 * tax rates always apply. Every rebuild judges the same events the same way.
 */
import { describe, expect, it } from 'vitest';
import type { InvoiceRow } from '../ledger/billing-tables';
import type { FinanceActionKind, FinanceActionRow } from './finance-actions';
import { judgeFinanceAction } from './finance-actions.projection';

const invoice = (over: Partial<InvoiceRow> = {}): InvoiceRow => ({
  invoice_id: 'inv-1',
  tenant_id: 'acme',
  period: '2026-10',
  status: 'finalized',
  issuer: 'FGPU',
  number: 'FGPU-000007',
  number_sequence: 7,
  cutoff_sequence: 10,
  finalized_sequence: 11,
  finalized_event_id: 'e',
  finalized_at: '2026-11-04T00:00:00.000Z',
  price_book_version: 1,
  sha256: 'x',
  document: '{}',
  total: '100.00',
  actor: 'k',
  reason: 'r',
  replaces_invoice_id: null,
  replaced_by_invoice_id: null,
  replaced_sequence: null,
  ...over,
});
type Action = Pick<FinanceActionRow, 'kind' | 'payload'>;
const paid: Action = { kind: 'InvoicePaid', payload: {} };
const voided: Action = { kind: 'InvoiceVoided', payload: {} };
const credited = (amount: string): Action => ({ kind: 'CreditNoteIssued', payload: { amount } });
const when = (type: FinanceActionKind, data: Record<string, unknown> = {}) => ({ type, data: { invoiceId: 'inv-1', tenantId: 'acme', ...data } });

describe('settlement', () => {
  it('applies the first payment and refuses a second one', () => {
    expect(judgeFinanceAction(when('InvoicePaid'), invoice(), [], 0)).toBeNull();
    expect(judgeFinanceAction(when('InvoicePaid'), invoice(), [paid], 0)).toMatch(/already paid/);
  });
  it('voids only an unpaid invoice, under its own number', () => {
    expect(judgeFinanceAction(when('InvoiceVoided', { number: 'FGPU-000007' }), invoice(), [], 0)).toBeNull();
    expect(judgeFinanceAction(when('InvoiceVoided', { number: 'FGPU-000007' }), invoice(), [paid], 0)).toMatch(/paid invoice cannot be voided/);
    expect(judgeFinanceAction(when('InvoiceVoided', { number: 'FGPU-000008' }), invoice(), [], 0)).toMatch(/names number FGPU-000008/);
  });
  it('refuses actions on drafts, unknown invoices and another tenant', () => {
    expect(judgeFinanceAction(when('InvoicePaid'), invoice({ status: 'draft' }), [], 0)).toMatch(/draft/);
    expect(judgeFinanceAction(when('InvoicePaid'), undefined, [], 0)).toMatch(/unknown/);
    expect(judgeFinanceAction(when('InvoicePaid', { tenantId: 'globex' }), invoice(), [], 0)).toMatch(/belongs to tenant acme/);
  });
});

describe('credit notes', () => {
  const note = (amount: string, number = 'CN-FGPU-000003') => when('CreditNoteIssued', { amount, number });
  it('applies a credit within what is left, with the next number of the issuer', () => {
    expect(judgeFinanceAction(note('60.00'), invoice(), [credited('40.00')], 2)).toBeNull();
  });
  it('refuses more than is left, a void invoice, and numbers out of order', () => {
    expect(judgeFinanceAction(note('60.01'), invoice(), [credited('40.00')], 2)).toMatch(/cannot credit 60.01/);
    expect(judgeFinanceAction(note('1.00'), invoice(), [voided], 2)).toMatch(/void invoice cannot be credited/);
    expect(judgeFinanceAction(note('1.00', 'CN-FGPU-000005'), invoice(), [], 2)).toMatch(/not the next of issuer FGPU \(last 2\)/);
    expect(judgeFinanceAction(note('1.00', 'CN-OTHER-000003'), invoice(), [], 2)).toMatch(/is not CN-FGPU-<sequence>/);
  });
});

describe('tenant settings', () => {
  it('always applies prepaid grants, tax rates and billing profiles', () => {
    expect(judgeFinanceAction({ type: 'CreditGranted', data: { tenantId: 'acme' } }, undefined, [], 0)).toBeNull();
    expect(judgeFinanceAction({ type: 'TaxRatesSet', data: { tenantId: 'acme' } }, undefined, [], 0)).toBeNull();
    expect(judgeFinanceAction({ type: 'TenantBillingProfileSet', data: { tenantId: 'acme' } }, undefined, [], 0)).toBeNull();
  });
});
