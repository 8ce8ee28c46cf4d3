/**
 * Proves that `Accept` is honoured with q-values (RFC 9110 §12.5.1) by the one negotiation rule
 * (libs/http accept.ts) on every route that offers several representations, on a real nats-server
 * and PostgreSQL:
 * - the rule itself: media ranges, wildcards, specificity, q-values, q=0 as "not acceptable",
 *   the server's default without a header, 406 when nothing fits and 400 for a malformed header;
 *   for any header that says `application/pdf;q=0`, whatever else it says, the answer is never a PDF;
 * - an invoice (JSON, CSV, PDF), a credit note (JSON, CSV, PDF), the credit-note list and the
 *   invoices of one invoice's credit notes (JSON, CSV), the period export (JSON, CSV) and the SLA
 *   report (JSON, CSV, also with `?format=`) and both late-usage reports (billing's review items
 *   and metering's late allocations: JSON, CSV) answer the representation the header prefers, JSON
 *   without a header, and 406 in the one error shape with field `Accept` when nothing fits, also
 *   for a PDF asked of a list (there is none) and for `application/pdf;q=0` alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { negotiateMediaType, parseAccept, preferredOffer, type MediaOffer } from '@fastgpu/http';
import { ApiError } from '@fastgpu/http';
import { createBillingService } from '../../apps/billing/src/billing.service';
import { invoiceIdFor } from '../../apps/billing/src/ledger/invoice-ids';
import { meteringService } from '../../apps/metering/src/metering.service';
import { reliabilityService } from '../../apps/reliability/src/reliability.service';
import { monthBack, PRICE_BOOK, startPlatform, usage, type Answer, type Platform } from './harness';

type Format = 'json' | 'csv' | 'pdf';
const DOCUMENT: ReadonlyArray<MediaOffer<Format>> = [
  { value: 'json', mediaType: 'application/json; charset=utf-8' },
  { value: 'csv', mediaType: 'text/csv; charset=utf-8' },
  { value: 'pdf', mediaType: 'application/pdf' },
];

function choose(accept: string | undefined): Format | number {
  try {
    return negotiateMediaType(accept, DOCUMENT);
  } catch (error) {
    if (error instanceof ApiError) {
      expect(error.field).toBe('Accept');
      return error.status;
    }
    throw error;
  }
}

describe('the negotiation rule', () => {
  it.each([
    [undefined, 'json'],
    ['', 'json'],
    ['  ,  ', 'json'],
    ['*/*', 'json'],
    ['application/pdf', 'pdf'],
    ['APPLICATION/PDF', 'pdf'],
    ['text/csv', 'csv'],
    ['text/csv;charset=UTF-8', 'csv'],
    ['text/csv; charset="utf-8"', 'csv'],
    ['application/pdf;q=0, */*', 'json'],
    ['application/pdf;q=0, */*;q=0.1, text/csv;q=0.5', 'csv'],
    ['text/*;q=0.9, application/json;q=0.8', 'csv'],
    ['application/*;q=0.5, application/pdf;q=0', 'json'],
    ['application/*', 'json'],
    ['application/*, application/pdf', 'pdf'],
    ['text/csv, */*', 'csv'],
    ['*/*, text/csv', 'csv'],
    ['application/json, text/csv', 'json'],
    ['text/csv, application/json', 'csv'],
    ['text/csv;q=0.5, application/pdf;q=0.5', 'csv'],
    ['application/pdf;q=0.001, text/html', 'pdf'],
    ['text/csv;q=0, text/csv', 406],
    ['application/pdf;q=0', 406],
    ['application/pdf;q=0.0', 406],
    ['application/json;q=0, text/csv;q=0, application/pdf;q=0', 406],
    ['*/*;q=0', 406],
    ['text/html, image/png', 406],
    ['text/csv;charset=latin1', 406],
    ['application/json;version=2', 406],
    ['application/json;q=1.5', 400],
    ['application/json;q=0.1234', 400],
    ['application/json;q=abc', 400],
    ['application/json;q=0.5;foo=bar', 400],
    ['application', 400],
    ['*/csv', 400],
    ['text/csv;charset', 400],
    ['text/csv;charset="utf-8', 400],
  ] as const)('Accept %j → %j', (accept, expected) => {
    expect(choose(accept)).toBe(expected);
  });

  it('reads ranges, parameters and weights in order', () => {
    expect(parseAccept('text/CSV;Charset=UTF-8;q=0.5 , */*;q=0.1')).toEqual([
      { type: 'text', subtype: 'csv', parameters: { charset: 'utf-8' }, q: 0.5, index: 0 },
      { type: '*', subtype: '*', parameters: {}, q: 0.1, index: 1 },
    ]);
    expect(parseAccept('text/plain;format="a,b;c"')).toEqual([{ type: 'text', subtype: 'plain', parameters: { format: 'a,b;c' }, q: 1, index: 0 }]);
    expect(typeof parseAccept('x/y,'.repeat(65))).toBe('string');
  });

  it('never chooses a PDF when the header says application/pdf;q=0, whatever else it says', () => {
    const range = fc.constantFrom('*/*', 'application/*', 'text/*', 'application/json', 'text/csv', 'application/pdf', 'application/pdf;charset=utf-8', 'text/csv;charset=utf-8', 'image/png');
    const weight = fc.option(fc.constantFrom('1', '0.9', '0.5', '0.001', '0', '1.000'), { nil: undefined });
    const element = fc.tuple(range, weight).map(([r, q]) => (q === undefined ? r : `${r};q=${q}`));
    fc.assert(
      fc.property(fc.array(element, { maxLength: 8 }), fc.nat(8), (elements, at) => {
        const header = [...elements.slice(0, at), 'application/pdf;q=0', ...elements.slice(at)].join(', ');
        const ranges = parseAccept(header);
        if (typeof ranges === 'string') throw new Error(`${header}: ${ranges}`);
        expect(preferredOffer(ranges, DOCUMENT)).not.toBe('pdf');
      }),
      { numRuns: 2000 },
    );
  });
});

