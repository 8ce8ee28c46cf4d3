/**
 * Proves the credit-note rules given / when / then, without I/O: a note credits a quantity of an
 * invoice line at its unit price, an amount of a line, all that is left of a line, or a lump sum
 * including tax; its net is taxed at the invoice's rates, rounded once, each tax allocated to the
 * note's lines by largest remainder; the note that credits all that is left takes exactly what is
 * left of each tax; notes issued before documents (a bare amount) count against what is left; and
 * every refusal (draft, void, unknown or uncreditable line, more than is left, bad precision) is
 * a DomainError that records nothing. On the kernel (creditNoteIssuer), the same document is
 * decided from the invoice subject's history: its notes count, a void on it refuses.
 */
import { describe, expect, it } from 'vitest';
import { makeEvent, subjectFor, topology } from '@fastgpu/contracts';
import { spec, type BuildEvent } from '@fastgpu/eventsourcing';
import { creditNoteDecider, creditNoteIssuer, decideCreditNoteDocument, type CreditableInvoice, type CreditNoteData, type CreditNoteEvent, type IssueCreditNote, type IssueCreditNoteOn } from './credit-note.decider';

/** FGPU-000007: 100 GPU-h at 2.50, 10 GPU-h at 3.333, an interruption credit and an SLA credit; VAT 20 %. */
const invoice: CreditableInvoice = {
  invoiceId: 'inv-7',
  tenantId: 'acme',
  number: 'FGPU-000007',
  status: 'finalized',
  settlement: null,
  currency: 'USD',
  subtotal: '275.50',
  total: '330.60',
  taxes: [{ name: 'VAT', rate: '0.2', amount: '55.10' }],
  lines: [
    { line: 1, kind: 'usage', description: 'A100 on-demand GPU time (standard v1)', servicePeriod: '2026-10', quantityGpuMs: 360_000_000, unitPrice: '2.50', amount: '250.00' },
    { line: 2, kind: 'usage', description: 'H100 on-demand GPU time (standard v1)', servicePeriod: '2026-10', quantityGpuMs: 36_000_000, unitPrice: '3.333', amount: '33.33' },
    { line: 3, kind: 'interruption-credit', description: 'Interruption credit: A100 on-demand GPU time (standard v1)', servicePeriod: '2026-10', quantityGpuMs: 7_200_000, unitPrice: '2.50', amount: '-5.00' },
    { line: 4, kind: 'sla-credit', description: 'SLA credit for 2026-10', servicePeriod: '2026-10', quantityGpuMs: null, unitPrice: null, amount: '-2.83' },
  ],
};

let counter = 0;
function command(request: IssueCreditNote['request']): IssueCreditNote {
  counter++;
  return { request, creditNoteId: `cn-${counter}`, number: `CN-FGPU-00000${counter}`, issuedAt: '2026-11-20T10:00:00.000Z', actor: 'finance-1', reason: 'agreed with the customer', requestSha256: 'a'.repeat(64) };
}
const issued = (data: CreditNoteData): CreditNoteEvent => ({ type: 'CreditNoteIssued', data });
/** The fields every note of FGPU-000007 starts with, in the order the decider writes them (the spec compares JSON). */
const head = (c: IssueCreditNote, amount: string) => ({ creditNoteId: c.creditNoteId, invoiceId: 'inv-7', tenantId: 'acme', number: c.number, amount, currency: 'USD', issuedAt: c.issuedAt, actor: 'finance-1', reason: 'agreed with the customer', invoiceNumber: 'FGPU-000007' });
const decider = creditNoteDecider(invoice);

