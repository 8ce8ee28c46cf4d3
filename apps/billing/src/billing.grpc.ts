import type { ModuleRef } from '@nestjs/core';
import { z } from 'zod';
import { tenantScope } from '@fastgpu/auth';
import type { GrpcHandlers } from '@fastgpu/grpc';
import { PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX } from '@fastgpu/http';
import { invoiceCsv, invoiceJson } from './invoices/invoice-csv';
import { invoicePdf } from './invoices/invoice-pdf';
import { answer } from './invoices/invoices.controller';
import { invoicePage, listInvoicesQuery, type InvoiceSummary, type ListInvoicesQuery } from './invoices/invoice-list';
import { InvoiceQueries } from './invoices/invoice-queries';

const { from, to, limit: _httpLimit, ...shared } = listInvoicesQuery.shape;
/**
 * ListInvoicesRequest as proto-loader decodes it, read by the HTTP query's rules: the same
 * fields, with `from_period`/`to_period` for `from`/`to` and `limit` a number, so an error names
 * the gRPC field.
 */
export const listInvoicesRequest = z
  .object({ ...shared, fromPeriod: from, toPeriod: to, limit: z.number().int().min(1).max(PAGE_LIMIT_MAX).default(PAGE_LIMIT_DEFAULT) })
  .transform(({ fromPeriod, toPeriod, ...rest }): ListInvoicesQuery => ({ ...rest, from: fromPeriod, to: toPeriod }));

/**
 * An invoice summary as the InvoiceSummary message: every field of the HTTP item, typed; absent
 * where HTTP has null (proto3 optional); the uint64 sequence as its decimal string, which the
 * encoder writes exactly (a JS number would be exact only up to 2^53).
 */
export function invoiceSummaryMessage(item: InvoiceSummary): Record<string, unknown> {
  const present = <T>(value: T | null) => (value === null ? undefined : value);
  return {
    invoiceId: item.invoiceId,
    tenantId: item.tenantId,
    period: item.period,
    status: item.status,
    number: present(item.number),
    revision: item.revision,
    currency: item.currency,
    subtotal: item.subtotal,
    total: item.total,
    amountDue: item.amountDue,
    credited: item.credited,
    balanceDue: item.balanceDue,
    finalizedAt: present(item.finalizedAt),
    cutoffSequence: String(item.cutoffSequence),
    priceBookVersion: present(item.priceBookVersion),
    sha256: present(item.sha256),
    validationErrors: item.validationErrors,
  };
}

/** Billing's gRPC ports: list and export invoices through the same service as HTTP. */
export function billingGrpcHandlers(ref: Pick<ModuleRef, 'get'>): Partial<GrpcHandlers> {
  const service = ref.get(InvoiceQueries, { strict: false });
  return {
    invoices: {
      listSchema: listInvoicesRequest,
      list: async (principal, query) => {
        const q = query as ListInvoicesQuery;
        const page = await invoicePage(service, tenantScope(principal, q.tenantId), q);
        return {
          // Field 1, deprecated: the same summaries as JSON, for clients written before field 2.
          invoicesJson: page.invoices.map((item) => JSON.stringify(item)),
          invoices: page.invoices.map(invoiceSummaryMessage),
          nextCursor: page.nextCursor ?? undefined,
        };
      },
      export: (principal, invoiceId, format) =>
        answer(async () => {
          const view = await service.view(invoiceId, principal.tenantId);
          if (format === 'pdf') return { contentType: 'application/pdf', content: await invoicePdf(view.document) };
          if (format === 'csv') return { contentType: 'text/csv; charset=utf-8', content: invoiceCsv(view.document) };
          return { contentType: 'application/json', content: invoiceJson(view.document) };
        }),
    },
  };
}
