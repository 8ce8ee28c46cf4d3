import { nameId } from '@fastgpu/contracts';

/** The ids and numbers of invoices: one current invoice per tenant and period, numbers `<issuer>-NNNNNN` gapless per issuer. */
export function invoiceIdFor(tenantId: string, period: string): string {
  return nameId('invoice', tenantId, period);
}

export function parseInvoiceNumber(number: string): { issuer: string; sequence: number } {
  const m = /^(.+)-(\d{6,})$/.exec(number);
  if (!m) throw new Error(`invoice number "${number}" is not <issuer>-<sequence>`);
  return { issuer: m[1]!, sequence: Number(m[2]) };
}

export function formatInvoiceNumber(issuer: string, sequence: number): string {
  return `${issuer}-${String(sequence).padStart(6, '0')}`;
}