describe('credit notes as documents', () => {
  it('credits a quantity of a line at its unit price, taxed at the invoice rate', () => {
    const c = command({ kind: 'lines', lines: [{ invoiceLine: 1, quantityGpuHours: '10' }] });
    spec(decider)
      .given([])
      .when(c)
      .then([
        issued({
          ...head(c, '30.00'),
          lines: [{ line: 1, invoiceLine: 1, description: 'Credit: A100 on-demand GPU time (standard v1)', servicePeriod: '2026-10', quantityGpuHours: '10.000000', unitPrice: '2.50', net: '25.00', taxes: [{ name: 'VAT', rate: '0.2', amount: '5.00' }], total: '30.00' }],
          net: '25.00',
          taxes: [{ name: 'VAT', rate: '0.2', amount: '5.00' }],
          requestSha256: c.requestSha256,
        }),
      ]);
  });

  it('credits an amount of one line and all that is left of another, the tax rounded once and allocated by largest remainder', () => {
    const c = command({ kind: 'lines', lines: [{ invoiceLine: 1, amount: '1.00' }, { invoiceLine: 2 }] });
    const [event] = decider.decide(c, decider.initialState());
    const note = (event as { data: CreditNoteData }).data;
    // Net 34.33 × 20 % = 6.866 → 6.87, split 0.20 + 6.67 (exact parts 0.2001 and 6.6699).
    expect([note.net, note.taxes, note.amount]).toEqual(['34.33', [{ name: 'VAT', rate: '0.2', amount: '6.87' }], '41.20']);
    expect(note.lines!.map((l) => [l.invoiceLine, l.quantityGpuHours, l.net, l.taxes[0]!.amount, l.total])).toEqual([
      [1, null, '1.00', '0.20', '1.20'],
      [2, '10.000000', '33.33', '6.67', '40.00'],
    ]);
  });

  it('gives the note that credits all that is left exactly what is left of each tax', () => {
    const first = decideCreditNoteDocument(invoice, [], command({ kind: 'lines', lines: [{ invoiceLine: 1, quantityGpuHours: '10' }] }));
    const c = command({ kind: 'amount', amount: '300.60' });
    spec(decider)
      .given([issued(first)])
      .when(c)
      .then([
        issued({
          ...head(c, '300.60'),
          lines: [{ line: 1, invoiceLine: null, description: 'Credit on invoice FGPU-000007', servicePeriod: null, quantityGpuHours: null, unitPrice: null, net: '250.50', taxes: [{ name: 'VAT', rate: '0.2', amount: '50.10' }], total: '300.60' }],
          net: '250.50',
          taxes: [{ name: 'VAT', rate: '0.2', amount: '50.10' }],
          requestSha256: c.requestSha256,
        }),
      ]);
  });

  it('never leaves a cent of tax behind when a line is credited in thirds', () => {
    const plain: CreditableInvoice = { ...invoice, subtotal: '100.00', total: '120.00', taxes: [{ name: 'VAT', rate: '0.2', amount: '20.00' }], lines: [{ line: 1, kind: 'usage', description: 'A100', servicePeriod: '2026-10', quantityGpuMs: 144_000_000, unitPrice: '2.50', amount: '100.00' }] };
    const notes: CreditNoteData[] = [];
    for (const quantity of ['13.333333', '13.333333', undefined]) {
      notes.push(decideCreditNoteDocument(plain, notes, command({ kind: 'lines', lines: [{ invoiceLine: 1, ...(quantity ? { quantityGpuHours: quantity } : {}) }] })));
    }
    // 33.33 + 33.33 + 33.34 net; taxes 6.67 + 6.67 (each rounded up) + 6.66 (what is left): exactly 20.00.
    expect(notes.map((n) => [n.lines![0]!.quantityGpuHours, n.net, n.taxes![0]!.amount, n.amount])).toEqual([
      ['13.333333', '33.33', '6.67', '40.00'],
      ['13.333333', '33.33', '6.67', '40.00'],
      ['13.333334', '33.34', '6.66', '40.00'],
    ]);
  });

  it('credits a paid invoice', () => {
    const c = command({ kind: 'amount', amount: '12.00' });
    const [event] = decider.decide(c, decider.evolve(decider.initialState(), { type: 'InvoicePaid' }));
    // 12.00 including 20 %: 2.00 tax, 10.00 net.
    expect((event as { data: CreditNoteData }).data).toMatchObject({ amount: '12.00', net: '10.00', taxes: [{ amount: '2.00' }] });
  });

  it('counts a note issued before documents (a bare amount) against what is left', () => {
    const legacy = { creditNoteId: 'cn-old', invoiceId: 'inv-7', tenantId: 'acme', number: 'CN-FGPU-000001', amount: '300.00', currency: 'USD', issuedAt: '2026-11-02T00:00:00.000Z', actor: 'finance-1', reason: 'old' };
    spec(decider)
      .given([issued(legacy)])
      .when(command({ kind: 'amount', amount: '30.61' }))
      .thenThrows('validation', 'credit_exceeds_invoice');
    const [event] = decider.decide(command({ kind: 'amount', amount: '30.60' }), decider.evolve(decider.initialState(), issued(legacy)));
    // 300.00 read as 250.00 net + 50.00 VAT: 25.50 net and 5.10 VAT are left.
    expect((event as { data: CreditNoteData }).data).toMatchObject({ net: '25.50', taxes: [{ amount: '5.10' }] });
  });
});