describe('routes that offer several representations', () => {
  let p: Platform;
  let finance: string;
  let acme: string;
  const past = monthBack(2);
  const invoiceId = invoiceIdFor('acme', past.period);
  let creditNoteId: string;

  const get = (path: string, headers: Record<string, string> = {}, key = finance) => p.http('GET', path, key, undefined, headers);
  const kind = (answer: Answer): string => `${answer.status} ${String(answer.headers['content-type'] ?? '').split(';')[0]}`;
  function notAcceptable(answer: Answer): void {
    expect(answer.status, answer.text).toBe(406);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.body).toEqual({ error: { code: 'not_acceptable', message: expect.any(String), field: 'Accept' } });
  }

  beforeAll(async () => {
    p = await startPlatform([createBillingService({ autoFinalizeIntervalMs: 0 }), reliabilityService, meteringService]);
    finance = await p.key('finance', null);
    acme = await p.key('tenant', 'acme');
    await p.publish('TenantCreated', { tenantId: 'acme', name: 'Acme', billingTimeZone: 'UTC', currency: 'USD', createdAt: '2020-01-01T00:00:00.000Z' }, { tenantId: 'acme' });
    expect((await p.http('POST', '/v1/price-books', finance, PRICE_BOOK)).status).toBe(201);
    await p.publish('UsageRecorded', usage('acme', 'u1', past.at(3), past.at(3, 20), { gpus: 2 }), { tenantId: 'acme' });
    await p.http('GET', '/v1/price-books', finance); // the ledger catches up
    const finalized = await p.http('POST', `/v1/invoices/${invoiceId}/finalize`, finance, { reason: 'month closed' }, { accept: 'application/json' });
    expect(finalized.status, finalized.text).toBe(200);
    const note = await p.http('POST', `/v1/invoices/${invoiceId}/credit-notes`, finance, { reason: 'goodwill', amount: '1.00' }, { 'idempotency-key': 'accept-test-1' });
    expect(note.status, note.text).toBe(201);
    creditNoteId = note.body.creditNoteId;
  });

  afterAll(async () => {
    await p?.close();
  });

  it('answers an invoice in the representation the header prefers, JSON without one', async () => {
    const path = `/v1/invoices/${invoiceId}`;
    expect(kind(await get(path))).toBe('200 application/json');
    expect((await get(path)).body.invoiceId).toBe(invoiceId);
    expect(kind(await get(path, { accept: 'application/pdf' }))).toBe('200 application/pdf');
    expect((await get(path, { accept: 'application/pdf' })).buffer.subarray(0, 5).toString()).toBe('%PDF-');
    expect(kind(await get(path, { accept: 'text/csv' }))).toBe('200 text/csv');
    expect(kind(await get(path, { accept: 'application/pdf;q=0, */*' }))).toBe('200 application/json');
    expect(kind(await get(path, { accept: 'application/pdf;q=0.2, text/csv;q=0.8' }))).toBe('200 text/csv');
    expect(kind(await get(path, { accept: 'application/*;q=0.9, application/pdf;q=0' }))).toBe('200 application/json');
    expect(kind(await get(path, { accept: 'text/html, application/pdf;q=0.5' }))).toBe('200 application/pdf');
    // A tenant reads its own invoice the same way.
    expect(kind(await get(path, { accept: 'text/csv' }, acme))).toBe('200 text/csv');
  });

  it('answers 406 with field Accept when nothing offered is acceptable, and 400 for a malformed header', async () => {
    const path = `/v1/invoices/${invoiceId}`;
    notAcceptable(await get(path, { accept: 'application/pdf;q=0' }));
    notAcceptable(await get(path, { accept: 'text/html' }));
    notAcceptable(await get(path, { accept: 'application/json;q=0, text/csv;q=0, application/pdf;q=0' }));
    const malformed = await get(path, { accept: 'application/pdf;q=2' });
    expect(malformed.status).toBe(400);
    expect(malformed.body).toEqual({ error: { code: 'invalid_request', message: expect.stringContaining('q must be'), field: 'Accept' } });
  });

  it('answers a credit note in JSON, CSV or PDF by Accept, and its lists in JSON or CSV only', async () => {
    const path = `/v1/credit-notes/${creditNoteId}`;
    expect(kind(await get(path))).toBe('200 application/json');
    expect(kind(await get(path, { accept: 'application/pdf' }))).toBe('200 application/pdf');
    expect(kind(await get(path, { accept: 'text/csv;q=1, application/json;q=0.5' }))).toBe('200 text/csv');
    notAcceptable(await get(path, { accept: 'application/pdf;q=0' }));
    for (const list of ['/v1/credit-notes', `/v1/invoices/${invoiceId}/credit-notes`, `/v1/invoices/export?period=${past.period}`]) {
      expect(kind(await get(list)), list).toBe('200 application/json');
      expect(kind(await get(list, { accept: 'text/csv' })), list).toBe('200 text/csv');
      expect(kind(await get(list, { accept: 'text/csv;q=0, */*' })), list).toBe('200 application/json');
      // There is no PDF of a list: a PDF-only header is not answered with JSON.
      notAcceptable(await get(list, { accept: 'application/pdf' }));
      notAcceptable(await get(list, { accept: 'application/json;q=0, text/csv;q=0' }));
    }
  });

  it('answers the SLA report in JSON or CSV by Accept or ?format=, which Accept still has to allow', async () => {
    const path = '/v1/sla-reports';
    expect(kind(await get(path, {}, acme))).toBe('200 application/json');
    expect(kind(await get(path, { accept: 'text/csv' }, acme))).toBe('200 text/csv');
    expect(kind(await get(path, { accept: 'text/csv;q=0.4, application/json;q=0.6' }, acme))).toBe('200 application/json');
    expect(kind(await get(`${path}?format=csv`, {}, acme))).toBe('200 text/csv');
    expect(kind(await get(`${path}?format=csv`, { accept: '*/*' }, acme))).toBe('200 text/csv');
    notAcceptable(await get(`${path}?format=csv`, { accept: 'text/csv;q=0, */*' }, acme));
    notAcceptable(await get(path, { accept: 'application/pdf' }, acme));
  });

  it('answers both late-usage reports in JSON or CSV by Accept, 406 when neither fits', async () => {
    for (const path of ['/v1/billing/late-usage', '/v1/usage/late']) {
      expect(kind(await get(path)), path).toBe('200 application/json');
      expect(kind(await get(path, { accept: 'text/csv' })), path).toBe('200 text/csv');
      expect(kind(await get(path, { accept: 'text/csv;q=0, */*' })), path).toBe('200 application/json');
      expect(kind(await get(path, { accept: 'application/json;q=0.1, text/*;q=0.2' })), path).toBe('200 text/csv');
      notAcceptable(await get(path, { accept: 'application/pdf' }));
      notAcceptable(await get(path, { accept: 'text/csv;q=0' }));
    }
  });
});
