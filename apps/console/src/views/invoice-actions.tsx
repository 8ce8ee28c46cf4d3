import { useState } from 'react';
import { api, newIdempotencyKey } from '../api';
import { ConfirmDialog, Field } from '../components/ui';
import type { InvoiceDocument } from '../types';

export type InvoiceAction = 'finalize' | 'pay' | 'void' | 'credit-note';

/** The event each action appends (shown once the live feed or the invoice's actions carry it). */
export const ACTION_EVENT: Record<InvoiceAction, string> = {
  finalize: 'InvoiceFinalized',
  pay: 'InvoicePaid',
  void: 'InvoiceVoided',
  'credit-note': 'CreditNoteIssued',
};

const TITLES: Record<InvoiceAction, { title: string; confirm: string; text: string }> = {
  finalize: { title: 'Finalize this invoice?', confirm: 'Finalize invoice', text: 'It gets its number and never changes again; later usage goes to the next invoice.' },
  pay: { title: 'Record payment?', confirm: 'Record payment', text: 'Marks the finalized invoice as paid.' },
  void: { title: 'Void this invoice?', confirm: 'Void invoice', text: 'A voided invoice keeps its number and is no longer due. This cannot be undone.' },
  'credit-note': { title: 'Issue a credit note?', confirm: 'Issue credit note', text: 'Credits the tenant against this finalized invoice.' },
};

/**
 * One finance action behind a confirmation: a reason (every action is audited), and what the
 * action needs besides (payment reference, credit amount). Answers a sentence about the result.
 */
export function InvoiceActionDialog({ action, invoice, onDone, onCancel }: { action: InvoiceAction; invoice: InvoiceDocument; onDone(summary: string): void; onCancel(): void }) {
  const [reason, setReason] = useState('');
  const [paymentReference, setPaymentReference] = useState('');
  const [amount, setAmount] = useState('');
  // One key per dialog: a retried confirm is the same action, never a second payment or credit.
  const [idempotencyKey] = useState(newIdempotencyKey);
  const base = `/v1/invoices/${encodeURIComponent(invoice.invoiceId)}`;
  const headers = { 'idempotency-key': idempotencyKey };
  const run = async (): Promise<string> => {
    switch (action) {
      case 'finalize': {
        const answer = await api<InvoiceDocument>(`${base}/finalize`, { method: 'POST', body: reason.trim() ? { reason: reason.trim() } : {} });
        return `Invoice finalized as ${answer.number ?? '(no number)'}.`;
      }
      case 'pay': {
        const answer = await api<{ status: string }>(`${base}/pay`, { method: 'POST', headers, body: { reason: reason.trim(), ...(paymentReference.trim() ? { paymentReference: paymentReference.trim() } : {}) } });
        return `Payment recorded: the invoice is ${answer.status}.`;
      }
      case 'void': {
        const answer = await api<{ status: string }>(`${base}/void`, { method: 'POST', headers, body: { reason: reason.trim() } });
        return `The invoice is ${answer.status}.`;
      }
      case 'credit-note': {
        const lines = invoice.lines.filter((l) => l.kind === 'usage' || l.kind === 'adjustment').map((l) => ({ invoiceLine: l.line }));
        const body = amount.trim() ? { reason: reason.trim(), amount: amount.trim() } : { reason: reason.trim(), lines };
        const answer = await api<{ number: string; amount: string; currency: string }>(`${base}/credit-notes`, { method: 'POST', headers, body });
        return `Credit note ${answer.number} issued for ${answer.amount} ${answer.currency}.`;
      }
    }
  };
  const t = TITLES[action];
  return (
    <ConfirmDialog title={t.title} confirmLabel={t.confirm} danger={action === 'void'} action={run} onDone={onDone} onCancel={onCancel}>
      <p>{t.text}</p>
      <Field id="action-reason" label={action === 'finalize' ? 'Reason (optional)' : 'Reason'}>
        <input id="action-reason" required={action !== 'finalize'} value={reason} onChange={(e) => setReason(e.target.value)} />
      </Field>
      {action === 'pay' && (
        <Field id="action-payment" label="Payment reference (optional)">
          <input id="action-payment" value={paymentReference} onChange={(e) => setPaymentReference(e.target.value)} />
        </Field>
      )}
      {action === 'credit-note' && (
        <Field id="action-amount" label={`Amount in ${invoice.currency}, tax included`} help="Leave empty to credit everything still uncredited on the usage lines.">
          <input id="action-amount" inputMode="decimal" value={amount} onChange={(e) => setAmount(e.target.value)} aria-describedby="action-amount-help" />
        </Field>
      )}
    </ConfirmDialog>
  );
}