describe('credit-note refusals', () => {
  it('refuses drafts and void invoices (409)', () => {
    spec(creditNoteDecider({ ...invoice, status: 'draft' }))
      .given([])
      .when(command({ kind: 'amount', amount: '1.00' }))
      .thenThrows('illegal-state', 'invoice_draft');
    spec(decider)
      .given([{ type: 'InvoiceVoided' }])
      .when(command({ kind: 'amount', amount: '1.00' }))
      .thenThrows('illegal-state', 'invoice_void');
  });

  it('refuses lines that do not exist, charge nothing, repeat, or ask for more than is left (422)', () => {
    const when = (lines: Array<{ invoiceLine: number; quantityGpuHours?: string; amount?: string }>) => spec(decider).given([]).when(command({ kind: 'lines', lines }));
    when([{ invoiceLine: 9 }]).thenThrows('validation', 'unknown_line');
    when([{ invoiceLine: 3 }]).thenThrows('validation', 'line_not_creditable');
    when([{ invoiceLine: 4 }]).thenThrows('validation', 'line_not_creditable');
    when([{ invoiceLine: 1 }, { invoiceLine: 1 }]).thenThrows('validation', 'duplicate_line');
    when([{ invoiceLine: 1, quantityGpuHours: '100.000001' }]).thenThrows('validation', 'credit_exceeds_line');
    when([{ invoiceLine: 1, amount: '250.01' }]).thenThrows('validation', 'credit_exceeds_line');
    when([{ invoiceLine: 1, amount: '1.001' }]).thenThrows('validation', 'amount_precision');
    when([{ invoiceLine: 1, quantityGpuHours: '1.0000001' }]).thenThrows('validation', 'invalid_quantity');
    when([{ invoiceLine: 1, quantityGpuHours: '1', amount: '1.00' }]).thenThrows('validation', 'quantity_and_amount');
    // Lines 1 and 2 in full (283.33 net) exceed the invoice's net (275.50, after its credits).
    when([{ invoiceLine: 1 }, { invoiceLine: 2 }]).thenThrows('validation', 'credit_exceeds_invoice');
  });

  it('refuses a line already credited in full, and a lump sum beyond the total', () => {
    const full = decideCreditNoteDocument(invoice, [], command({ kind: 'lines', lines: [{ invoiceLine: 2 }] }));
    spec(decider)
      .given([issued(full)])
      .when(command({ kind: 'lines', lines: [{ invoiceLine: 2, amount: '0.01' }] }))
      .thenThrows('validation', 'line_fully_credited');
    spec(decider)
      .given([])
      .when(command({ kind: 'amount', amount: '330.61' }))
      .thenThrows('validation', 'credit_exceeds_invoice');
  });
});

describe('credit notes on the kernel (the invoice subject as history)', () => {
  const topo = topology('spec');
  const build: BuildEvent = (type, data, meta) => makeEvent(type, data, { ...meta, source: 'billing' }, subjectFor(topo, type, data));
  const issuer = creditNoteIssuer(build);
  const on = (c: IssueCreditNote): IssueCreditNoteOn => ({ ...c, invoice });
  const metaOf = (id: string, time: string) => ({ id, time, tenantId: 'acme', correlationId: id });
  const audit = { actor: 'finance-1', reason: 'settled' };
  const paid = build('InvoicePaid', { invoiceId: 'inv-7', tenantId: 'acme', amount: '330.60', currency: 'USD', paidAt: '2026-11-10T00:00:00.000Z', ...audit }, metaOf('0190d000-0000-7000-8000-0000000000a1', '2026-11-10T00:00:00.000Z'));
  const voided = build('InvoiceVoided', { invoiceId: 'inv-7', tenantId: 'acme', number: 'FGPU-000007', voidedAt: '2026-11-10T00:00:00.000Z', ...audit }, metaOf('0190d000-0000-7000-8000-0000000000a2', '2026-11-10T00:00:00.000Z'));

  it('decides the same document as the note decider, as CreditNoteIssued on the invoice subject with the note id', () => {
    const c = command({ kind: 'lines', lines: [{ invoiceLine: 1, quantityGpuHours: '10' }] });
    const expected = build('CreditNoteIssued', decideCreditNoteDocument(invoice, [], c), metaOf(c.creditNoteId, c.issuedAt));
    spec(issuer).given([]).when(on(c)).then([expected]);
    expect(expected).toMatchObject({ id: c.creditNoteId, subject: topo.subjects.invoice('inv-7') });
  });

  it('counts the notes on the subject against what is left, and credits a paid invoice', () => {
    const first = command({ kind: 'lines', lines: [{ invoiceLine: 1, quantityGpuHours: '10' }] });
    const firstIssued = build('CreditNoteIssued', decideCreditNoteDocument(invoice, [], first), metaOf(first.creditNoteId, first.issuedAt));
    const c = command({ kind: 'amount', amount: '300.60' });
    const rest = decideCreditNoteDocument(invoice, [firstIssued.data], c);
    spec(issuer).given([firstIssued, paid]).when(on(c)).then([build('CreditNoteIssued', rest, metaOf(c.creditNoteId, c.issuedAt))]);
    spec(issuer).given([firstIssued]).when(on(command({ kind: 'amount', amount: '300.61' }))).thenThrows('validation', 'credit_exceeds_invoice');
  });

  it('refuses an invoice voided on its subject, as decided again after a void landed first', () => {
    spec(issuer).given([voided]).when(on(command({ kind: 'amount', amount: '1.00' }))).thenThrows('illegal-state', 'invoice_void');
  });
});
