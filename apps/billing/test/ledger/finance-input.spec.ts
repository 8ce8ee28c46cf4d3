/**
 * Proves, on real NATS and Postgres, that finance routes validate before they publish (issue 14):
 * a price book whose `gpuModel` (or any other text) holds U+0000 or another control character
 * answers 400 with the field, nothing reaches the log, and invoices and price books keep working;
 * and the Idempotency-Key rule on credit grants and tax rates: the same key with the same body
 * answers the original grant, with another body (another amount, another tenant) 409 and nothing
 * published.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BillingHarness, FINANCE, FLAT_PRICES } from './harness';

let h: BillingHarness;

beforeAll(async () => {
  h = await BillingHarness.start();
  await h.tenant('acme');
  await h.tenant('globex');
  await h.priceBook(FLAT_PRICES);
});

afterAll(async () => {
  await h?.close();
});

describe('price-book text', () => {
  it('refuses U+0000 in gpuModel with 400 before publishing, and billing keeps working', async () => {
    const before = await h.streamEnd();
    const r = await h.call('POST', '/v1/price-books', FINANCE, { ...FLAT_PRICES, prices: [{ gpuModel: 'a\u0000100', capacityType: 'on-demand', pricePerGpuHour: '1.00' }] });
    expect(r.status, r.text).toBe(400);
    expect(r.json.error.field).toBe('prices.0.gpuModel');
    expect(await h.streamEnd()).toBe(before);

    const other = await h.call('POST', '/v1/price-books', FINANCE, { ...FLAT_PRICES, prices: [{ gpuModel: 'h100\u001b[31m', capacityType: 'on-demand', pricePerGpuHour: '1.00' }] });
    expect(other.status, other.text).toBe(400);
    expect(await h.streamEnd()).toBe(before);

    // The ledger is healthy: the next valid version publishes and invoices answer.
    const next = await h.call('POST', '/v1/price-books', FINANCE, { ...FLAT_PRICES, prices: [{ gpuModel: 'h100', capacityType: 'on-demand', pricePerGpuHour: '3.00' }] });
    expect(next.status, next.text).toBe(201);
    expect((await h.call('GET', '/v1/invoices', FINANCE)).status).toBe(200);
    const books = await h.call('GET', '/v1/price-books', FINANCE);
    expect(books.json.priceBooks.map((b: { version: number }) => b.version)).toEqual([1, 2]);
  });

  it('refuses control characters in reasons and tax-rate names', async () => {
    const before = await h.streamEnd();
    const grant = await h.call('POST', '/v1/billing/credit-grants', FINANCE, { tenantId: 'acme', amount: '1.00', reason: 'bad\u0000reason' });
    expect([grant.status, grant.json.error.field]).toEqual([400, 'reason']);
    const tax = await h.call('POST', '/v1/billing/tax-rates', FINANCE, { tenantId: 'acme', rates: [{ name: 'VAT\u0007', rate: '0.2' }], reason: 'vat' });
    expect([tax.status, tax.json.error.field]).toEqual([400, 'rates.0.name']);
    expect(await h.streamEnd()).toBe(before);
  });
});

describe('Idempotency-Key on credit grants and tax rates', () => {
  it('answers the same grant for the same body, 409 for another body, and publishes once', async () => {
    const body = { tenantId: 'acme', amount: '5.00', priority: 2, reason: 'welcome credit' };
    const first = await h.call('POST', '/v1/billing/credit-grants', FINANCE, body, { 'idempotency-key': 'grant-1' });
    expect(first.status, first.text).toBe(201);
    const afterFirst = await h.streamEnd();

    const retry = await h.call('POST', '/v1/billing/credit-grants', FINANCE, { ...body, amount: '5.0' }, { 'idempotency-key': 'grant-1' });
    expect(retry.status, retry.text).toBe(201);
    expect(retry.json.grantId).toBe(first.json.grantId);

    const otherAmount = await h.call('POST', '/v1/billing/credit-grants', FINANCE, { ...body, amount: '50.00' }, { 'idempotency-key': 'grant-1' });
    expect([otherAmount.status, otherAmount.json.error.code, otherAmount.json.error.field]).toEqual([409, 'idempotency_key_reused', 'amount']);
    const otherTenant = await h.call('POST', '/v1/billing/credit-grants', FINANCE, { ...body, tenantId: 'globex' }, { 'idempotency-key': 'grant-1' });
    expect([otherTenant.status, otherTenant.json.error.code, otherTenant.json.error.field]).toEqual([409, 'idempotency_key_reused', 'tenantId']);
    expect(await h.streamEnd()).toBe(afterFirst);
  });

  it('applies the same rule to tax rates', async () => {
    const body = { tenantId: 'acme', rates: [{ name: 'VAT', rate: '0.20' }], reason: 'vat' };
    expect((await h.call('POST', '/v1/billing/tax-rates', FINANCE, body, { 'idempotency-key': 'tax-1' })).status).toBe(201);
    const end = await h.streamEnd();
    expect((await h.call('POST', '/v1/billing/tax-rates', FINANCE, body, { 'idempotency-key': 'tax-1' })).status).toBe(201);
    const other = await h.call('POST', '/v1/billing/tax-rates', FINANCE, { ...body, rates: [{ name: 'VAT', rate: '0.19' }] }, { 'idempotency-key': 'tax-1' });
    expect([other.status, other.json.error.code]).toEqual([409, 'idempotency_key_reused']);
    expect(await h.streamEnd()).toBe(end);
  });
});
