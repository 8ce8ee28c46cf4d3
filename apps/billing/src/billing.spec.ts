/**
 * Proves billing end to end on a real nats-server and Postgres: price books published through the
 * API, usage and tenants published as events, a draft that refuses to finalize while usage has no
 * price, finalization (gapless number, SHA-256 of the canonical JSON, InvoiceFinalized on the
 * bus), late usage before finalization (revision grows) and after (adjustment line on the next
 * invoice, or the review queue when too old), interruption and SLA credits, tax and prepaid
 * credit, pay / void / credit note rules with 409/422 that change nothing, finance actions as
 * audited events on the bus (actor and reason; Idempotency-Key retries record nothing new; a
 * concurrent pay and void land one, the other 409; an event the log's state forbids goes to review;
 * a void returns the prepaid credit the invoice used),
 * graduated and volume price tiers published through the API, tenant isolation,
 * evidence per line, what-if rating, and a full rebuild from the log into fresh tables that gives
 * byte-identical JSON, CSV and PDF for every finalized invoice (paid, void and credited ones
 * included) and the same finance actions; an SLA credit larger than its invoice carried forward
 * to the next invoices as their own lines, rebuilt to the same bytes; future-dated tax rates
 * (each period taxed at the rates in force when it ends).
 */
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { newEventId, type DomainEvent, type EventData } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { money, sumMoney } from '@fastgpu/money';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, insertTestApiKey, usageRecordedData, type TestEnvironment } from '@fastgpu/testing';
import { createBillingService } from './billing.service';
import { invoiceIdFor } from './ledger/invoice-ids';
import { dropRebuildTables, rebuildLedger } from './ledger/billing.rebuild';
import { InvoiceReader, statusOf } from './invoices/invoice.reader';
import { BillingStore } from './ledger/billing.store';
import { invoiceCsv, invoiceJson } from './invoices/invoice-csv';
import { invoicePdf } from './invoices/invoice-pdf';
import type { InvoiceDocument } from './invoices/invoice-document';

const execFileAsync = promisify(execFile);
const ADMIN = 'test-admin-key-0123456789abcdef';
const FINANCE = 'fgk_finance_key_for_tests_000000000';
const ACME = 'fgk_acme_key_for_tests_00000000000';
const GLOBEX = 'fgk_globex_key_for_tests_0000000000';

let env: TestEnvironment;
let runtime: OwnedRuntime;
let started: StartedApp;
let publisher: EventPublisher;

