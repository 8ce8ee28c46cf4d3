import { Body, Controller, Headers, HttpCode, Inject, Param, Post, UseGuards } from '@nestjs/common';
import { ApiKeyGuard, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { ApiDoc, parseInput } from '@fastgpu/http';
import { answer } from './invoices.controller';
import { InvoiceCommands } from './invoice-commands';
import { deleteDraftRequest, reissueRequest } from './invoices.schema';
import { deletedDraftResponse, reissueResponse } from './invoices.responses';

/**
 * The invoice lifecycle beyond finalize, pay and void (finance only): deleting a draft and
 * voiding an invoice with a reissue. Each is an audited event on the invoice's subject; the
 * Idempotency-Key rule holds (same key and body: the first answer; another body: 409).
 */
@Controller('v1/invoices')
@UseGuards(ApiKeyGuard)
@Roles('finance')
export class InvoiceLifecycleController {
  constructor(@Inject(InvoiceCommands) private readonly commands: InvoiceCommands) {}

  @Post(':invoiceId/delete')
  @HttpCode(200)
  @ApiDoc({
    summary: 'Delete a draft (InvoiceDraftDeleted): no number is used; its usage moves to a new draft of the period (usage=move) or is discarded (usage=discard)',
    body: deleteDraftRequest,
    response: deletedDraftResponse,
    errors: { 404: 'no such invoice', 409: 'finalized, already deleted, changed concurrently, or the Idempotency-Key was used for another request' },
    tags: ['billing'],
  })
  async deleteDraft(@CurrentPrincipal() principal: Principal, @Param('invoiceId') invoiceId: string, @Body() body: unknown, @Headers('idempotency-key') key: string | undefined) {
    const b = parseInput(deleteDraftRequest, body);
    return answer(() => this.commands.deleteDraft(invoiceId, { actor: principal.keyId, reason: b.reason }, { usage: b.usage, actionId: key }));
  }

  @Post(':invoiceId/reissue')
  @HttpCode(201)
  @ApiDoc({
    summary: 'Void a finalized, unpaid invoice (if not void yet) and reissue it (InvoiceReissued): a replacement draft of its period that takes the next number when finalized and references it',
    body: reissueRequest,
    response: reissueResponse,
    errors: { 404: 'no such invoice', 409: 'draft, paid, already reissued, changed concurrently, or the Idempotency-Key was used for another request' },
    tags: ['billing'],
  })
  async reissue(@CurrentPrincipal() principal: Principal, @Param('invoiceId') invoiceId: string, @Body() body: unknown, @Headers('idempotency-key') key: string | undefined) {
    const b = parseInput(reissueRequest, body);
    return answer(() => this.commands.reissue(invoiceId, { actor: principal.keyId, reason: b.reason }, { actionId: key }));
  }
}
