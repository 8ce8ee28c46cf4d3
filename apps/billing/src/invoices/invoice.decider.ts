import { money, sumMoney } from '@fastgpu/money';

/**
 * Invoice lifecycle decisions, pure: draft → finalized → paid | void. Each function takes the
 * facts about one invoice and either returns nothing (the action may proceed) or throws a
 * BillingRejection naming the HTTP status: 409 when the invoice's state forbids the action,
 * 422 when the request itself cannot be accepted. The shell records nothing when one is thrown.
 */
export class BillingRejection extends Error {
  constructor(
    readonly status: 409 | 422,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export interface InvoiceFacts {
  status: 'draft' | 'finalized';
  settlement: 'paid' | 'void' | null;
  validationErrors: number;
  total: string;
  /** Sum of credit notes already issued against the invoice. */
  credited: string;
  lineCount: number;
}

const conflict = (code: string, message: string) => new BillingRejection(409, code, message);
const unprocessable = (code: string, message: string, field?: string) => new BillingRejection(422, code, message, field);

export function decideFinalize(f: InvoiceFacts): void {
  if (f.status !== 'draft') throw conflict('invoice_finalized', 'the invoice is already finalized; finalized invoices never change');
  if (f.validationErrors > 0) throw unprocessable('invoice_invalid', `the invoice has ${f.validationErrors} validation error(s) (usage without a price); it stays a draft`);
}

export function decidePay(f: InvoiceFacts): void {
  if (f.status === 'draft') throw conflict('invoice_draft', 'a draft invoice cannot be paid; finalize it first');
  if (f.settlement === 'paid') throw conflict('invoice_paid', 'the invoice is already paid');
  if (f.settlement === 'void') throw conflict('invoice_void', 'a void invoice cannot be paid');
}

export function decideVoid(f: InvoiceFacts): void {
  if (f.status === 'draft') throw conflict('invoice_draft', 'a draft invoice cannot be voided; only finalized, unpaid invoices can');
  if (f.settlement === 'paid') throw conflict('invoice_paid', 'a paid invoice cannot be voided; issue a credit note instead');
  if (f.settlement === 'void') throw conflict('invoice_void', 'the invoice is already void');
}

export function decideCreditNote(f: InvoiceFacts, amount: string): void {
  if (f.status === 'draft') throw conflict('invoice_draft', 'credit notes correct finalized invoices; a draft still changes with its usage');
  if (f.settlement === 'void') throw conflict('invoice_void', 'a void invoice cannot be credited');
  const value = money(amount);
  if (value.lte(0)) throw unprocessable('amount_not_positive', 'a credit note amount must be positive', 'amount');
  const creditable = money(f.total).minus(f.credited);
  if (value.gt(creditable)) throw unprocessable('credit_exceeds_invoice', `cannot credit ${amount}: only ${creditable.toString()} of the invoice total ${f.total} is left to credit`, 'amount');
}

/** What a draft deletion does with the draft's usage: onto a new draft of the period, or nowhere. */
export type DraftUsageDisposition = 'move' | 'discard';

/** A draft may be deleted (it has no number); a finalized invoice never is — void it instead. */
export function decideDeleteDraft(f: InvoiceFacts): void {
  if (f.status !== 'draft') throw conflict('invoice_finalized', 'a finalized invoice cannot be deleted (its number is used); void it, and reissue it if a replacement is due');
}

/**
 * A reissue replaces a finalized invoice by a new draft of the same period that takes its next
 * number when finalized. The invoice is voided first when it is not void yet, so it must be
 * unpaid; a replaced invoice is not reissued twice.
 */
export function decideReissue(f: InvoiceFacts & { replacedBy: string | null }): void {
  if (f.status === 'draft') throw conflict('invoice_draft', 'a draft is not reissued; it changes with its usage, or can be deleted');
  if (f.replacedBy !== null) throw conflict('invoice_reissued', `the invoice was already reissued as ${f.replacedBy}`);
  if (f.settlement !== 'void') decideVoid(f);
}

export function creditedTotal(amounts: readonly string[]): string {
  return sumMoney(amounts.map((a) => money(a))).toString();
}