async function call(method: string, path: string, key: string, body?: unknown, accept = 'application/json', headers: Record<string, string> = {}) {
  const response = await fetch(`${started.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, accept, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const buffer = Buffer.from(await response.arrayBuffer());
  const text = buffer.toString('utf8');
  let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, buffer, text, json };
}

async function publish<T extends 'TenantCreated' | 'UsageRecorded' | 'SlaCreditIssued' | 'CreditNoteIssued'>(type: T, data: EventData<T>, tenantId: string): Promise<number> {
  const id = newEventId();
  const event = publisher.build(type, data, { id, time: '2026-11-01T00:00:00.000Z', tenantId, correlationId: id }) as DomainEvent;
  const published = await publisher.publish(event);
  return published.sequence;
}

let usageCounter = 0;
async function usage(tenantId: string, startAt: string, endAt: string, extra: Partial<EventData<'UsageRecorded'>> = {}): Promise<number> {
  usageCounter++;
  const data = usageRecordedData(tenantId, `use-${usageCounter}`, startAt, endAt, { jobId: `job-${usageCounter}`, subtaskId: `st-${usageCounter}`, sourceSequences: [1000 + usageCounter], ...extra });
  return publish('UsageRecorded', data, tenantId);
}

async function priceBook(body: unknown) {
  const r = await call('POST', '/v1/price-books', FINANCE, body);
  expect(r.status, r.text).toBe(201);
  return r.json as { version: number };
}

const invoiceOf = (tenantId: string, period: string) => invoiceIdFor(tenantId, period);
async function doc(invoiceId: string, key = FINANCE): Promise<InvoiceDocument> {
  const r = await call('GET', `/v1/invoices/${invoiceId}`, key);
  expect(r.status, r.text).toBe(200);
  return r.json as InvoiceDocument;
}
async function settle(): Promise<void> {
  // Every API read waits for nothing; waiting on an empty list route makes the ledger catch up.
  await call('GET', '/v1/price-books', FINANCE);
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN });
  runtime = await createRuntime(env.config);
  for (const [key, role, tenantId] of [
    [FINANCE, 'finance', null],
    [ACME, 'tenant', 'acme'],
    [GLOBEX, 'tenant', 'globex'],
  ] as const) {
    await insertTestApiKey(runtime.db, { keyId: `key-${role}-${tenantId ?? 'platform'}`, tenantId, role, issuedAt: new Date(), secret: key });
  }
  started = await startServices(runtime, [createBillingService({ autoFinalizeIntervalMs: 0 })], { port: 0, logger: false });
  publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test');
  await publish('TenantCreated', { tenantId: 'acme', name: 'Acme Corp', billingTimeZone: 'America/New_York', currency: 'USD', createdAt: '2026-01-01T00:00:00.000Z' }, 'acme');
  await publish('TenantCreated', { tenantId: 'globex', name: 'Globex KK', billingTimeZone: 'Asia/Tokyo', currency: 'JPY', createdAt: '2026-01-01T00:00:00.000Z' }, 'globex');
  const prices = (pricePerGpuHour: string, extra: object[] = []) => [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour }, ...extra];
  await priceBook({ priceBookId: 'standard', currency: 'USD', effectiveFrom: '2026-01-01T00:00:00.000Z', prices: prices('2.00') });
  await priceBook({ priceBookId: 'standard', currency: 'USD', effectiveFrom: '2026-10-15T00:00:00.000Z', prices: prices('2.50') });
  await priceBook({ priceBookId: 'japan', currency: 'JPY', effectiveFrom: '2026-01-01T00:00:00.000Z', prices: prices('350') });
});

afterAll(async () => {
  await started?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('billing on the log', () => {
  const octAcme = () => invoiceOf('acme', '2026-10');

  it('keeps a draft with usage that has no price, refuses to finalize it, and bills it once a price exists', async () => {
    await usage('acme', '2026-10-10T14:00:00.000Z', '2026-10-10T15:00:00.000Z'); // 1 GPU-h at 2.00
    await usage('acme', '2026-10-14T23:30:00.000Z', '2026-10-15T00:30:00.000Z', { gpus: 2 }); // split at the price change
    await usage('acme', '2026-10-20T10:00:00.000Z', '2026-10-20T10:30:00.000Z', { interrupted: true }); // billed, then credited
    await usage('acme', '2026-10-05T10:00:00.000Z', '2026-10-05T11:00:00.000Z', { gpuModel: 'h100' }); // no price yet
    await settle();
    const draft = await doc(octAcme());
    expect(draft.status).toBe('draft');
    expect(draft.validationErrors).toHaveLength(1);
    expect(draft.validationErrors[0]!.message).toMatch(/no price for h100/);
    expect(draft.lines.some((l) => l.gpuModel === 'h100')).toBe(false);

    const refused = await call('POST', `/v1/invoices/${octAcme()}/finalize`, FINANCE, { reason: 'month end', at: '2026-11-04T00:00:00.000Z' });
    expect(refused.status).toBe(422);
    expect(refused.json.error.code).toBe('invoice_invalid');
    expect((await doc(octAcme())).status).toBe('draft');

    await priceBook({ priceBookId: 'standard', currency: 'USD', effectiveFrom: '2026-10-01T04:00:00.000Z', prices: prices2() });
    const priced = await doc(octAcme());
    expect(priced.validationErrors).toEqual([]);
    expect(priced.lines.map((l) => [l.kind, l.gpuModel, l.priceBookVersion, l.quantityGpuMs, l.amount])).toEqual([
      ['usage', 'a100', 2, 5_400_000, '3.75'], // 2 GPUs × 30 min + 30 min interrupted, at 2.50
      ['usage', 'a100', 3, 7_200_000, '4.00'], // 1 GPU-h + 2 GPUs × 30 min before the change, at 2.00
      ['usage', 'h100', 3, 3_600_000, '4.00'],
      ['interruption-credit', 'a100', 2, 1_800_000, '-1.25'],
    ]);
    expect(priced.revision).toBe(4);
    function prices2() {
      return [
        { gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.00' },
        { gpuModel: 'h100', capacityType: 'on-demand', pricePerGpuHour: '4.00' },
      ];
    }
  });

  it('grows a draft revision with late usage, applies tax and prepaid credit, and finalizes with a number, hash and event', async () => {
    const before = await doc(octAcme());
    await usage('acme', '2026-10-31T23:00:00.000Z', '2026-11-01T03:59:00.000Z'); // still October in New York (UTC−4)
    await settle();
    const after = await doc(octAcme());
    expect(after.revision).toBe(before.revision + 1);
    expect(money(after.subtotal).minus(before.subtotal).toString()).toBe('12.46'); // the 2.50 line goes from 3.75 to 16.2083… → 16.21: rounded once per line, not per record
    expect((await call('POST', '/v1/billing/tax-rates', FINANCE, { tenantId: 'acme', rates: [{ name: 'VAT', rate: '0.1' }], reason: 'registered for VAT' })).status).toBe(201);
    expect((await call('POST', '/v1/billing/credit-grants', FINANCE, { tenantId: 'acme', amount: '5.00', priority: 1, reason: 'welcome credit' })).status).toBe(201);

    const finalized = await call('POST', `/v1/invoices/${octAcme()}/finalize`, FINANCE, { reason: 'month end', at: new Date().toISOString() });
    expect(finalized.status, finalized.text).toBe(200);
    const document = finalized.json as InvoiceDocument;
    expect(document.number).toBe('FGPU-000001');
    expect(document.subtotal).toBe('22.96');
    expect(document.taxes).toEqual([{ name: 'VAT', rate: '0.1', taxableAmount: '22.96', amount: '2.30' }]);
    expect(document.total).toBe('25.26');
    expect(document.prepaidCredits.map((p) => p.amount)).toEqual(['5.00']);
    expect(document.amountDue).toBe('20.26');

    const read = await call('GET', `/v1/invoices/${octAcme()}`, ACME);
    expect(read.status).toBe(200);
    const sha = createHash('sha256').update(read.buffer).digest('hex');
    expect(read.headers.get('x-invoice-sha256')).toBe(sha);
    const events = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.events, { last_by_subj: env.bus.topology.subjects.invoice(octAcme()) });
    const announced = events!.json<{ type: string; data: EventData<'InvoiceFinalized'> }>();
    expect(announced.type).toBe('InvoiceFinalized');
    expect(announced.data).toMatchObject({ number: 'FGPU-000001', sha256: sha, total: '25.26', priceBookVersion: 3, currency: 'USD' });
    expect(announced.data.cutoffSequence).toBe(document.cutoffSequence);
  });

  it('refuses to change a finalized invoice and puts usage that arrives after finalization on the next invoice', async () => {
    const again = await call('POST', `/v1/invoices/${octAcme()}/finalize`, FINANCE, { reason: 'again' });
    expect(again.status).toBe(409);
    expect((await call('PATCH', `/v1/invoices/${octAcme()}`, FINANCE, {})).status).toBe(409);
    const frozen = await call('GET', `/v1/invoices/${octAcme()}`, FINANCE);

    await usage('acme', '2026-10-25T10:00:00.000Z', '2026-10-25T11:00:00.000Z'); // late for October
    await usage('acme', '2026-11-10T10:00:00.000Z', '2026-11-10T10:00:30.000Z'); // 30 s → the 60 s minimum
    await settle();
    expect((await call('GET', `/v1/invoices/${octAcme()}`, FINANCE)).buffer.equals(frozen.buffer)).toBe(true);
    const november = await doc(invoiceOf('acme', '2026-11'));
    expect(november.lines.map((l) => [l.kind, l.servicePeriod, l.quantityGpuMs, l.amount])).toEqual([
      ['usage', '2026-11', 60_000, '0.04'],
      ['adjustment', '2026-10', 3_600_000, '2.50'],
    ]);
    expect(november.lines[1]!.description).toMatch(/Late usage for 2026-10/);
  });

  it('sends late usage older than two periods to the review queue, and SLA credits onto their invoice', async () => {
    for (const period of ['2026-07', '2026-08', '2026-09']) {
      await usage('globex', `${period}-10T00:00:00.000Z`, `${period}-10T01:00:00.000Z`);
      await settle();
      const r = await call('POST', `/v1/invoices/${invoiceOf('globex', period)}/finalize`, FINANCE, { reason: 'month end' });
      expect(r.status, r.text).toBe(200);
      expect(r.json.total).toBe('350');
    }
    await usage('globex', '2026-07-20T00:00:00.000Z', '2026-07-20T01:00:00.000Z'); // next open invoice is October: 3 back
    await usage('globex', '2026-08-20T00:00:00.000Z', '2026-08-20T00:10:00.000Z'); // 2 back: adjustment on October
    await publish('SlaCreditIssued', { creditId: 'sla-1', tenantId: 'globex', period: '2026-09', metric: 'gpu-availability', measured: '98.9', target: '99.5', creditPercent: 25, reportHash: 'x'.repeat(64), windowEndSequence: 1, issuedAt: '2026-10-02T00:00:00.000Z' }, 'globex');
    await settle();
    const review = await call('GET', '/v1/billing/review-queue?tenantId=globex', FINANCE);
    expect(review.json.items).toMatchObject([{ kind: 'usage', servicePeriod: '2026-07', reason: expect.stringMatching(/more than 2 periods/) }]);
    const october = await doc(invoiceOf('globex', '2026-10'));
    expect(october.lines.map((l) => [l.kind, l.servicePeriod, l.amount])).toEqual([
      ['adjustment', '2026-08', '58'], // 10 min at 350 ¥/h = 58.33 → 58
      ['sla-credit', '2026-09', '-58'], // 25 % of September's 350 ¥ = 87.5 → 88, capped at the 58 ¥ this invoice charges
    ]);
    expect(october.subtotal).toBe('0');
    expect(october.amountDue).toBe('0');
  });

  it('pays, voids and credits by the rules, and answers 409/422 without changing anything', async () => {
    const oct = octAcme();
    expect((await call('POST', `/v1/invoices/${invoiceOf('acme', '2026-11')}/pay`, FINANCE, { reason: 'too early' })).status).toBe(409);
    const tooMuch = await call('POST', `/v1/invoices/${oct}/credit-notes`, FINANCE, { amount: '25.27', reason: 'overbilled' });
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.json.error.code).toBe('credit_exceeds_invoice');
    const note = await call('POST', `/v1/invoices/${oct}/credit-notes`, FINANCE, { amount: '1.25', reason: 'overbilled GPU hour' }, 'application/json', { 'idempotency-key': 'cn-retry-1' });
    expect(note.status, note.text).toBe(201);
    expect(note.json).toMatchObject({ number: 'CN-FGPU-000001', amount: '1.25' });
    const retried = await call('POST', `/v1/invoices/${oct}/credit-notes`, FINANCE, { amount: '1.25', reason: 'overbilled GPU hour' }, 'application/json', { 'idempotency-key': 'cn-retry-1' });
    expect(retried.status, retried.text).toBe(201);
    expect(retried.json).toEqual(note.json); // the same credit note, recorded once
    const lastOnInvoice = async () => (await env.bus.jsm.streams.getMessage(env.bus.topology.streams.events, { last_by_subj: env.bus.topology.subjects.invoice(oct) }))!.json<{ id: string; type: string; data: Record<string, unknown> }>();
    const noteEvent = await lastOnInvoice();
    expect(noteEvent.type).toBe('CreditNoteIssued');
    expect(noteEvent.data).toMatchObject({ creditNoteId: note.json.creditNoteId, number: 'CN-FGPU-000001', amount: '1.25', actor: 'key-finance-platform', reason: 'overbilled GPU hour' });
    expect((await call('POST', `/v1/invoices/${oct}/credit-notes`, FINANCE, { amount: '24.02', reason: 'more' })).status).toBe(422);
    expect((await call('POST', `/v1/invoices/${oct}/pay`, ACME, { reason: 'tenants cannot' })).status).toBe(403);
    const paid = await call('POST', `/v1/invoices/${oct}/pay`, FINANCE, { reason: 'wire received', paymentReference: 'WIRE-1' });
    expect(paid.status, paid.text).toBe(200);
    expect(paid.json.status).toBe('paid'); // read-your-writes: the ledger applied the event before the answer
    // The payment is what the credit note left to pay: 20.26 due − 1.25 credited.
    expect((await lastOnInvoice()).data).toMatchObject({ amount: '19.01', paymentReference: 'WIRE-1', actor: 'key-finance-platform', reason: 'wire received' });
    expect((await call('POST', `/v1/invoices/${oct}/pay`, FINANCE, { reason: 'twice' })).status).toBe(409);
    const voided = await call('POST', `/v1/invoices/${oct}/void`, FINANCE, { reason: 'mistake' });
    expect(voided.status).toBe(409);
    expect(voided.json.error.code).toBe('invoice_paid');
    const status = await call('GET', `/v1/invoices/${oct}/status`, FINANCE);
    expect(status.json).toMatchObject({ status: 'paid', number: 'FGPU-000001', credited: '1.25' });
    expect(status.json.actions.map((a: { kind: string; actor: string }) => [a.kind, a.actor])).toEqual([
      ['CreditNoteIssued', 'key-finance-platform'],
      ['InvoicePaid', 'key-finance-platform'],
    ]);
    // An unpaid finalized invoice can be voided, and keeps its number.
    const sep = invoiceOf('globex', '2026-09');
    const v = await call('POST', `/v1/invoices/${sep}/void`, FINANCE, { reason: 'duplicate' });
    expect(v.status).toBe(200);
    expect(v.json).toMatchObject({ status: 'void', number: 'FGPU-000004' });

    // A credit note the log's state forbids (on a void invoice), published by someone else, is not applied: it goes to review.
    await publish('CreditNoteIssued', { creditNoteId: 'cn-foreign', invoiceId: sep, tenantId: 'globex', number: 'CN-FGPU-000002', amount: '10', currency: 'JPY', issuedAt: '2026-11-05T00:00:00.000Z', actor: 'someone', reason: 'not allowed' }, 'globex');
    await settle();
    const sepStatus = await call('GET', `/v1/invoices/${sep}/status`, FINANCE);
    expect(sepStatus.json).toMatchObject({ status: 'void', credited: '0', creditNotes: [] });
    const review = await call('GET', '/v1/billing/review-queue?tenantId=globex', FINANCE);
    expect(review.json.items).toContainEqual(expect.objectContaining({ kind: 'finance-action', referenceId: sep, reason: expect.stringMatching(/CreditNoteIssued not applied: a void invoice cannot be credited/) }));
  });

  it('shows tenants only their own invoices, with evidence per line, and exports CSV and PDF from the same document', async () => {
    expect((await call('GET', `/v1/invoices/${octAcme()}`, GLOBEX)).status).toBe(404);
    const own = await call('GET', '/v1/invoices', ACME);
    expect(own.json.invoices.every((i: { tenantId: string }) => i.tenantId === 'acme')).toBe(true);
    expect(own.json.invoices.length).toBe(2);
    const all = await call('GET', '/v1/invoices', FINANCE);
    expect(all.json.invoices.length).toBeGreaterThan(own.json.invoices.length);

    const evidence = await call('GET', `/v1/invoices/${octAcme()}/lines/4/evidence`, ACME);
    expect(evidence.status, evidence.text).toBe(200);
    expect(evidence.json.line.kind).toBe('interruption-credit');
    expect(evidence.json.usage).toHaveLength(1);
    expect(evidence.json.usage[0]).toMatchObject({ interrupted: true, gpuMs: 1_800_000 });
    expect(evidence.json.eventSequences).toContain(evidence.json.usage[0].eventSequence);
    expect((await call('GET', `/v1/invoices/${octAcme()}/lines/99/evidence`, ACME)).status).toBe(404);

    const csv = await call('GET', `/v1/invoices/${octAcme()}`, ACME, undefined, 'text/csv');
    expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
    const rows = csv.text.trim().split('\r\n').slice(1).map((r) => r.split(','));
    const amount = (kind: string) => rows.filter((r) => r[6] === kind).map((r) => money(r[16]!));
    const lineKinds = ['usage', 'adjustment', 'interruption-credit', 'sla-credit'];
    expect(sumMoney(rows.filter((r) => lineKinds.includes(r[6]!)).map((r) => money(r[16]!))).eq(amount('subtotal')[0]!)).toBe(true);
    expect(amount('subtotal')[0]!.plus(sumMoney(amount('tax'))).eq(amount('total')[0]!)).toBe(true);
    expect(amount('total')[0]!.plus(sumMoney(amount('prepaid-credit'))).eq(amount('amount-due')[0]!)).toBe(true);
    expect(rows.every((r) => /^-?\d+\.\d{2}$/.test(r[16]!))).toBe(true);

    const pdf = await call('GET', `/v1/invoices/${octAcme()}`, ACME, undefined, 'application/pdf');
    expect(pdf.headers.get('content-type')).toBe('application/pdf');
    expect(pdf.buffer.subarray(0, 5).toString()).toBe('%PDF-');
    expect(pdf.buffer.length).toBeGreaterThan(1500);
    const pdfAgain = await call('GET', `/v1/invoices/${octAcme()}`, ACME, undefined, 'application/pdf');
    expect(pdfAgain.buffer.equals(pdf.buffer)).toBe(true);
  });

  it('rates a past invoice under another price-book version without changing it', async () => {
    const before = await call('GET', `/v1/invoices/${octAcme()}`, FINANCE);
    const whatIf = await call('GET', `/v1/invoices/${octAcme()}/what-if?priceBookId=standard&version=2`, FINANCE);
    expect(whatIf.status, whatIf.text).toBe(200);
    expect(whatIf.json.validationErrors).toHaveLength(1); // h100 has no price in version 2
    const a100 = whatIf.json.lines.filter((l: { gpuModel: string; kind: string }) => l.gpuModel === 'a100' && l.kind === 'usage');
    expect(sumMoney(a100.map((l: { difference: string }) => money(l.difference))).toString()).toBe('1'); // 2 GPU-h moved from 2.00 to 2.50
    expect((await call('GET', `/v1/invoices/${octAcme()}/what-if?priceBookId=standard&version=9`, FINANCE)).status).toBe(422);
    expect((await call('GET', `/v1/invoices/${octAcme()}`, FINANCE)).buffer.equals(before.buffer)).toBe(true);
  });

  it('rates a period in one pass exactly as invoice by invoice, also after a price version re-rates the drafts', async () => {
    await publish('TenantCreated', { tenantId: 'initech', name: 'Initech GmbH', billingTimeZone: 'Europe/Berlin', currency: 'USD', createdAt: '2026-01-01T00:00:00.000Z' }, 'initech');
    await usage('initech', '2026-10-31T22:30:00.000Z', '2026-10-31T23:00:20.000Z', { gpus: 4 }); // crosses into November in Berlin (UTC+1)
    await usage('initech', '2026-10-14T23:59:00.000Z', '2026-10-15T00:00:30.500Z'); // crosses the price change, rounded up
    await usage('initech', '2026-11-02T08:00:00.000Z', '2026-11-02T08:00:10.000Z', { interrupted: true }); // minimum, then credited
    await usage('initech', '2026-11-03T08:00:00.000Z', '2026-11-03T09:00:00.000Z', { capacityType: 'reserved' }); // no price: per-piece fallback
    await settle();
    const reader = new InvoiceReader(new BillingStore(runtime.db, (n) => n), 'FGPU');
    const compare = async () => {
      const cutoff = await (await import('@fastgpu/messaging')).lastSequence(env.bus, env.bus.topology.streams.events);
      for (const period of ['2026-10', '2026-11']) {
        const bulk = await reader.periodDocuments(period, undefined, cutoff, 0);
        // One invoice per chunk: the path of a large period run (chunks by ranges of invoice ids, summed ahead).
        const chunked = await reader.periodDocuments(period, undefined, cutoff, 0, 1);
        const rows = await reader.rowsForPeriod(period);
        expect(bulk.length).toBe(rows.length);
        expect(rows.length).toBeGreaterThan(1);
        for (const [i, row] of rows.entries()) {
          const single = invoiceJson(await reader.document(row, cutoff, 0));
          expect(invoiceJson(bulk[i]!)).toBe(single);
          expect(invoiceJson(chunked[i]!)).toBe(single);
        }
      }
      return reader.periodDocuments('2026-11', 'initech', cutoff, 0);
    };
    const [november] = await compare();
    expect(november!.validationErrors).toHaveLength(1);
    expect(november!.lines.map((l) => [l.kind, l.quantityGpuMs])).toEqual([
      ['usage', 4 * 20_000 + 60_000],
      ['interruption-credit', 60_000],
    ]);
    await priceBook({ priceBookId: 'standard', currency: 'USD', effectiveFrom: '2026-11-01T00:00:00.000Z', prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '3.00' }, { gpuModel: 'a100', capacityType: 'reserved', pricePerGpuHour: '1.50' }] });
    const [repriced] = await compare();
    expect(repriced!.validationErrors).toEqual([]);
    expect(repriced!.lines.map((l) => [l.kind, l.capacityType, l.priceBookVersion, l.amount])).toEqual([
      ['usage', 'on-demand', 2, '0.06'], // 4 GPUs × 20 s of November before version 4 starts (UTC midnight)
      ['usage', 'on-demand', 4, '0.05'], // the 10 s allocation billed at its 60 s minimum, at 3.00
      ['usage', 'reserved', 4, '1.50'],
      ['interruption-credit', 'on-demand', 4, '-0.05'],
    ]);
  });

  it('finalizes drafts automatically once the grace period after their period has passed, by command time', async () => {
    const globexOct = invoiceOf('globex', '2026-10');
    // Tokyo's October ends 2026-10-31T15:00Z; the default grace is 72 h.
    const early = await call('POST', '/v1/invoices/finalize-due', FINANCE, { asOf: '2026-11-03T14:59:59.000Z' });
    expect(early.status, early.text).toBe(200);
    expect(early.json.finalized).toEqual([]);
    expect((await doc(globexOct)).status).toBe('draft');
    const due = await call('POST', '/v1/invoices/finalize-due', FINANCE, { asOf: '2026-11-03T15:00:00.000Z' });
    expect(due.json.finalized).toEqual([{ invoiceId: globexOct, number: 'FGPU-000005' }]);
    const finalized = await doc(globexOct);
    expect([finalized.status, finalized.finalizedAt, finalized.amountDue]).toEqual(['finalized', '2026-11-03T15:00:00.000Z', '0']);
    const future = await call('POST', `/v1/invoices/${invoiceOf('acme', '2026-11')}/finalize`, FINANCE, { reason: 'early', at: '2030-01-01T00:00:00.000Z' });
    expect(future.status).toBe(422);
  });

  it('lets only one of a concurrent pay and void land on an invoice, the other answering 409', async () => {
    const globexOct = invoiceOf('globex', '2026-10');
    const [pay, voided] = await Promise.all([
      call('POST', `/v1/invoices/${globexOct}/pay`, FINANCE, { reason: 'settled' }),
      call('POST', `/v1/invoices/${globexOct}/void`, FINANCE, { reason: 'cancelled' }),
    ]);
    expect([pay.status, voided.status].sort()).toEqual([200, 409]);
    const winner = pay.status === 200 ? 'paid' : 'void';
    const status = await call('GET', `/v1/invoices/${globexOct}/status`, FINANCE);
    expect(status.json.status).toBe(winner);
    expect(status.json.actions).toHaveLength(1);
  });

  it('accepts graduated and volume price tiers through POST /v1/price-books and rates them per period on the invoice', async () => {
    const tiers = (low: string, high: string) => [
      { upToGpuHours: 10, pricePerGpuHour: low },
      { upToGpuHours: null, pricePerGpuHour: high },
    ];
    const body = (prices: object[]) => ({ priceBookId: 'europe', currency: 'EUR', effectiveFrom: '2026-01-01T00:00:00.000Z', prices });
    const refused = async (prices: object[], code: string) => {
      const r = await call('POST', '/v1/price-books', FINANCE, body(prices));
      expect(r.status, r.text).toBe(422);
      expect(r.json.error.code).toBe(code);
    };
    await refused([{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.00', tierMode: 'volume' }], 'tier_mode_without_tiers');
    await refused([{ gpuModel: 'a100', capacityType: 'on-demand', tierMode: 'graduated', tiers: [{ upToGpuHours: 10, pricePerGpuHour: '2' }, { upToGpuHours: 5, pricePerGpuHour: '1' }, { upToGpuHours: null, pricePerGpuHour: '1' }] }], 'invalid_tiers');
    await refused([{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '9.99', tierMode: 'graduated', tiers: tiers('2.00', '1.50') }], 'price_not_first_tier');
    await priceBook(
      body([
        { gpuModel: 'a100', capacityType: 'on-demand', tierMode: 'graduated', tiers: tiers('2.00', '1.50') },
        { gpuModel: 'a100', capacityType: 'reserved', pricePerGpuHour: '1.00', tierMode: 'volume', tiers: tiers('1.00', '0.80') },
      ]),
    );
    const books = await call('GET', '/v1/price-books', ACME);
    const europe = books.json.priceBooks.find((b: { priceBookId: string }) => b.priceBookId === 'europe');
    expect(europe.prices[0]).toMatchObject({ pricePerGpuHour: '2.00', tierMode: 'graduated', tiers: tiers('2.00', '1.50') });

    await publish('TenantCreated', { tenantId: 'umbrella', name: 'Umbrella BV', billingTimeZone: 'UTC', currency: 'EUR', createdAt: '2026-01-01T00:00:00.000Z' }, 'umbrella');
    await usage('umbrella', '2026-10-02T00:00:00.000Z', '2026-10-02T08:00:00.000Z'); // 8 h on-demand
    await usage('umbrella', '2026-10-03T00:00:00.000Z', '2026-10-03T04:00:00.000Z'); // 4 h more: 2 h into tier 2
    await usage('umbrella', '2026-10-04T00:00:00.000Z', '2026-10-04T06:00:00.000Z', { capacityType: 'reserved' });
    await usage('umbrella', '2026-10-05T00:00:00.000Z', '2026-10-05T06:00:00.000Z', { capacityType: 'reserved' }); // 12 h in all: every hour at tier 2
    await usage('umbrella', '2026-11-02T00:00:00.000Z', '2026-11-02T03:00:00.000Z'); // November: tiers reset
    await settle();
    const october = await doc(invoiceOf('umbrella', '2026-10'));
    expect(october.validationErrors).toEqual([]);
    expect(october.lines.map((l) => [l.kind, l.capacityType, l.tier, l.quantityGpuMs! / 3_600_000, l.unitPrice, l.amount])).toEqual([
      ['usage', 'on-demand', 1, 10, '2.00', '20.00'],
      ['usage', 'on-demand', 2, 2, '1.50', '3.00'],
      ['usage', 'reserved', 2, 12, '0.80', '9.60'],
    ]);
    expect(october.subtotal).toBe('32.60');
    const november = await doc(invoiceOf('umbrella', '2026-11'));
    expect(november.lines.map((l) => [l.tier, l.amount])).toEqual([[1, '6.00']]);
    // A period run rates tiered invoices exactly as invoice by invoice does.
    const reader = new InvoiceReader(new BillingStore(runtime.db, (n) => n), 'FGPU');
    const cutoff = await (await import('@fastgpu/messaging')).lastSequence(env.bus, env.bus.topology.streams.events);
    const [bulk] = await reader.periodDocuments('2026-10', 'umbrella', cutoff, 0);
    expect(invoiceJson(bulk!)).toBe(invoiceJson(await reader.document((await reader.rowsForPeriod('2026-10', 'umbrella'))[0]!, cutoff, 0)));

    expect((await call('POST', '/v1/billing/credit-grants', FINANCE, { tenantId: 'umbrella', amount: '10.00', reason: 'launch credit' })).status).toBe(201);
    const finalized = await call('POST', `/v1/invoices/${invoiceOf('umbrella', '2026-10')}/finalize`, FINANCE, { reason: 'month end' });
    expect(finalized.status, finalized.text).toBe(200);
    expect(finalized.json).toMatchObject({ number: 'FGPU-000006', total: '32.60', amountDue: '22.60' });
    const note = await call('POST', `/v1/invoices/${invoiceOf('umbrella', '2026-10')}/credit-notes`, FINANCE, { amount: '3.00', reason: 'tier 2 hours waived' });
    expect(note.json).toMatchObject({ number: 'CN-FGPU-000002', amount: '3.00', currency: 'EUR' });
  });

  it('returns the prepaid credit a voided invoice used to the tenant', async () => {
    const november = () => doc(invoiceOf('umbrella', '2026-11'));
    expect((await november()).amountDue).toBe('6.00'); // the 10.00 grant went to October
    const voided = await call('POST', `/v1/invoices/${invoiceOf('umbrella', '2026-10')}/void`, FINANCE, { reason: 'issued to the wrong entity' });
    expect(voided.status, voided.text).toBe(200);
    const after = await november();
    expect(after.prepaidCredits.map((p) => p.amount)).toEqual(['6.00']);
    expect(after.amountDue).toBe('0.00');
    expect((await doc(invoiceOf('umbrella', '2026-10'))).amountDue).toBe('22.60'); // the void invoice keeps its document
  });

  it('rebuilds the ledger from the log into fresh tables with byte-identical JSON, CSV and PDF of every finalized invoice', async () => {
    const live = new InvoiceReader(new BillingStore(runtime.db, (n) => n), 'FGPU');
    const { store } = await rebuildLedger(env.bus, runtime.db, '_rebuild_test', 30_000);
    try {
      const rebuilt = new InvoiceReader(store, 'FGPU');
      const liveRows = (await runtime.db.selectFrom('billing_invoices').selectAll().where('status', '=', 'finalized').orderBy('invoice_id').execute()) as never[];
      const rebuiltRows = (await runtime.db.selectFrom(store.table('billing_invoices')).selectAll().where('status', '=', 'finalized').orderBy('invoice_id').execute()) as never[];
      expect(liveRows.length).toBe(6);
      expect(rebuiltRows).toEqual(liveRows);
      const statuses = new Set<string>();
      for (const row of liveRows) {
        const a = await live.document(row, 0, 0);
        const b = await rebuilt.document(row, 0, 0);
        expect(invoiceJson(b)).toBe(invoiceJson(a));
        expect(invoiceCsv(b)).toBe(invoiceCsv(a));
        expect((await invoicePdf(b)).equals(await invoicePdf(a))).toBe(true);
        // Payments, voids and credit notes come back from the log too.
        const [liveView, rebuiltView] = [await live.view(row, 0, 0), await rebuilt.view(row, 0, 0)];
        expect([statusOf(rebuiltView), rebuiltView.credited, rebuiltView.actions]).toEqual([statusOf(liveView), liveView.credited, liveView.actions]);
        statuses.add(statusOf(liveView));
        if (money(liveView.credited).gt(0)) statuses.add('credited');
      }
      for (const wanted of ['paid', 'void', 'credited']) expect(statuses.has(wanted), wanted).toBe(true);
      const concurrent = await live.view((await live.store.invoice(invoiceOf('globex', '2026-10')))!, 0, 0);
      const pay = statusOf(concurrent) === 'paid' ? 1 : 0; // which of the concurrent pay and void landed
      const actions = (await sql.raw('SELECT kind, count(*)::int AS n FROM billing_finance_actions GROUP BY kind ORDER BY kind').execute(runtime.db)).rows;
      expect(actions).toEqual([
        { kind: 'CreditGranted', n: 2 },
        { kind: 'CreditNoteIssued', n: 2 },
        { kind: 'InvoicePaid', n: 1 + pay },
        { kind: 'InvoiceVoided', n: 3 - pay },
        { kind: 'TaxRatesSet', n: 1 },
      ]);
      for (const table of ['billing_usage_pieces', 'billing_rated_parts', 'billing_sla_credits', 'billing_review_queue', 'billing_grant_usage', 'billing_tenants', 'billing_price_books', 'billing_usage', 'billing_finance_actions']) {
        const order = { billing_usage_pieces: 'event_id, piece', billing_rated_parts: 'event_id, piece, part', billing_review_queue: 'event_id, piece', billing_grant_usage: 'invoice_id, grant_id', billing_finance_actions: 'sequence' }[table] ?? 'event_id';
        const liveTable = (await sql.raw(`SELECT * FROM ${table} ORDER BY ${order}`).execute(runtime.db)).rows;
        const rebuiltTable = (await sql.raw(`SELECT * FROM ${table}_rebuild_test ORDER BY ${order}`).execute(runtime.db)).rows;
        expect(rebuiltTable, table).toEqual(liveTable);
      }
    } finally {
      await dropRebuildTables(runtime.db, '_rebuild_test');
    }
  });

  it('exports a period from the CLI as the API does, and verifies every finalized invoice against a rebuild', async () => {
    const cliEnv = { ...process.env, DATABASE_URL: env.config.databaseUrl, NATS_URL: env.config.natsUrl, FASTGPU_PREFIX: env.config.subjectPrefix };
    const run = (args: string[]) => execFileAsync(process.execPath, ['--import', 'tsx', 'apps/billing/src/cli/invoices.cli.ts', ...args], { env: cliEnv, encoding: 'utf8' });
    const exported = await run(['export', '--period', '2026-10', '--format', 'csv']);
    const api = await call('GET', '/v1/invoices/export?period=2026-10', FINANCE, undefined, 'text/csv');
    expect(api.status).toBe(200);
    expect(exported.stdout).toBe(api.text);
    expect(exported.stdout).toContain('FGPU-000001');
    const verified = await run(['verify']);
    expect(verified.stdout).toMatch(/6 finalized invoice\(s\) rebuilt from \d+ events: 0 difference\(s\)/);
    expect(verified.stdout).toMatch(/^same FGPU-000001 [0-9a-f]{64} paid credited 1\.25$/m);
    expect(verified.stdout).toMatch(/^same FGPU-000004 [0-9a-f]{64} void$/m);
    expect(verified.stdout).toMatch(/^same finance actions: 9 live, 9 rebuilt$/m);
  });

  it('carries an SLA credit larger than its invoice to the next invoices, as their own lines, and rebuilds them byte for byte', async () => {
    const globex = (period: string) => invoiceOf('globex', period);
    const kinds = (d: InvoiceDocument) => d.lines.map((l) => [l.kind, l.servicePeriod, l.amount, l.reference]);
    // October took 58 ¥ of the 88 ¥ credit (see above): 30 ¥ are carried forward.
    const october = await doc(globex('2026-10'));
    expect(october.creditsCarriedForward).toEqual([{ reference: 'sla-1', servicePeriod: '2026-09', originInvoiceId: globex('2026-10'), originNumber: 'FGPU-000005', amount: '30' }]);
    await usage('globex', '2026-11-10T00:00:00.000Z', '2026-11-10T00:03:00.000Z'); // 3 min at 350 ¥/h = 17.5 → 18 ¥
    await settle();
    const novemberDraft = await doc(globex('2026-11'));
    expect(kinds(novemberDraft)).toEqual([
      ['usage', '2026-11', '18', null],
      ['carried-credit', '2026-09', '-18', 'sla-1'],
    ]);
    expect(novemberDraft.lines[1]!.description).toBe('SLA credit for 2026-09 carried forward from invoice FGPU-000005 (sla-1)');
    expect([novemberDraft.subtotal, novemberDraft.amountDue]).toEqual(['0', '0']);
    // Its evidence is the SlaCreditIssued it carries, with that event's sequence.
    const evidence = await call('GET', `/v1/invoices/${globex('2026-11')}/lines/2/evidence`, FINANCE);
    expect(evidence.status, evidence.text).toBe(200);
    expect(evidence.json.slaCredits).toMatchObject([{ creditId: 'sla-1', period: '2026-09', percent: 25 }]);
    expect(evidence.json.eventSequences).toEqual([evidence.json.slaCredits[0].eventSequence]);
    const finalized = await call('POST', `/v1/invoices/${globex('2026-11')}/finalize`, FINANCE, { reason: 'month end' });
    expect(finalized.status, finalized.text).toBe(200);
    expect(finalized.json.creditsCarriedForward).toEqual([{ reference: 'sla-1', servicePeriod: '2026-09', originInvoiceId: globex('2026-10'), originNumber: 'FGPU-000005', amount: '12' }]);
    await usage('globex', '2026-12-10T00:00:00.000Z', '2026-12-10T01:00:00.000Z'); // 350 ¥
    await settle();
    const december = await doc(globex('2026-12'));
    expect(kinds(december)).toEqual([
      ['usage', '2026-12', '350', null],
      ['carried-credit', '2026-09', '-12', 'sla-1'],
    ]);
    expect([december.subtotal, december.amountDue, december.creditsCarriedForward]).toEqual(['338', '338', undefined]);

    // Rebuilt from the log alone: the same bytes for the invoices that carried and took the credit, and the same draft.
    const live = new InvoiceReader(new BillingStore(runtime.db, (n) => n), 'FGPU');
    const { store } = await rebuildLedger(env.bus, runtime.db, '_carry_test', 30_000);
    try {
      const rebuilt = new InvoiceReader(store, 'FGPU');
      for (const id of [globex('2026-10'), globex('2026-11')]) {
        const [a, b] = [await live.document((await live.store.invoice(id))!, 0, 0), await rebuilt.document((await rebuilt.store.invoice(id))!, 0, 0)];
        expect(invoiceJson(b)).toBe(invoiceJson(a));
        expect(invoiceCsv(b)).toBe(invoiceCsv(a));
        expect((await invoicePdf(b)).equals(await invoicePdf(a))).toBe(true);
      }
      const draft = async (reader: InvoiceReader) => invoiceJson(await reader.document((await reader.store.invoice(globex('2026-12')))!, Number.MAX_SAFE_INTEGER, 0));
      expect(await draft(rebuilt)).toBe(await draft(live));
    } finally {
      await dropRebuildTables(runtime.db, '_carry_test');
    }
  });

  it('taxes each period at the rates in force when it ends, future-dated rates included', async () => {
    const globex = (period: string) => invoiceOf('globex', period);
    const setRates = (body: object) => call('POST', '/v1/billing/tax-rates', FINANCE, { tenantId: 'globex', reason: 'consumption tax', ...body });
    const bad = await setRates({ rates: [{ name: 'JCT', rate: '0.1' }], effectiveFrom: 'next month' });
    expect(bad.status).toBe(422);
    expect(bad.json.error.field).toBe('effectiveFrom');
    // From December in Tokyo (midnight JST = 15:00 UTC the day before), and a change from January.
    expect((await setRates({ rates: [{ name: 'JCT', rate: '0.1' }], effectiveFrom: '2026-11-30T15:00:00.000Z' })).status).toBe(201);
    const later = await setRates({ rates: [{ name: 'JCT', rate: '0.08' }], effectiveFrom: '2026-12-31T15:00:00.000Z' });
    expect(later.status, later.text).toBe(201);
    expect(later.json).toMatchObject({ effectiveFrom: '2026-12-31T15:00:00.000Z' });
    await usage('globex', '2027-01-05T00:00:00.000Z', '2027-01-05T01:00:00.000Z'); // 350 ¥ in January
    await settle();
    const december = await doc(globex('2026-12'));
    expect([december.subtotal, december.taxes, december.total]).toEqual(['338', [{ name: 'JCT', rate: '0.1', taxableAmount: '338', amount: '34' }], '372']); // 33.8 → 34
    const january = await doc(globex('2027-01'));
    // January's draft is offered the 12 ¥ still carried too (whichever draft is finalized first takes it): 350 − 12 = 338.
    expect([january.subtotal, january.taxes, january.total]).toEqual(['338', [{ name: 'JCT', rate: '0.08', taxableAmount: '338', amount: '27' }], '365']); // 27.04 → 27
    // November ended before either rate took effect, and is finalized: unchanged, untaxed.
    expect((await doc(globex('2026-11'))).taxes).toEqual([]);
    // The same from a rebuild of the log.
    const { store } = await rebuildLedger(env.bus, runtime.db, '_tax_test', 30_000);
    try {
      const [live, rebuilt] = [new InvoiceReader(new BillingStore(runtime.db, (n) => n), 'FGPU'), new InvoiceReader(store, 'FGPU')];
      const draft = async (reader: InvoiceReader, id: string) => invoiceJson(await reader.document((await reader.store.invoice(id))!, Number.MAX_SAFE_INTEGER, Date.now()));
      for (const id of [globex('2026-12'), globex('2027-01')]) expect(await draft(rebuilt, id)).toBe(await draft(live, id));
    } finally {
      await dropRebuildTables(runtime.db, '_tax_test');
    }
  });
});

