import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Patch, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiKeyGuard, CurrentPrincipal, Roles, tenantScope, type Principal } from '@fastgpu/auth';
import { DomainError } from '@fastgpu/eventsourcing';
import { ApiDoc, ApiError, negotiateMediaType, notFound, parseInput, type MediaOffer } from '@fastgpu/http';
import { CreditNotesService } from '../credit-notes/credit-notes.service';
import { creditNoteRequest, creditNoteRequestOf } from '../credit-notes/credit-notes.schema';
import { creditNotesCsv, creditNoteJson } from '../credit-notes/credit-note-document';
import { BillingRejection } from './invoice.decider';
import { invoiceCsv, invoiceJson, periodCsv } from './invoice-csv';
import { invoicePdf } from './invoice-pdf';
import { presentationOf } from './document-format';
import { canonicalJson } from './invoice-document';
import { InvoiceNotFound, InvoiceQueries, summary } from './invoice-queries';
import { InvoiceCommands } from './invoice-commands';
import { TenantSettingsService } from '../finance-actions/tenant-settings.service';
import { ReviewQueueService } from '../ledger/review-queue.service';
import { creditGrantRequest, exportQuery, finalizeDueRequest, finalizeRequest, payRequest, taxRatesRequest, voidRequest, whatIfQuery } from './invoices.schema';
import { invoicePage, invoicesPage, invoiceSummarySchema, listInvoicesQuery } from './invoice-list';
import { creditNoteDocumentsResponse, creditNoteIssuedResponse } from '../credit-notes/credit-notes.responses';
import { reviewItemsResponse } from '../ledger/review.responses';
import { z } from 'zod';
import { idSchema } from '@fastgpu/contracts';
import {
  creditGrantResponse,
  evidenceResponse,
  finalizeDueResponse,
  invoiceDocumentResponse,
  invoiceDocumentsResponse,
  invoiceStatusResponse,
  taxRatesResponse,
  whatIfResponse,
} from './invoices.responses';

/** The review queue's one filter: a tenant id by the id rule (a NUL or a slash is a 400, not a database error). */
const reviewQueueQuery = z.object({ tenantId: idSchema.optional() }).strict();

interface Reply {
  status(code: number): Reply;
  header(name: string, value: string): Reply;
  send(body: unknown): void;
}

/** Maps billing's own refusals onto the shared HTTP error shape. */
export async function answer<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof BillingRejection) throw new ApiError(error.status, error.code, error.message, error.field);
    if (error instanceof InvoiceNotFound) throw notFound('invoice');
    if (error instanceof DomainError) {
      // `invoice_not_found` → "invoice not found", the same body as every other missing invoice.
      if (error.kind === 'not-found') throw notFound(error.code.replace(/_not_found$/, '').replace(/_/g, ' '));
      throw new ApiError(error.kind === 'validation' ? 422 : 409, error.code, error.message, error.field);
    }
    throw error;
  }
}

export type Format = 'json' | 'csv' | 'pdf';
const JSON_OFFER: MediaOffer<'json'> = { value: 'json', mediaType: 'application/json; charset=utf-8' };
const CSV_OFFER: MediaOffer<'csv'> = { value: 'csv', mediaType: 'text/csv; charset=utf-8' };
/** One document (invoice, credit note): JSON (canonical, the default), CSV or PDF. */
const DOCUMENT_OFFERS: ReadonlyArray<MediaOffer<Format>> = [JSON_OFFER, CSV_OFFER, { value: 'pdf', mediaType: 'application/pdf' }];
/** Several documents (exports, lists): JSON (the default) or CSV; there is no PDF of a list. */
const LIST_OFFERS: ReadonlyArray<MediaOffer<'json' | 'csv'>> = [JSON_OFFER, CSV_OFFER];

/** The representation of one document by `Accept` and its q-values (libs/http accept.ts); nothing acceptable: 406. */
export function negotiate(accept: string | undefined): Format {
  return negotiateMediaType(accept, DOCUMENT_OFFERS, 'the document');
}
/** The representation of a list or export by `Accept`: JSON or CSV; nothing acceptable (a PDF only, say): 406. */
export function negotiateList(accept: string | undefined): 'json' | 'csv' {
  return negotiateMediaType(accept, LIST_OFFERS, 'the list');
}

