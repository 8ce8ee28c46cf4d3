/**
 * Proves, with a generic gRPC client built from server reflection alone (as a third-party
 * integrator's), on a real nats-server and PostgreSQL, that billing's gRPC surface is typed field
 * by field and its 64-bit integers are exact:
 * - ListInvoices answers `invoices` as InvoiceSummary messages with every field of the HTTP
 *   summary (the descriptor has exactly those fields; each value equals the HTTP item's, absent
 *   where HTTP says null, the uint64 cutoff sequence as its exact decimal string), and keeps field
 *   1 `invoices_json` (marked deprecated) with the same items for existing clients;
 * - it pages like GET /v1/invoices (limit, cursor, next_cursor; project and period filters), keeps
 *   tenants apart whatever the cursor, and answers a bad cursor, limit or period with
 *   INVALID_ARGUMENT naming the gRPC field;
 * - a uint64 sent to the server is read exactly: WatchJob with from_sequence 2^64−1 is refused
 *   naming that exact number (read as a JS number it would have been rounded to 2^64).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { ErrorTrailers } from '../../libs/grpc/src';
import { createBillingService } from '../../apps/billing/src/billing.service';
import { invoiceIdFor } from '../../apps/billing/src/ledger/invoice-ids';
import { intakeService } from '../../apps/intake/src/intake.service';
import { ADMIN, monthBack, PRICE_BOOK, startPlatform, usage, type Platform } from './harness';
import { meta, reflect, rejection, unary, type AnyClient, type ReflectedApi } from './reflection-client';

type Summary = Record<string, unknown>;
let p: Platform;
let api: ReflectedApi;
let billing: AnyClient;
let intake: AnyClient;
let finance: string;
const keys: Record<string, string> = {};
const MONTHS = 7;

const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
/** The HTTP item as the typed message should carry it: null fields absent, the uint64 as a decimal string. */
function expectedMessage(item: Summary): Summary {
  return Object.fromEntries(Object.entries(item).filter(([, v]) => v !== null).map(([k, v]) => [k, k === 'cutoffSequence' ? String(v as number) : v]));
}

/** A message as decoded, without proto-loader's markers of which proto3 `optional` fields are set (`_number: 'number'`). */
function fields(message: Summary): Summary {
  return Object.fromEntries(Object.entries(message).filter(([k]) => !k.startsWith('_')));
}

async function listBoth(key: string, query: { limit?: number; cursor?: string; projectId?: string; fromPeriod?: string; toPeriod?: string }) {
  const answer = await unary<{ invoices: Summary[]; invoicesJson: string[]; nextCursor?: string }>(billing, 'ListInvoices', query, meta(key));
  const response = { ...answer, invoices: answer.invoices.map(fields) };
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ limit: query.limit, cursor: query.cursor, projectId: query.projectId, from: query.fromPeriod, to: query.toPeriod })) if (value !== undefined) params.set(name, String(value));
  const http = await p.http('GET', `/v1/invoices?${params.toString()}`, key);
  expect(http.status, http.text).toBe(200);
  return { grpc: response, http: http.body as { invoices: Summary[]; nextCursor: string | null } };
}

beforeAll(async () => {
  p = await startPlatform([intakeService, createBillingService({ autoFinalizeIntervalMs: 0 })]);
  finance = await p.key('finance', null);
  for (const tenantId of ['acme', 'globex']) {
    const created = await p.http('POST', '/v1/tenants', ADMIN, { tenantId, name: tenantId });
    expect(created.status, created.text).toBe(201);
    keys[tenantId] = await p.key('tenant', tenantId);
  }
  expect((await p.http('POST', '/v1/price-books', finance, PRICE_BOOK)).status).toBe(201);
  for (let back = 1; back <= MONTHS; back++) {
    const month = monthBack(back);
    await p.publish('UsageRecorded', usage('acme', `acme-${back}`, month.at(4), month.at(4, 19), { gpus: 3, projectId: back % 2 ? 'odd' : 'even' }), { tenantId: 'acme' });
  }
  await p.publish('UsageRecorded', usage('globex', 'globex-1', monthBack(1).at(6), monthBack(1).at(6, 14)), { tenantId: 'globex' });
  await p.http('GET', '/v1/price-books', finance); // the ledger catches up
  // Two finalized invoices (number, finalizedAt, sha256 set), the rest drafts (absent).
  for (const back of [1, 2]) expect((await p.http('POST', `/v1/invoices/${invoiceIdFor('acme', monthBack(back).period)}/finalize`, finance, { reason: 'month closed' })).status).toBe(200);
  api = await reflect(`127.0.0.1:${p.started.grpcPort}`);
  billing = api.client('fastgpu.billing.v1.BillingService');
  intake = api.client('fastgpu.intake.v1.IntakeService');
});

afterAll(async () => {
  billing?.close();
  intake?.close();
  await p?.close();
});

