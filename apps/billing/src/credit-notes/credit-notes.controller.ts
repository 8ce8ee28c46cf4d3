import { Controller, Get, Headers, Inject, Param, Query, Res, UseGuards } from '@nestjs/common';
import { ApiKeyGuard, CurrentPrincipal, Roles, tenantScope, type Principal } from '@fastgpu/auth';
import { ApiDoc, parseInput } from '@fastgpu/http';
import { BILLING_OPTIONS, type BillingOptions } from '../billing.config';
import { answer, negotiate, negotiateList } from '../invoices/invoices.controller';
import { presentationOf } from '../invoices/document-format';
import { creditNoteJson, creditNotePdf, creditNotesCsv, creditNoteSha256 } from './credit-note-document';
import { CreditNotesService } from './credit-notes.service';
import { creditNotePage, creditNotesPage, listCreditNotesPageQuery } from './credit-note-list';
import { creditNoteDocumentResponse } from './credit-notes.responses';

interface Reply {
  status(code: number): Reply;
  header(name: string, value: string): Reply;
  send(body: unknown): void;
}

/**
 * Credit notes as documents: tenants read their own (another tenant's note answers 404, like a
 * missing one), finance reads all. Issued through `POST /v1/invoices/{id}/credit-notes`.
 */
@Controller('v1/credit-notes')
@UseGuards(ApiKeyGuard)
@Roles('tenant', 'finance')
export class CreditNotesController {
  constructor(
    @Inject(CreditNotesService) private readonly creditNotes: CreditNotesService,
    @Inject(BILLING_OPTIONS) private readonly options: BillingOptions,
  ) {}

  @Get()
  @ApiDoc({
    summary:
      "Credit notes as documents: a tenant's own, finance all (?tenantId). Newest first, in pages (give nextCursor as cursor; in CSV the X-Next-Cursor header); filter by invoiceId, projectId and issue time [from, to); Accept application/json or text/csv",
    query: listCreditNotesPageQuery,
    response: creditNotesPage,
    media: ['text/csv'],
    errors: { 400: 'malformed parameter, or a cursor that is not one of this list', 406: 'Accept allows neither application/json nor text/csv', 422: 'to not after from' },
    tags: ['billing'],
  })
  async list(@CurrentPrincipal() principal: Principal, @Query() query: unknown, @Headers('accept') accept: string | undefined, @Res() reply: Reply) {
    const q = parseInput(listCreditNotesPageQuery, query, 'query');
    const format = negotiateList(accept);
    const page = await answer(() => creditNotePage(this.creditNotes, tenantScope(principal, q.tenantId), q));
    if (page.nextCursor) reply.header('x-next-cursor', page.nextCursor);
    if (format === 'csv') reply.status(200).header('content-type', 'text/csv; charset=utf-8').send(creditNotesCsv(page.creditNotes));
    else reply.status(200).header('content-type', 'application/json').send(`{"creditNotes":[${page.creditNotes.map(creditNoteJson).join(',')}],"nextCursor":${JSON.stringify(page.nextCursor)}}`);
  }

  @Get(':creditNoteId')
  @ApiDoc({ summary: 'One credit note: Accept application/json (canonical, the default; X-Credit-Note-Sha256 is the SHA-256 of these bytes), text/csv or application/pdf, with q-values', response: creditNoteDocumentResponse, media: ['text/csv', 'application/pdf'], errors: { 404: 'no such credit note for this caller', 406: 'Accept allows none of application/json, text/csv, application/pdf' }, tags: ['billing'] })
  async get(@CurrentPrincipal() principal: Principal, @Param('creditNoteId') creditNoteId: string, @Headers('accept') accept: string | undefined, @Res() reply: Reply) {
    const format = negotiate(accept);
    const doc = await answer(() => this.creditNotes.get(creditNoteId, principal.tenantId));
    reply.header('x-credit-note-sha256', creditNoteSha256(doc));
    if (format === 'pdf') reply.status(200).header('content-type', 'application/pdf').header('content-disposition', `inline; filename="${doc.number}.pdf"`).send(await creditNotePdf(doc, presentationOf(this.options)));
    else if (format === 'csv') reply.status(200).header('content-type', 'text/csv; charset=utf-8').send(creditNotesCsv([doc]));
    else reply.status(200).header('content-type', 'application/json').send(creditNoteJson(doc));
  }
}
