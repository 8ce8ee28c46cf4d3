import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiKeyGuard, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { ApiDoc, ApiError, notFound, parseInput } from '@fastgpu/http';
import { answer, negotiateList } from '../invoices/invoices.controller';
import { ReviewItemNotFound, ReviewQueueService } from './review-queue.service';
import { billReviewItemRequest, dismissReviewItemRequest, lateUsageQuery } from '../invoices/invoices.schema';
import { reviewDecisionResponse, reviewItemsResponse } from './review.responses';

interface Reply {
  status(code: number): Reply;
  header(name: string, value: string): Reply;
  send(body: unknown): void;
}

/** Columns of the late-usage report (CSV), in order. */
export const LATE_USAGE_COLUMNS = ['event_id', 'piece', 'kind', 'tenant_id', 'usage_id', 'service_period', 'gpu_model', 'capacity_type', 'gpus', 'start_at', 'end_at', 'gpu_ms', 'status', 'invoice_id', 'event_sequence', 'reason'] as const;

function csvField(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function parsePiece(piece: string): number {
  const n = Number(piece);
  if (!Number.isInteger(n) || n < 0) throw new ApiError(400, 'invalid_request', 'piece must be a non-negative integer', 'piece');
  return n;
}

async function reviewAnswer<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await answer(work);
  } catch (error) {
    if (error instanceof ReviewItemNotFound) throw notFound('review item');
    throw error;
  }
}

/**
 * Finance's decisions on review items of usage (late usage too old for an adjustment, external
 * usage reported beyond the lateness horizon): bill onto an open draft, or dismiss — each an event
 * (`LateUsageBilled`, `LateUsageDismissed`), never billed automatically. And the late-usage report.
 */
@Controller('v1/billing')
@UseGuards(ApiKeyGuard)
@Roles('finance')
export class ReviewQueueController {
  constructor(@Inject(ReviewQueueService) private readonly review: ReviewQueueService) {}

  @Post('review-queue/:eventId/:piece/bill')
  @HttpCode(200)
  @ApiDoc({ summary: 'Bill a review item of usage onto an open draft of its tenant (LateUsageBilled); an adjustment line when the draft is of a later period', body: billReviewItemRequest, response: reviewDecisionResponse, errors: { 404: 'no such item', 409: 'decided already, or not usage', 422: 'the invoice is not an open draft of the tenant' }, tags: ['billing'] })
  async bill(@CurrentPrincipal() principal: Principal, @Param('eventId') eventId: string, @Param('piece') piece: string, @Body() body: unknown) {
    const b = parseInput(billReviewItemRequest, body);
    return reviewAnswer(() => this.review.decideReviewItem('bill', eventId, parsePiece(piece), { actor: principal.keyId, reason: b.reason }, b.invoiceId));
  }

  @Post('review-queue/:eventId/:piece/dismiss')
  @HttpCode(200)
  @ApiDoc({ summary: 'Dismiss a review item of usage (LateUsageDismissed): it is never billed', body: dismissReviewItemRequest, response: reviewDecisionResponse, errors: { 404: 'no such item', 409: 'decided already, or not usage' }, tags: ['billing'] })
  async dismiss(@CurrentPrincipal() principal: Principal, @Param('eventId') eventId: string, @Param('piece') piece: string, @Body() body: unknown) {
    const b = parseInput(dismissReviewItemRequest, body);
    return reviewAnswer(() => this.review.decideReviewItem('dismiss', eventId, parsePiece(piece), { actor: principal.keyId, reason: b.reason }));
  }

  @Get('late-usage')
  @ApiDoc({ summary: 'The late-usage report: review items of usage with their decision, as JSON or CSV (Accept: text/csv, q-values honoured)', query: lateUsageQuery, response: reviewItemsResponse, media: ['text/csv'], errors: { 406: 'Accept allows neither application/json nor text/csv' }, tags: ['billing'] })
  async lateUsage(@Query() query: unknown, @Headers('accept') accept: string | undefined, @Res() reply: Reply) {
    const q = parseInput(lateUsageQuery, query, 'query');
    const format = negotiateList(accept);
    const items = await this.review.reviewQueue(q.tenantId ?? null, ['usage', 'late-usage']);
    if (format === 'json') {
      reply.status(200).header('content-type', 'application/json').send(JSON.stringify({ items }));
      return;
    }
    const lines = [LATE_USAGE_COLUMNS.join(',')];
    for (const i of items) {
      const piece = 'gpuModel' in i ? i : undefined;
      lines.push(
        [i.eventId, i.piece, i.kind, i.tenantId, i.referenceId, i.servicePeriod, piece?.gpuModel, piece?.capacityType, piece?.gpus, piece?.startAt, piece?.endAt, piece?.gpuMs, i.status, i.resolvedInvoiceId, i.eventSequence, i.reason].map(csvField).join(','),
      );
    }
    reply.status(200).header('content-type', 'text/csv; charset=utf-8').send(`${lines.join('\n')}\n`);
  }
}
