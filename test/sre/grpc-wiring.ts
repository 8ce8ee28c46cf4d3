
import { tenantScope } from '@fastgpu/auth';
import type { GrpcHandlers } from '../../libs/grpc/src';
import { JobsService } from '../../apps/intake/src/jobs/jobs.service';
import { submitJobRequest } from '../../apps/intake/src/jobs/jobs.schema';
import { LeasesService } from '../../apps/intake/src/leases/leases.service';
import { requestLeaseBody, requestLeaseQuery } from '../../apps/intake/src/leases/leases.schema';
import { answer } from '../../apps/billing/src/invoices/invoices.controller';
import { invoiceCsv, invoiceJson, invoicePdf } from '../../apps/billing/src/invoices/invoice-exports';
import { InvoicesService } from '../../apps/billing/src/invoices/invoices.service';
import { listInvoicesQuery } from '../../apps/billing/src/invoices/invoices.schema';

/**
 * The composition-root wiring of the gRPC ports to the services the HTTP controllers use
 * (intake's JobsService and LeasesService, billing's InvoicesService). The lead copies this into apps/fastgpu
 * as `GrpcModule.forRoot({ port, handlers: grpcHandlers })` in the app's imports (or
 * `startGrpcServer(runtime, grpcHandlers(app), port)`); the tests use it as is.
 */
export function grpcHandlers(app: { get<T>(type: abstract new (...args: never[]) => T, options: { strict: false }): T }): GrpcHandlers {
  const jobs = app.get(JobsService, { strict: false });
  const handlers: GrpcHandlers = {
    jobs: {
      submitSchema: submitJobRequest,
      submit: (principal, request, idempotencyKey) => jobs.submit(principal, request as never, idempotencyKey),
      get: (principal, jobId) => jobs.get(principal, jobId),
      cancel: (principal, jobId, reason) => jobs.cancel(principal, jobId, reason),
    },
  };
  const leases = app.get(LeasesService, { strict: false });
  handlers.leases = {
    requestSchema: requestLeaseBody,
    querySchema: requestLeaseQuery,
    request: (principal, body, options) => leases.request(principal, body as never, options),
    get: (principal, leaseId) => leases.get(principal, leaseId),
    release: (principal, leaseId) => leases.release(principal, leaseId),
  };
  let invoices: InvoicesService | undefined;
  try {
    invoices = app.get(InvoicesService, { strict: false });
  } catch {
    invoices = undefined; // billing not in this process
  }
  if (invoices) {
    const service = invoices;
    handlers.invoices = {
      listSchema: listInvoicesQuery,
      list: (principal, query) => {
        const q = query as { tenantId?: string; period?: string; status?: string; limit: number };
        return service.list({ tenantId: tenantScope(principal, q.tenantId), period: q.period, status: q.status, limit: q.limit });
      },
      export: (principal, invoiceId, format) =>
        answer(async () => {
          const view = await service.view(invoiceId, principal.tenantId);
          if (format === 'pdf') return { contentType: 'application/pdf', content: await invoicePdf(view.document) };
          if (format === 'csv') return { contentType: 'text/csv; charset=utf-8', content: invoiceCsv(view.document) };
          return { contentType: 'application/json', content: invoiceJson(view.document) };
        }),
    };
  }
  return handlers;
}
