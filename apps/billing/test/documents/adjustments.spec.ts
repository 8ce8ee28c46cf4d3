/**
 * Proves, on a real nats-server and Postgres, that late usage shows what it corrects in every
 * format: usage of a finalized period lands on the next invoice as an adjustment line whose
 * `reference` is the corrected invoice's id, `referenceNumber` its number and `servicePeriod` the
 * period it was used in — in the JSON document, the CSV (service_period, reference,
 * reference_number) and the PDF (the service period as days in the tenant's zone, "corrects
 * invoice …"); and that a reissued invoice names the void invoice it replaces in JSON, CSV and PDF.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invoiceIdFor } from '../../src/ledger/invoice-ids';
import { DocumentsHarness, FINANCE, layoutProblems, readPdf, requirePoppler } from './harness';
import { HOUR_MS } from '@fastgpu/contracts';

let h: DocumentsHarness;

function monthBack(back: number): { period: string; year: number; month: number; at(day: number): string } {
  const now = new Date();
  const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1));
  const [year, month] = [first.getUTCFullYear(), first.getUTCMonth() + 1];
  return { period: `${year}-${String(month).padStart(2, '0')}`, year, month, at: (day) => new Date(Date.UTC(year, month - 1, day, 12)).toISOString() };
}
const plus = (instant: string, ms: number) => new Date(Date.parse(instant) + ms).toISOString();
const past = monthBack(2);
const next = monthBack(1);
const original = invoiceIdFor('acme', past.period);
const correcting = invoiceIdFor('acme', next.period);

/** "1–31 October 2026": the days of a month, written independently of the renderer (Intl). */
function monthDays(m: { year: number; month: number }): string {
  const lastDay = new Date(Date.UTC(m.year, m.month, 0)).getUTCDate();
  const name = new Intl.DateTimeFormat('en-GB', { month: 'long', timeZone: 'UTC' }).format(new Date(Date.UTC(m.year, m.month - 1, 15)));
  return `1–${lastDay} ${name} ${m.year}`;
}

beforeAll(async () => {
  await requirePoppler();
  h = await DocumentsHarness.start();
  await h.tenant('acme', 'Acme Corporation', 'UTC', 'USD');
  await h.priceBook({ priceBookId: 'standard', currency: 'USD', effectiveFrom: '2020-01-01T00:00:00.000Z', prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.00' }] });
  await h.usage('acme', 'on-time', past.at(3), plus(past.at(3), 10 * HOUR_MS));
  await h.usage('acme', 'current', next.at(3), plus(next.at(3), 2 * HOUR_MS));
  await h.settle();
  expect((await h.finalize(original)).number).toBe('FGPU-000001');
  // Arrives after the period's invoice was finalized: billed on the next one as an adjustment.
  await h.usage('acme', 'late', past.at(25), plus(past.at(25), 3 * HOUR_MS));
  await h.settle();
});

afterAll(async () => {
  await h?.close();
});

describe('adjustment lines', () => {
  it('name the corrected invoice and the service period in the JSON document', async () => {
    const doc = await h.document(correcting);
    const adjustment = doc.lines.find((l) => l.kind === 'adjustment')!;
    expect(adjustment).toMatchObject({ servicePeriod: past.period, reference: original, referenceNumber: 'FGPU-000001', amount: '6.00', quantityGpuHours: '3.000000' });
    expect(doc.lines.find((l) => l.kind === 'usage')).toMatchObject({ servicePeriod: next.period, reference: null });
  });

  it('name them in the CSV', async () => {
    const csv = await h.call('GET', `/v1/invoices/${correcting}`, FINANCE, undefined, { accept: 'text/csv' });
    const [header, ...rows] = csv.text.trimEnd().split('\r\n').map((r) => r.split(','));
    const col = (name: string) => header!.indexOf(name);
    const adjustment = rows.find((r) => r[col('kind')] === 'adjustment')!;
    expect([adjustment[col('service_period')], adjustment[col('reference')], adjustment[col('reference_number')], adjustment[col('amount')]]).toEqual([past.period, original, 'FGPU-000001', '6.00']);
  });

  it('print them in the PDF, the service period as days with the last one included', async () => {
    const finalized = await h.finalize(correcting);
    expect(finalized.number).toBe('FGPU-000002');
    const pdf = await h.call('GET', `/v1/invoices/${correcting}`, FINANCE, undefined, { accept: 'application/pdf' });
    const read = await readPdf(pdf.buffer);
    expect(layoutProblems(read)).toEqual([]);
    const text = read.text.join('\n').replace(/\s+/g, ' ');
    expect(text).toContain(`Late usage for ${past.period}`);
    expect(text).toContain(`Service period ${monthDays(past)} · corrects invoice FGPU-000001`);
    expect(text).toContain(`Service period ${monthDays(next)}`);
  });
});

describe('reissued invoices', () => {
  it('name the void invoice they replace in JSON, CSV and PDF', async () => {
    const reissued = await h.call('POST', `/v1/invoices/${correcting}/reissue`, FINANCE, { reason: 'billed to the wrong entity' });
    expect(reissued.status, reissued.text).toBe(201);
    const replacement = reissued.json.replacementInvoiceId as string;
    const doc = await h.finalize(replacement);
    expect(doc.replaces).toEqual({ invoiceId: correcting, number: 'FGPU-000002' });
    expect(doc.number).toBe('FGPU-000003');
    const csv = await h.call('GET', `/v1/invoices/${replacement}`, FINANCE, undefined, { accept: 'text/csv' });
    expect(csv.text).toContain(`,replaces,Replaces void invoice FGPU-000002,`);
    const read = await readPdf((await h.call('GET', `/v1/invoices/${replacement}`, FINANCE, undefined, { accept: 'application/pdf' })).buffer);
    expect(layoutProblems(read)).toEqual([]);
    expect(read.text.join('\n').replace(/\s+/g, ' ')).toContain('Replaces invoice FGPU-000002 (void)');
  });
});
