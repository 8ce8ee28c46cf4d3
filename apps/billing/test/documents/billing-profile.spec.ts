/**
 * Proves buyer details on invoices and credit notes on a real nats-server and Postgres:
 * - finance sets a tenant's billing profile (legal name, address lines, country, tax id) with
 *   `PUT /v1/billing/tenants/{tenantId}/profile`, recorded as a `TenantBillingProfileSet` event;
 *   every text field follows the shared storable-text rule (a control character is a 400 naming the
 *   field), an unknown country or tenant is refused, nothing is published on a refusal, the
 *   Idempotency-Key rule holds, and tenants read only their own profile;
 * - an invoice names the profile in force at its cutoff in JSON, CSV and PDF (nothing
 *   overprinted); a later profile changes drafts only: a finalized invoice keeps its bytes, and an
 *   invoice finalized before any profile keeps its layout (no buyer field, the tenant's name);
 * - a credit note names the buyer of the invoice it corrects, as of that invoice's finalization;
 * - a rebuild of the ledger from the log gives every finalized invoice and credit note byte for byte.
 *
 * Periods come from the real now: the three months before the current one, in the tenant's zone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastSequence } from '@fastgpu/messaging';
import { addPeriods, periodBounds, periodOf } from '@fastgpu/money';
import { invoiceIdFor } from '../../src/ledger/invoice-ids';
import { dropRebuildTables, rebuildLedger } from '../../src/ledger/billing.rebuild';
import { BillingStore } from '../../src/ledger/billing.store';
import { InvoiceReader } from '../../src/invoices/invoice.reader';
import { CreditNoteReader } from '../../src/credit-notes/credit-notes.service';
import { creditNoteJson, type CreditNoteDocument } from '../../src/credit-notes/credit-note-document';
import type { InvoiceDocument } from '../../src/invoices/invoice-document';
import { ACME, DocumentsHarness, FINANCE, GLOBEX, layoutProblems, readPdf, requirePoppler } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

const ZONE = 'Europe/Berlin';
const current = periodOf(Date.now(), ZONE);
const [oldest, older, previous] = [addPeriods(current, -3), addPeriods(current, -2), addPeriods(current, -1)];
const dayOf = (period: string, day: number) => new Date(periodBounds(period, ZONE).startMs + (day - 1) * 24 * HOUR_MS + 10 * HOUR_MS).toISOString();
const plusHours = (instant: string, hours: number) => new Date(Date.parse(instant) + hours * HOUR_MS).toISOString();
const effectiveFrom = new Date(periodBounds(addPeriods(current, -13), ZONE).startMs).toISOString();
const invoice = (period: string) => invoiceIdFor('acme', period);
const profilePath = (tenantId: string) => `/v1/billing/tenants/${tenantId}/profile`;

const FIRST = { legalName: 'Acme Deutschland GmbH', addressLines: ['Hauptstraße 1', '10115 Berlin'], country: 'DE', taxId: 'DE123456789', reason: 'customer master data' };
const SECOND = { legalName: 'Acme Europe SE', addressLines: ['Unter den Linden 5', 'Eingang B', '10117 Berlin'], country: 'DE', reason: 'moved and merged' };

let h: DocumentsHarness;
/** The invoice finalized before any profile existed, as first served. */
let beforeProfiles: { text: string; sha256: string | null };
/** The invoice finalized under the first profile, as first served. */
let underFirst: { text: string; sha256: string | null };

const streamEnd = () => lastSequence(h.env.bus, h.env.bus.topology.streams.events);

