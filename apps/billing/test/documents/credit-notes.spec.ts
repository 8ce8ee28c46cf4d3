/**
 * Proves credit notes as documents on a real nats-server and Postgres: finance issues a note
 * against lines of a finalized invoice (a quantity at the line's unit price, all that is left of
 * a line) or a lump sum; it is a `CreditNoteIssued` event with a deterministic id on the invoice's
 * subject, numbered gapless in its own series (CN-FGPU-…, also when issued concurrently); it has
 * lines with quantity, unit price, net, tax per rate and total, linked to the invoice lines it
 * corrects, in JSON, CSV and PDF (nothing overprinted); it reduces the invoice's balance due; the
 * Idempotency-Key rule holds (same key and body: the original note; another body: 409, nothing
 * published); tenants read only their own notes (another tenant's answers like a missing one);
 * and a rebuild of the ledger from the log renders every note and every finalized invoice byte for
 * byte (JSON, CSV, PDF).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS, nameId } from '@fastgpu/contracts';
import { money, sumMoney } from '@fastgpu/money';
import { invoiceIdFor } from '../../src/ledger/invoice-ids';
import { dropRebuildTables, rebuildLedger } from '../../src/ledger/billing.rebuild';
import { BillingStore } from '../../src/ledger/billing.store';
import { InvoiceReader } from '../../src/invoices/invoice.reader';
import { invoiceCsv, invoiceJson } from '../../src/invoices/invoice-csv';
import { invoicePdf } from '../../src/invoices/invoice-pdf';
import { CreditNoteReader } from '../../src/credit-notes/credit-notes.service';
import { creditNoteJson, creditNotePdf, creditNotesCsv, type CreditNoteDocument } from '../../src/credit-notes/credit-note-document';
import { ACME, DocumentsHarness, FINANCE, GLOBEX, layoutProblems, readPdf, requirePoppler } from './harness';

let h: DocumentsHarness;

function monthBack(back: number): { period: string; at(day: number): string } {
  const now = new Date();
  const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1));
  return { period: `${first.getUTCFullYear()}-${String(first.getUTCMonth() + 1).padStart(2, '0')}`, at: (day) => new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), day, 12)).toISOString() };
}
const past = monthBack(2);
const invoiceId = invoiceIdFor('acme', past.period);
const plus = (instant: string, ms: number) => new Date(Date.parse(instant) + ms).toISOString();

async function lastOnInvoice(): Promise<{ seq: number; id: string; type: string }> {
  const message = await h.env.bus.jsm.streams.getMessage(h.env.bus.topology.streams.events, { last_by_subj: h.env.bus.topology.subjects.invoice(invoiceId) });
  const body = message!.json<{ id: string; type: string }>();
  return { seq: message!.seq, id: body.id, type: body.type };
}

beforeAll(async () => {
  await requirePoppler();
  h = await DocumentsHarness.start();
  await h.tenant('acme', 'Acme Corporation', 'Europe/Berlin', 'USD');
  await h.priceBook({
    priceBookId: 'standard',
    currency: 'USD',
    effectiveFrom: '2020-01-01T00:00:00.000Z',
    prices: [
      { gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.50' },
      { gpuModel: 'h100', capacityType: 'on-demand', pricePerGpuHour: '3.333' },
    ],
  });
  await h.taxRates('acme', [{ name: 'VAT', rate: '0.2' }]);
  // 400 GPU-hours of a100 (1,000.00) and 10 of h100 (33.33): subtotal 1,033.33, VAT 206.67, total 1,240.00.
  await h.usage('acme', 'a1', past.at(3), plus(past.at(3), 50 * HOUR_MS), { gpus: 8 });
  await h.usage('acme', 'h1', past.at(4), plus(past.at(4), 10 * HOUR_MS), { gpuModel: 'h100' });
  await h.settle();
  const doc = await h.finalize(invoiceId);
  expect([doc.subtotal, doc.taxes[0]!.amount, doc.total]).toEqual(['1033.33', '206.67', '1240.00']);
});

afterAll(async () => {
  await h?.close();
});

describe('credit notes', () => {
  const request = { reason: 'GPU node degraded for 10 hours', lines: [{ invoiceLine: 1, quantityGpuHours: '10' }, { invoiceLine: 2 }] };
  let first: { creditNoteId: string; number: string };

  it('issues a note against invoice lines as an event with a deterministic id, numbered in its own series', async () => {
    const r = await h.call('POST', `/v1/invoices/${invoiceId}/credit-notes`, FINANCE, request, { 'idempotency-key': 'degraded-node-1' });
    expect(r.status, r.text).toBe(201);
    first = r.json;
    // 10 h × 2.50 = 25.00 and all of line 2 (33.33): net 58.33, VAT 11.666 → 11.67 (5.00 + 6.67), total 70.00.
    expect(r.json).toMatchObject({
      creditNoteId: nameId('CreditNoteIssued', invoiceId, 'degraded-node-1'),
      number: 'CN-FGPU-000001',
      invoiceNumber: 'FGPU-000001',
      amount: '70.00',
      net: '58.33',
      taxes: [{ name: 'VAT', rate: '0.2', amount: '11.67' }],
      lines: [
        { line: 1, invoiceLine: 1, quantityGpuHours: '10.000000', unitPrice: '2.50', net: '25.00', taxes: [{ amount: '5.00' }], total: '30.00' },
        { line: 2, invoiceLine: 2, quantityGpuHours: '10.000000', unitPrice: '3.333', net: '33.33', taxes: [{ amount: '6.67' }], total: '40.00' },
      ],
    });
    const last = await lastOnInvoice();
    expect([last.type, last.id]).toEqual(['CreditNoteIssued', first.creditNoteId]);
  });

  it('answers a retry with the same key and body with the original note, and another body under that key with 409, publishing nothing', async () => {
    const before = await lastOnInvoice();
    const again = await h.call('POST', `/v1/invoices/${invoiceId}/credit-notes`, FINANCE, request, { 'idempotency-key': 'degraded-node-1' });
    expect(again.status, again.text).toBe(201);
    expect(again.json).toEqual(first);
    const other = await h.call('POST', `/v1/invoices/${invoiceId}/credit-notes`, FINANCE, { ...request, lines: [{ invoiceLine: 1, quantityGpuHours: '11' }] }, { 'idempotency-key': 'degraded-node-1' });
    expect(other.status, other.text).toBe(409);
    expect(other.json.error.code).toBe('idempotency_key_reused');
    expect((await lastOnInvoice()).seq).toBe(before.seq);
  });

  it('reduces the balance due of the invoice', async () => {
    const status = await h.call('GET', `/v1/invoices/${invoiceId}/status`, FINANCE);
    expect(status.json).toMatchObject({ amountDue: '1240.00', credited: '70.00', balanceDue: '1170.00' });
  });

  it('renders the note as JSON, CSV and PDF, linked to the invoice and the lines it corrects', async () => {
    const json = await h.call('GET', `/v1/credit-notes/${first.creditNoteId}`, ACME);
    expect(json.status, json.text).toBe(200);
    const doc = json.json as CreditNoteDocument;
    expect(doc).toMatchObject({ schema: 'fastgpu.credit-note/1', number: 'CN-FGPU-000001', invoiceId, invoiceNumber: 'FGPU-000001', split: true, net: '58.33', total: '70.00', tenant: { tenantId: 'acme', name: 'Acme Corporation' } });
    expect(doc.lines.map((l) => [l.invoiceLine, l.net, l.tax, l.total])).toEqual([
      [1, '25.00', '5.00', '30.00'],
      [2, '33.33', '6.67', '40.00'],
    ]);
    expect(json.headers.get('x-credit-note-sha256')).toMatch(/^[0-9a-f]{64}$/);

    const csv = await h.call('GET', `/v1/credit-notes/${first.creditNoteId}`, FINANCE, undefined, { accept: 'text/csv' });
    const [header, ...rows] = csv.text.trimEnd().split('\r\n').map((r) => r.split(','));
    const col = (name: string) => header!.indexOf(name);
    const lines = rows.filter((r) => r[col('kind')] === 'line');
    expect(lines.map((r) => [r[col('invoice_line')], r[col('quantity_gpu_hours')], r[col('unit_price')], r[col('net')], r[col('tax')], r[col('total')]])).toEqual([
      ['1', '10.000000', '2.50', '25.00', '5.00', '30.00'],
      ['2', '10.000000', '3.333', '33.33', '6.67', '40.00'],
    ]);
    const value = (kind: string, name: string) => rows.filter((r) => r[col('kind')] === kind).map((r) => money(r[col(name)]!));
    expect(sumMoney(lines.map((r) => money(r[col('net')]!))).eq(value('net', 'net')[0]!)).toBe(true);
    expect(value('net', 'net')[0]!.plus(sumMoney(value('tax', 'tax'))).eq(value('total', 'total')[0]!)).toBe(true);

    const pdf = await h.call('GET', `/v1/credit-notes/${first.creditNoteId}`, ACME, undefined, { accept: 'application/pdf' });
    expect(pdf.headers.get('content-type')).toBe('application/pdf');
    const read = await readPdf(pdf.buffer);
    expect(layoutProblems(read)).toEqual([]);
    const text = read.text.join('\n').replace(/\s+/g, ' ');
    for (const wanted of ['CREDIT NOTE', 'Credit note CN-FGPU-000001', 'Corrects invoice FGPU-000001', 'credits invoice line 1', 'VAT 20 % on 58.33', 'Total credited (USD) 70.00', 'reduces the amount due on invoice FGPU-000001 by 70.00 USD']) {
      expect(text, wanted).toContain(wanted);
    }
  });

  it('numbers notes gapless, also when finance issues two at once, and refuses more than is left', async () => {
    const [a, b] = await Promise.all([
      h.call('POST', `/v1/invoices/${invoiceId}/credit-notes`, FINANCE, { reason: 'goodwill', amount: '12.00' }),
      h.call('POST', `/v1/invoices/${invoiceId}/credit-notes`, FINANCE, { reason: 'goodwill', lines: [{ invoiceLine: 1, amount: '100.00' }] }),
    ]);
    expect([a.status, b.status], `${a.text} ${b.text}`).toEqual([201, 201]);
    expect([a.json.number, b.json.number].sort()).toEqual(['CN-FGPU-000002', 'CN-FGPU-000003']);
    // Without a key the id follows from the issuer and the number.
    expect(a.json.creditNoteId).toBe(nameId('CreditNoteIssued', 'FGPU', a.json.number));
    expect(a.json).toMatchObject({ amount: '12.00', net: '10.00', taxes: [{ amount: '2.00' }], lines: [{ invoiceLine: null, description: 'Credit on invoice FGPU-000001' }] });
    // 1240.00 − 70.00 − 12.00 − 120.00 = 1038.00 is left of the total.
    const tooMuch = await h.call('POST', `/v1/invoices/${invoiceId}/credit-notes`, FINANCE, { reason: 'too much', amount: '1038.01' });
    expect([tooMuch.status, tooMuch.json.error.code]).toEqual([422, 'credit_exceeds_invoice']);
    const unknownLine = await h.call('POST', `/v1/invoices/${invoiceId}/credit-notes`, FINANCE, { reason: 'x', lines: [{ invoiceLine: 7 }] });
    expect([unknownLine.status, unknownLine.json.error.field]).toEqual([422, 'lines[0].invoiceLine']);
    const both = await h.call('POST', `/v1/invoices/${invoiceId}/credit-notes`, FINANCE, { reason: 'x', amount: '1.00', lines: [{ invoiceLine: 1 }] });
    expect([both.status, both.json.error.field]).toEqual([422, 'lines']);
    const status = await h.call('GET', `/v1/invoices/${invoiceId}/status`, FINANCE);
    expect(status.json).toMatchObject({ credited: '202.00', balanceDue: '1038.00' });
    // Numbers are taken in the order the notes land on the log.
    expect(status.json.creditNotes.map((n: { number: string }) => n.number)).toEqual(['CN-FGPU-000001', 'CN-FGPU-000002', 'CN-FGPU-000003']);
  });

  it('keeps notes to their tenant: another tenant gets the answer a missing note gets; tenants cannot issue', async () => {
    const foreign = await h.call('GET', `/v1/credit-notes/${first.creditNoteId}`, GLOBEX);
    const missing = await h.call('GET', '/v1/credit-notes/no-such-note', GLOBEX);
    expect(foreign.status).toBe(404);
    expect(foreign.json).toEqual(missing.json);
    expect((await h.call('GET', '/v1/credit-notes', GLOBEX)).json.creditNotes).toEqual([]);
    expect((await h.call('GET', '/v1/credit-notes', ACME)).json.creditNotes).toHaveLength(3);
    expect((await h.call('GET', `/v1/invoices/${invoiceId}/credit-notes`, GLOBEX)).status).toBe(404);
    expect((await h.call('POST', `/v1/invoices/${invoiceId}/credit-notes`, ACME, { reason: 'self-service', amount: '1.00' })).status).toBe(403);
  });

  it('renders every note and every finalized invoice byte for byte from a rebuild of the ledger', async () => {
    const db = h.runtime.db;
    const live = new CreditNoteReader(new BillingStore(db, (n) => n), new InvoiceReader(new BillingStore(db, (n) => n), 'FGPU'));
    const { store } = await rebuildLedger(h.env.bus, db, '_rebuild_notes', 30_000);
    try {
      const rebuilt = new CreditNoteReader(store, new InvoiceReader(store, 'FGPU'));
      const [a, b] = [await live.documents({ tenantId: null }), await rebuilt.documents({ tenantId: null })];
      expect(a).toHaveLength(3);
      expect(b.map(creditNoteJson)).toEqual(a.map(creditNoteJson));
      expect(creditNotesCsv(b)).toBe(creditNotesCsv(a));
      for (const [i, doc] of a.entries()) expect((await creditNotePdf(b[i]!)).equals(await creditNotePdf(doc))).toBe(true);
      // Every finalized invoice the notes correct: the same stored row, and the same JSON, CSV and PDF bytes.
      const [liveInvoices, rebuiltInvoices] = [new InvoiceReader(new BillingStore(db, (n) => n), 'FGPU'), new InvoiceReader(store, 'FGPU')];
      const finalized = (table: 'billing_invoices') => db.selectFrom(table).selectAll().where('status', '=', 'finalized').orderBy('invoice_id').execute() as Promise<never[]>;
      const [liveRows, rebuiltRows] = [await finalized('billing_invoices'), await finalized(store.table('billing_invoices'))];
      expect(liveRows.length).toBeGreaterThan(0);
      expect(rebuiltRows).toEqual(liveRows);
      for (const row of liveRows) {
        const [x, y] = [await liveInvoices.document(row, 0, 0), await rebuiltInvoices.document(row, 0, 0)];
        expect(invoiceJson(y)).toBe(invoiceJson(x));
        expect(invoiceCsv(y)).toBe(invoiceCsv(x));
        expect((await invoicePdf(y)).equals(await invoicePdf(x))).toBe(true);
      }
    } finally {
      await dropRebuildTables(db, '_rebuild_notes');
    }
  });
});