describe('ListInvoices', () => {
  it('declares InvoiceSummary with exactly the fields of the HTTP summary, field 1 kept and deprecated, and next_cursor', () => {
    const summary = (api.definition['fastgpu.billing.v1.InvoiceSummary'] as { type: { field: Array<{ name: string }> } }).type;
    const response = (api.definition['fastgpu.billing.v1.ListInvoicesResponse'] as { type: { field: Array<{ name: string; number: number; label: string; typeName: string; options?: { deprecated?: boolean } | null }> } }).type;
    const httpFields = ['invoiceId', 'tenantId', 'period', 'status', 'number', 'revision', 'currency', 'subtotal', 'total', 'amountDue', 'credited', 'balanceDue', 'finalizedAt', 'cutoffSequence', 'priceBookVersion', 'sha256', 'validationErrors'];
    expect(summary.field.map((f) => camel(f.name)).sort()).toEqual([...httpFields].sort());
    const byName = Object.fromEntries(response.field.map((f) => [camel(f.name), f]));
    expect(byName.invoicesJson).toMatchObject({ number: 1, label: 'LABEL_REPEATED', options: { deprecated: true } });
    expect(byName.invoices).toMatchObject({ number: 2, label: 'LABEL_REPEATED', typeName: 'InvoiceSummary' });
    expect(byName.nextCursor).toMatchObject({ number: 3 });
    const cutoff = summary.field.find((f) => camel(f.name) === 'cutoffSequence') as unknown as { type: string };
    expect(cutoff.type).toBe('TYPE_UINT64');
  });

  it('answers typed summaries equal to the HTTP items, page by page, with the deprecated JSON alongside', async () => {
    // Each HTTP summary field is present in the first page's data (finalized and draft invoices).
    const seen: Summary[] = [];
    let cursor: string | undefined;
    for (let page = 0; page <= MONTHS; page++) {
      const { grpc: answer, http } = await listBoth(keys.acme!, { limit: 3, ...(cursor ? { cursor } : {}) });
      expect(answer.invoices).toEqual(http.invoices.map(expectedMessage));
      expect(answer.invoicesJson.map((json: string) => JSON.parse(json))).toEqual(http.invoices);
      expect(answer.nextCursor).toBe(http.nextCursor ?? undefined);
      seen.push(...http.invoices);
      if (!answer.nextCursor) break;
      cursor = answer.nextCursor;
    }
    expect(seen.map((i) => i.period)).toEqual(Array.from({ length: MONTHS }, (_, i) => monthBack(i + 1).period));
    const finalized = seen.filter((i) => i.status === 'finalized');
    expect(finalized).toHaveLength(2);
    expect(finalized.every((i) => typeof i.sha256 === 'string' && typeof i.number === 'string' && typeof i.finalizedAt === 'string')).toBe(true);
    // The uint64 reaches the generic client as the exact decimal string of the HTTP number.
    const first = (await unary(billing, 'ListInvoices', { limit: 1 }, meta(keys.acme))).invoices[0] as Summary;
    expect(typeof first.cutoffSequence).toBe('string');
    expect(first.cutoffSequence).toMatch(/^\d+$/);
  });

  it('filters by project and periods, and keeps tenants apart whatever the cursor', async () => {
    const odd = await listBoth(keys.acme!, { limit: 500, projectId: 'odd' });
    expect(odd.grpc.invoices.map((i: Summary) => i.period)).toEqual([1, 3, 5, 7].map((back) => monthBack(back).period));
    expect(odd.grpc.invoices).toEqual(odd.http.invoices.map(expectedMessage));
    const window = await listBoth(keys.acme!, { limit: 500, fromPeriod: monthBack(5).period, toPeriod: monthBack(2).period });
    expect(window.grpc.invoices.map((i: Summary) => i.period)).toEqual([3, 4, 5].map((back) => monthBack(back).period));
    const acmeCursor = (await unary(billing, 'ListInvoices', { limit: 1 }, meta(keys.acme))).nextCursor as string;
    const globex = await unary(billing, 'ListInvoices', { limit: 500, cursor: acmeCursor, tenantId: 'acme' }, meta(keys.globex));
    expect(globex.invoices.map((i: Summary) => i.tenantId)).toEqual(globex.invoices.map(() => 'globex'));
    expect((await unary(billing, 'ListInvoices', { limit: 500 }, meta(keys.globex))).invoices).toHaveLength(1);
    // Finance lists every tenant's.
    const all = await unary(billing, 'ListInvoices', { limit: 500 }, meta(finance));
    expect(new Set(all.invoices.map((i: Summary) => i.tenantId))).toEqual(new Set(['acme', 'globex']));
  });

  it('answers a bad cursor, limit or period with INVALID_ARGUMENT naming the gRPC field', async () => {
    for (const [request, field] of [
      [{ cursor: 'forged' }, 'cursor'],
      [{ cursor: Buffer.from(JSON.stringify(['jobs', 1, 'x'])).toString('base64url') }, 'cursor'],
      [{ limit: 0 }, 'limit'],
      [{ limit: 501 }, 'limit'],
      [{ fromPeriod: '2026-13' }, 'fromPeriod'],
      [{ toPeriod: '0000-01' }, 'toPeriod'],
    ] as const) {
      const error = await rejection(unary(billing, 'ListInvoices', request, meta(keys.acme)));
      expect([error.code, error.metadata.get(ErrorTrailers.field)[0]], JSON.stringify(request)).toEqual([grpc.status.INVALID_ARGUMENT, field]);
    }
  });
});

describe('64-bit integers sent to the server', () => {
  it('reads a uint64 exactly: from_sequence 2^64−1 is refused naming that exact number', async () => {
    const submitted = await p.http('POST', '/v1/jobs', keys.acme, { projectId: 'odd', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeSeconds: 60 }, { 'idempotency-key': 'watch-1' });
    expect(submitted.status, submitted.text).toBe(202);
    const max = '18446744073709551615';
    const error = await new Promise<grpc.ServiceError>((resolve, reject) => {
      const stream = intake.WatchJob!({ jobId: submitted.body.jobId, fromSequence: max }, meta(keys.acme)) as grpc.ClientReadableStream<unknown>;
      stream.on('data', () => reject(new Error('a stream from beyond the log')));
      stream.on('error', resolve);
    });
    expect([error.code, error.metadata.get(ErrorTrailers.field)[0]]).toEqual([grpc.status.INVALID_ARGUMENT, 'fromSequence']);
    expect(error.details).toContain(`fromSequence: ${max} is not in the log`);
  });
});