beforeAll(async () => {
  await requirePoppler();
  h = await DocumentsHarness.start();
  await h.tenant('acme', 'Acme', ZONE, 'USD');
  await h.tenant('globex', 'Globex', 'UTC', 'USD');
  await h.priceBook({ priceBookId: 'standard', currency: 'USD', effectiveFrom, prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.00' }] });
  const taxes = await h.call('POST', '/v1/billing/tax-rates', FINANCE, { tenantId: 'acme', rates: [{ name: 'VAT', rate: '0.19' }], effectiveFrom, reason: 'tax registration' });
  expect(taxes.status, taxes.text).toBe(201);
  for (const [n, period] of [oldest, older, previous].entries()) await h.usage('acme', `u${n}`, dayOf(period, 3), plusHours(dayOf(period, 3), 10));
  await h.settle();
});

afterAll(async () => {
  await h?.close();
});

describe('billing profiles', () => {
  it('finalizes an invoice before any profile exists: no buyer, the tenant named as before', async () => {
    const doc = await h.finalize(invoice(oldest));
    expect(doc.buyer).toBeUndefined();
    const served = await h.call('GET', `/v1/invoices/${invoice(oldest)}`, FINANCE);
    beforeProfiles = { text: served.text, sha256: served.headers.get('x-invoice-sha256') };
    expect(served.text).not.toContain('"buyer"');
  });

  it('refuses malformed and unacceptable profiles with the field, publishing nothing', async () => {
    const before = await streamEnd();
    const refusals: Array<[string, string, unknown, number, string]> = [
      [ACME, 'acme', FIRST, 403, ''],
      [FINANCE, 'acme', { ...FIRST, legalName: 'Acme\u0000GmbH' }, 400, 'legalName'],
      [FINANCE, 'acme', { ...FIRST, addressLines: ['Hauptstraße 1', '10115\u0007Berlin'] }, 400, 'addressLines.1'],
      [FINANCE, 'acme', { ...FIRST, taxId: 'DE\u001b123' }, 400, 'taxId'],
      [FINANCE, 'acme', { ...FIRST, reason: 'bad\u0000reason' }, 400, 'reason'],
      [FINANCE, 'acme', { ...FIRST, country: 'de' }, 422, 'country'],
      [FINANCE, 'acme', { ...FIRST, country: 'XX' }, 422, 'country'],
      // A code Intl cannot even read (its region lookup throws) is refused like any other.
      [FINANCE, 'acme', { ...FIRST, country: '-_' }, 422, 'country'],
      [FINANCE, 'acme', { ...FIRST, addressLines: [] }, 422, 'addressLines'],
      [FINANCE, 'acme', { ...FIRST, addressLines: Array.from({ length: 7 }, (_, i) => `line ${i}`) }, 422, 'addressLines'],
      [FINANCE, 'acme', { ...FIRST, legalName: 'x'.repeat(201) }, 422, 'legalName'],
      [FINANCE, 'acme', { ...FIRST, note: 'unknown field' }, 400, 'body'],
      [FINANCE, 'no-such-tenant', FIRST, 404, ''],
      [FINANCE, 'bad%00id', FIRST, 400, 'tenantId'],
    ];
    for (const [key, tenantId, body, status, field] of refusals) {
      const r = await h.call('PUT', profilePath(tenantId), key, body);
      expect(r.status, `${tenantId} ${JSON.stringify(body)}: ${r.text}`).toBe(status);
      if (field) expect(r.json.error.field, r.text).toBe(field);
    }
    expect(await streamEnd()).toBe(before);
  });

  it('records a profile as an event, with the Idempotency-Key rule, and tenants read only their own', async () => {
    const set = await h.call('PUT', profilePath('acme'), FINANCE, FIRST, { 'idempotency-key': 'profile-1' });
    expect(set.status, set.text).toBe(200);
    expect(set.json).toMatchObject({ tenantId: 'acme', legalName: FIRST.legalName, addressLines: FIRST.addressLines, country: 'DE', taxId: 'DE123456789', actor: 'key-finance-platform', reason: FIRST.reason });
    const event = await h.env.bus.jsm.streams.getMessage(h.env.bus.topology.streams.events, { last_by_subj: h.env.bus.topology.subjects.billingTenant('acme') });
    expect(event!.seq).toBe(set.json.eventSequence);
    expect(event!.json<{ type: string; id: string }>()).toMatchObject({ type: 'TenantBillingProfileSet', id: set.json.eventId });

    const end = await streamEnd();
    const again = await h.call('PUT', profilePath('acme'), FINANCE, FIRST, { 'idempotency-key': 'profile-1' });
    expect(again.status, again.text).toBe(200);
    expect(again.json).toEqual(set.json);
    const other = await h.call('PUT', profilePath('acme'), FINANCE, { ...FIRST, taxId: 'DE999999999' }, { 'idempotency-key': 'profile-1' });
    expect([other.status, other.json.error.code, other.json.error.field]).toEqual([409, 'idempotency_key_reused', 'taxId']);
    expect(await streamEnd()).toBe(end);

    expect((await h.call('GET', profilePath('acme'), FINANCE)).json).toEqual(set.json);
    expect((await h.call('GET', profilePath('acme'), ACME)).json).toEqual(set.json);
    const foreign = await h.call('GET', profilePath('acme'), GLOBEX);
    const missing = await h.call('GET', profilePath('globex'), GLOBEX);
    expect([foreign.status, missing.status]).toEqual([404, 404]);
    expect(foreign.json).toEqual(missing.json);
  });

  it('names the buyer in force at the cutoff in JSON, CSV and PDF', async () => {
    const draft = await h.document(invoice(older));
    expect(draft.buyer).toEqual({ legalName: FIRST.legalName, addressLines: FIRST.addressLines, country: 'DE', taxId: 'DE123456789' });
    const doc = await h.finalize(invoice(older));
    expect(doc.buyer).toEqual(draft.buyer);
    const served = await h.call('GET', `/v1/invoices/${invoice(older)}`, ACME);
    underFirst = { text: served.text, sha256: served.headers.get('x-invoice-sha256') };

    const csv = await h.call('GET', `/v1/invoices/${invoice(older)}`, ACME, undefined, { accept: 'text/csv' });
    const rows = csv.text.trimEnd().split('\r\n').map((r) => r.split(','));
    const col = (name: string) => rows[0]!.indexOf(name);
    expect(rows.every((r) => r.length === rows[0]!.length)).toBe(true);
    expect(rows.filter((r) => r[col('kind')]!.startsWith('buyer')).map((r) => [r[col('kind')], r[col('description')], r[col('amount')]])).toEqual([
      ['buyer', FIRST.legalName, ''],
      ['buyer-address', 'Hauptstraße 1', ''],
      ['buyer-address', '10115 Berlin', ''],
      ['buyer-country', 'DE', ''],
      ['buyer-tax-id', 'DE123456789', ''],
    ]);

    const pdf = await h.call('GET', `/v1/invoices/${invoice(older)}`, ACME, undefined, { accept: 'application/pdf' });
    const read = await readPdf(pdf.buffer);
    expect(layoutProblems(read)).toEqual([]);
    const text = read.text.join('\n').replace(/\s+/g, ' ');
    for (const wanted of ['Bill to', FIRST.legalName, 'Hauptstraße 1', '10115 Berlin', 'Germany', 'Tax ID: DE123456789', 'Customer ID acme']) expect(text, wanted).toContain(wanted);
  });

  it('takes a new profile on drafts only: finalized invoices keep their bytes, and the one before profiles its layout', async () => {
    const set = await h.call('PUT', profilePath('acme'), FINANCE, SECOND);
    expect(set.status, set.text).toBe(200);
    expect(set.json.taxId).toBeNull();

    const draft = await h.document(invoice(previous));
    expect(draft.buyer).toEqual({ legalName: SECOND.legalName, addressLines: SECOND.addressLines, country: 'DE' });
    for (const [period, first] of [
      [older, underFirst],
      [oldest, beforeProfiles],
    ] as const) {
      const served = await h.call('GET', `/v1/invoices/${invoice(period)}`, FINANCE);
      expect(served.text).toBe(first.text);
      expect(served.headers.get('x-invoice-sha256')).toBe(first.sha256);
    }
    const oldPdf = (await readPdf((await h.call('GET', `/v1/invoices/${invoice(older)}`, ACME, undefined, { accept: 'application/pdf' })).buffer)).text.join('\n');
    expect(oldPdf).toContain(FIRST.legalName);
    expect(oldPdf).not.toContain(SECOND.legalName);
    const noProfile = (await readPdf((await h.call('GET', `/v1/invoices/${invoice(oldest)}`, ACME, undefined, { accept: 'application/pdf' })).buffer)).text.join('\n').replace(/\s+/g, ' ');
    expect(noProfile).toContain('Bill to Acme Customer ID acme');
    expect(noProfile).not.toContain('Tax ID: DE');

    const finalized = await h.finalize(invoice(previous));
    expect(finalized.buyer).toEqual(draft.buyer);
    const csv = await h.call('GET', `/v1/invoices/${invoice(previous)}`, ACME, undefined, { accept: 'text/csv' });
    expect(csv.text).not.toContain('buyer-tax-id');
    expect(csv.text).toContain(',buyer-address,Eingang B,');
  });

  it('names on a credit note the buyer of the invoice it corrects, as of its finalization', async () => {
    const issued = await h.call('POST', `/v1/invoices/${invoice(older)}/credit-notes`, FINANCE, { reason: 'goodwill', lines: [{ invoiceLine: 1, quantityGpuHours: '1' }] });
    expect(issued.status, issued.text).toBe(201);
    const note = (await h.call('GET', `/v1/credit-notes/${issued.json.creditNoteId}`, ACME)).json as CreditNoteDocument;
    expect(note.buyer).toEqual({ legalName: FIRST.legalName, addressLines: FIRST.addressLines, country: 'DE', taxId: 'DE123456789' });

    const csv = await h.call('GET', `/v1/credit-notes/${issued.json.creditNoteId}`, ACME, undefined, { accept: 'text/csv' });
    const rows = csv.text.trimEnd().split('\r\n').map((r) => r.split(','));
    const col = (name: string) => rows[0]!.indexOf(name);
    expect(rows.every((r) => r.length === rows[0]!.length)).toBe(true);
    expect(rows.filter((r) => r[col('kind')]!.startsWith('buyer')).map((r) => [r[col('kind')], r[col('description')]])).toEqual([
      ['buyer', FIRST.legalName],
      ['buyer-address', 'Hauptstraße 1'],
      ['buyer-address', '10115 Berlin'],
      ['buyer-country', 'DE'],
      ['buyer-tax-id', 'DE123456789'],
    ]);

    const read = await readPdf((await h.call('GET', `/v1/credit-notes/${issued.json.creditNoteId}`, ACME, undefined, { accept: 'application/pdf' })).buffer);
    expect(layoutProblems(read)).toEqual([]);
    const text = read.text.join('\n').replace(/\s+/g, ' ');
    for (const wanted of ['CREDIT NOTE', FIRST.legalName, '10115 Berlin', 'Germany', 'Tax ID: DE123456789']) expect(text, wanted).toContain(wanted);
    expect(text).not.toContain(SECOND.legalName);
  });

  it('rebuilds every finalized invoice and credit note byte for byte from the log', async () => {
    await h.settle();
    const db = h.runtime.db;
    const liveStore = new BillingStore(db, (n) => n);
    const { store } = await rebuildLedger(h.env.bus, db, '_rebuild_profiles', 60_000);
    try {
      const documents = async (s: BillingStore) => {
        const docs: string[] = [];
        for (const period of [oldest, older, previous]) docs.push((await s.invoice(invoice(period)))!.document!);
        return docs;
      };
      const [live, rebuilt] = [await documents(liveStore), await documents(store)];
      expect(rebuilt).toEqual(live);
      expect(live.map((d) => (JSON.parse(d) as InvoiceDocument).buyer?.legalName)).toEqual([undefined, FIRST.legalName, SECOND.legalName]);
      const notes = async (s: BillingStore) => (await new CreditNoteReader(s, new InvoiceReader(s, 'FGPU')).documents({ tenantId: null })).map(creditNoteJson);
      const [liveNotes, rebuiltNotes] = [await notes(liveStore), await notes(store)];
      expect(liveNotes).toHaveLength(1);
      expect(rebuiltNotes).toEqual(liveNotes);
    } finally {
      await dropRebuildTables(db, '_rebuild_profiles');
    }
  });
});