/**
 * Invoices: tenants read their own (another tenant's invoice answers 404); finance and admin read
 * all, finalize, pay, void, issue credit notes and ask what-if questions. Every finance action
 * carries its actor (the API key) and a reason.
 */
@Controller('v1/invoices')
@UseGuards(ApiKeyGuard)
@Roles('tenant', 'finance')
export class InvoicesController {
  constructor(
    @Inject(InvoiceQueries) private readonly queries: InvoiceQueries,
    @Inject(InvoiceCommands) private readonly commands: InvoiceCommands,
    @Inject(CreditNotesService) private readonly creditNotes: CreditNotesService,
  ) {}

  @Get()
  @ApiDoc({
    summary: "List invoices: a tenant's own; finance and admin all (?tenantId). Newest period first, in pages (give nextCursor as cursor); filter by period, periods [from, to), status and projectId",
    query: listInvoicesQuery,
    response: invoicesPage,
    errors: { 400: 'malformed parameter, or a cursor that is not one of this list', 422: 'to not after from' },
    tags: ['billing'],
  })
  async list(@CurrentPrincipal() principal: Principal, @Query() query: unknown) {
    const q = parseInput(listInvoicesQuery, query, 'query');
    return invoicePage(this.queries, tenantScope(principal, q.tenantId), q);
  }

  @Get('export')
  @Roles('finance')
  @ApiDoc({ summary: 'Every invoice of a period as one CSV (Accept: text/csv) or a JSON array of documents', query: exportQuery, response: invoiceDocumentsResponse, media: ['text/csv'], errors: { 406: 'Accept allows neither application/json nor text/csv' }, tags: ['billing'] })
  async exportPeriod(@Query() query: unknown, @Headers('accept') accept: string | undefined, @Res() reply: Reply) {
    const q = parseInput(exportQuery, query, 'query');
    const format = negotiateList(accept);
    const docs = await answer(() => this.queries.periodDocuments(q.period, q.tenantId ?? null));
    if (format === 'csv') reply.status(200).header('content-type', 'text/csv; charset=utf-8').send(periodCsv(docs));
    else reply.status(200).header('content-type', 'application/json').send(canonicalJson(docs));
  }

  @Get(':invoiceId')
  @ApiDoc({ summary: 'One invoice document: Accept application/json (canonical, the default), text/csv or application/pdf, with q-values (q=0: never that type)', response: invoiceDocumentResponse, media: ['text/csv', 'application/pdf'], errors: { 404: 'no such invoice for this caller', 406: 'Accept allows none of application/json, text/csv, application/pdf' }, tags: ['billing'] })
  async get(@CurrentPrincipal() principal: Principal, @Param('invoiceId') invoiceId: string, @Headers('accept') accept: string | undefined, @Res() reply: Reply) {
    const format = negotiate(accept);
    const view = await answer(() => this.queries.view(invoiceId, principal.tenantId));
    reply.header('x-invoice-status', summary(view).status);
    if (view.row.sha256) reply.header('x-invoice-sha256', view.row.sha256);
    if (format === 'pdf') {
      const pdf = await invoicePdf(view.document, presentationOf(this.queries.options));
      reply.status(200).header('content-type', 'application/pdf').header('content-disposition', `inline; filename="${view.document.number ?? view.document.invoiceId}.pdf"`).send(pdf);
    } else if (format === 'csv') {
      reply.status(200).header('content-type', 'text/csv; charset=utf-8').send(invoiceCsv(view.document));
    } else {
      reply.status(200).header('content-type', 'application/json').send(invoiceJson(view.document));
    }
  }

  @Get(':invoiceId/status')
  @ApiDoc({ summary: 'Status, totals, credit notes, the balance due after them, and the audited finance actions of an invoice (each an event on the bus)', response: invoiceStatusResponse, errors: { 404: 'no such invoice for this caller' }, tags: ['billing'] })
  async status(@CurrentPrincipal() principal: Principal, @Param('invoiceId') invoiceId: string) {
    const view = await answer(() => this.queries.view(invoiceId, principal.tenantId));
    return {
      ...summary(view),
      creditNotes: view.actions.filter((a) => a.kind === 'CreditNoteIssued').map((a) => a.payload),
      actions: view.actions.map((a) => ({ kind: a.kind, actor: a.actor, reason: a.reason, at: new Date(a.at_ms).toISOString(), eventId: a.event_id, eventSequence: a.sequence })),
    };
  }

