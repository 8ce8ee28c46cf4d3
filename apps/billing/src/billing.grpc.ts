import type { ModuleRef } from '@nestjs/core';
import { tenantScope } from '@fastgpu/auth';
import type { GrpcHandlers } from '@fastgpu/grpc';
import { invoiceCsv, invoiceJson, invoicePdf } from './invoices/invoice-exports';
import { answer } from './invoices/invoices.controller';
import { invoicePage, listInvoicesQuery, type ListInvoicesQuery } from './invoices/invoice-list';
import { InvoicesService } from './invoices/invoices.service';

/** Billing's gRPC ports: list and export invoices through the same service as HTTP. */
export function billingGrpcHandlers(ref: Pick<ModuleRef, 'get'>): Partial<GrpcHandlers> {
  const service = ref.get(InvoicesService, { strict: false });
  return {
    invoices: {
      listSchema: listInvoicesQuery,
      list: async (principal, query) => {
        const q = query as ListInvoicesQuery;
        return (await invoicePage(service, tenantScope(principal, q.tenantId), q)).invoices;
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
