import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '@fastgpu/contracts';
import { CREDIT_NOTE_SCHEMA, creditNoteRequestSha256, creditNoteSha256, type CreditNoteDocument } from './credit-note-document';
import type { CreditNoteRequest } from './credit-note.decider';

/**
 * A credit note's hashes are contracts (the `x-credit-note-sha256` header, `CreditNoteIssued.requestSha256`
 * compared on a retried Idempotency-Key), so they keep their bytes: billing once hashed by hand with
 * `createHash('sha256').update(canonicalJson(…)).digest('hex')`; it now takes `sha256Hex` of libs/contracts.
 * The former way is kept here and the digests recorded with it stay the same.
 */
const formerSha256 = (value: unknown): string => createHash('sha256').update(canonicalJson(value)).digest('hex');

const note: CreditNoteDocument = {
  schema: CREDIT_NOTE_SCHEMA,
  creditNoteId: 'cn-1',
  number: 'CN-FGPU-000001',
  invoiceId: 'inv-1',
  invoiceNumber: 'FGPU-000042',
  tenant: { tenantId: 'acme', name: 'Acmé Ünïcode 株式会社 🚀', billingTimeZone: 'Europe/Berlin' },
  currency: 'EUR',
  issuedAt: '2026-11-20T10:00:00.000Z',
  actor: 'finance-1',
  reason: 'agreed with the customer — “goodwill”',
  split: true,
  lines: [
    { line: 1, invoiceLine: 2, description: 'GPU time a100 on-demand', servicePeriod: '2026-10', quantityGpuHours: '1.5', unitPrice: '2.00', net: '3.00', taxes: [{ name: 'VAT', rate: '19', amount: '0.57' }], tax: '0.57', total: '3.57' },
  ],
  net: '3.00',
  taxes: [{ name: 'VAT', rate: '19', amount: '0.57' }],
  total: '3.57',
  buyer: { legalName: 'Acmé GmbH', addressLines: ['Straße 1', '10115 Berlin'], country: 'DE', taxId: 'DE123456789' },
};

const requests: Array<{ invoiceId: string; request: CreditNoteRequest; reason: string }> = [
  { invoiceId: 'inv-1', request: { kind: 'amount', amount: '10.00' }, reason: 'agreed' },
  { invoiceId: 'inv-2', request: { kind: 'lines', lines: [{ invoiceLine: 1, quantityGpuHours: '0.25' }, { invoiceLine: 3 }] }, reason: 'überzahlt 🚀' },
];

describe('credit-note hashes (libs/contracts sha256Hex of canonical JSON)', () => {
  it('hash a document to the same digest as before', () => {
    expect(creditNoteSha256(note)).toBe(formerSha256(note));
    expect(creditNoteSha256(note)).toBe('a75f189b6e0e5d8b46a26f2de91554840d66e1de9de824703e9d366d00c3d30f');
    const { buyer: _buyer, ...withoutBuyer } = note;
    expect(creditNoteSha256(withoutBuyer)).toBe(formerSha256(withoutBuyer));
  });

  it('hash a request to the same digest as before', () => {
    const digests = requests.map((r) => creditNoteRequestSha256(r.invoiceId, r.request, r.reason));
    expect(digests).toEqual(requests.map((r) => formerSha256({ invoiceId: r.invoiceId, request: r.request, reason: r.reason })));
    expect(digests).toEqual(['a5921e4c5c774641fc9dd1289959b40d9db883da0a917570ab99840630d2bda2', 'cc78ae22b901e4694cf7b002146a6ed9b1a7988c1f727da83b37c4055b7cd903']);
  });
});