  @Get(':invoiceId/lines/:line/evidence')
  @ApiDoc({ summary: 'The usage records and event sequences behind one invoice line', response: evidenceResponse, errors: { 404: 'no such invoice or line' }, tags: ['billing'] })
  async evidence(@CurrentPrincipal() principal: Principal, @Param('invoiceId') invoiceId: string, @Param('line') line: string) {
    const n = Number(line);
    if (!Number.isInteger(n) || n < 1) throw new ApiError(400, 'invalid_request', 'line must be a positive integer', 'line');
    return answer(() => this.queries.evidence(invoiceId, n, principal.tenantId));
  }

  @Get(':invoiceId/what-if')
  @Roles('finance')
  @ApiDoc({ summary: 'Rate the invoice under another price-book version; changes nothing, shows the difference per line', query: whatIfQuery, response: whatIfResponse, tags: ['billing'] })
  async whatIf(@Param('invoiceId') invoiceId: string, @Query() query: unknown) {
    const q = parseInput(whatIfQuery, query, 'query');
    return answer(() => this.queries.whatIf(invoiceId, q.priceBookId, q.version));
  }

  @Post('finalize-due')
  @HttpCode(200)
  @Roles('finance')
  @ApiDoc({ summary: 'Finalize every draft whose grace period ended at asOf (default: now)', body: finalizeDueRequest, response: finalizeDueResponse, tags: ['billing'] })
  async finalizeDue(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    const b = parseInput(finalizeDueRequest, body);
    const asOf = b.asOf ? new Date(b.asOf) : new Date();
    return answer(() => this.commands.finalizeDue(asOf, { actor: principal.keyId, reason: b.reason }));
  }

  @Post(':invoiceId/finalize')
  @HttpCode(200)
  @Roles('finance')
  @ApiDoc({ summary: 'Finalize a draft: number it, freeze it, announce InvoiceFinalized', body: finalizeRequest, response: invoiceDocumentResponse, errors: { 404: 'no such invoice', 409: 'already finalized', 422: 'validation errors (usage without a price)' }, tags: ['billing'] })
  async finalize(@CurrentPrincipal() principal: Principal, @Param('invoiceId') invoiceId: string, @Body() body: unknown) {
    const b = parseInput(finalizeRequest, body ?? {});
    return answer(() => this.commands.finalize(invoiceId, { actor: principal.keyId, reason: b.reason }, b.at ? new Date(b.at) : new Date()));
  }

  @Post(':invoiceId/pay')
  @HttpCode(200)
  @Roles('finance')
  @ApiDoc({ summary: 'Record payment of a finalized invoice', body: payRequest, response: invoiceSummarySchema, errors: { 409: 'draft, already paid or void, or the invoice changed concurrently' }, tags: ['billing'] })
  async pay(@CurrentPrincipal() principal: Principal, @Param('invoiceId') invoiceId: string, @Body() body: unknown, @Headers('idempotency-key') key: string | undefined) {
    const b = parseInput(payRequest, body);
    return answer(async () => summary(await this.commands.pay(invoiceId, { actor: principal.keyId, reason: b.reason }, { paymentReference: b.paymentReference, actionId: key })));
  }

  @Post(':invoiceId/void')
  @HttpCode(200)
  @Roles('finance')
  @ApiDoc({ summary: 'Void a finalized, unpaid invoice (it keeps its number)', body: voidRequest, response: invoiceSummarySchema, errors: { 409: 'draft, paid or already void, or the invoice changed concurrently' }, tags: ['billing'] })
  async void(@CurrentPrincipal() principal: Principal, @Param('invoiceId') invoiceId: string, @Body() body: unknown, @Headers('idempotency-key') key: string | undefined) {
    const b = parseInput(voidRequest, body);
    return answer(async () => summary(await this.commands.void(invoiceId, { actor: principal.keyId, reason: b.reason }, { actionId: key })));
  }

  @Post(':invoiceId/credit-notes')
  @HttpCode(201)
  @Roles('finance')
  @ApiDoc({
    summary: 'Issue a credit note against a finalized invoice: lines (a quantity, an amount, or all that is left of each) or a lump amount including tax; numbered CN-<issuer>-NNNNNN',
    body: creditNoteRequest,
    response: creditNoteIssuedResponse,
    errors: { 404: 'no such invoice', 409: 'draft or void invoice, changed concurrently, or an Idempotency-Key used for another request', 422: 'more than is left to credit, unknown or uncreditable line, bad precision' },
    tags: ['billing'],
  })
  async creditNote(@CurrentPrincipal() principal: Principal, @Param('invoiceId') invoiceId: string, @Body() body: unknown, @Headers('idempotency-key') key: string | undefined) {
    const b = parseInput(creditNoteRequest, body);
    return answer(async () => (await this.creditNotes.issue(invoiceId, { actor: principal.keyId, reason: b.reason }, creditNoteRequestOf(b), key)).creditNote);
  }

  @Get(':invoiceId/credit-notes')
  @ApiDoc({ summary: 'The credit notes against one invoice, as documents (Accept: application/json or text/csv)', response: creditNoteDocumentsResponse, media: ['text/csv'], errors: { 404: 'no such invoice for this caller', 406: 'Accept allows neither application/json nor text/csv' }, tags: ['billing'] })
  async creditNotesOf(@CurrentPrincipal() principal: Principal, @Param('invoiceId') invoiceId: string, @Headers('accept') accept: string | undefined, @Res() reply: Reply) {
    const format = negotiateList(accept);
    const docs = await answer(async () => {
      const view = await this.creditNotes.reader().invoices.viewOf(invoiceId, principal.tenantId);
      return this.creditNotes.list({ tenantId: view.row.tenant_id, invoiceId });
    });
    if (format === 'csv') reply.status(200).header('content-type', 'text/csv; charset=utf-8').send(creditNotesCsv(docs));
    else reply.status(200).header('content-type', 'application/json').send(`{"creditNotes":[${docs.map(creditNoteJson).join(',')}]}`);
  }

  @Patch(':invoiceId')
  @Roles('finance')
  @ApiDoc({ summary: 'Invoices are not edited: finalized ones never change (409); drafts follow their usage (422)', success: {}, errors: { 409: 'finalized', 422: 'draft' }, tags: ['billing'] })
  async edit(@Param('invoiceId') invoiceId: string) {
    const view = await answer(() => this.queries.view(invoiceId, null));
    if (view.row.status === 'finalized') throw new ApiError(409, 'invoice_finalized', 'a finalized invoice never changes; correct it with a credit note');
    throw new ApiError(422, 'invoice_draft', 'a draft is computed from usage, price books and credits; change those instead');
  }
}

/** Finance settings that shape invoices: prepaid credit grants, tax rates, and the review queue of late usage. */
@Controller('v1/billing')
@UseGuards(ApiKeyGuard)
@Roles('finance')
export class BillingAdminController {
  constructor(
    @Inject(TenantSettingsService) private readonly settings: TenantSettingsService,
    @Inject(ReviewQueueService) private readonly review: ReviewQueueService,
  ) {}

  @Post('credit-grants')
  @HttpCode(201)
  @ApiDoc({ summary: 'Grant prepaid credit to a tenant (priority, optional expiry)', body: creditGrantRequest, response: creditGrantResponse, tags: ['billing'] })
  async grant(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Headers('idempotency-key') key: string | undefined) {
    const b = parseInput(creditGrantRequest, body);
    return answer(() => this.settings.grantCredit({ ...b, actor: principal.keyId, actionId: key }));
  }

  @Post('tax-rates')
  @HttpCode(201)
  @ApiDoc({ summary: "Set a tenant's tax rates: from `effectiveFrom` (periods ending after it; may be in the future), or for invoices finalized from now on", body: taxRatesRequest, response: taxRatesResponse, tags: ['billing'] })
  async taxRates(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Headers('idempotency-key') key: string | undefined) {
    const b = parseInput(taxRatesRequest, body);
    return answer(() => this.settings.setTaxRates({ ...b, actor: principal.keyId, actionId: key }));
  }

  @Get('review-queue')
  @ApiDoc({ summary: 'Late usage and credits too old for an adjustment line, for review', query: reviewQueueQuery, response: reviewItemsResponse, tags: ['billing'] })
  async reviewQueue(@Query() query: Record<string, unknown>) {
    const { tenantId } = parseInput(reviewQueueQuery, query, 'query');
    return { items: await this.review.reviewQueue(tenantId ?? null) };
  }
}
