import { Controller, Get, Headers, Inject, Query, Res, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { ApiKeyGuard, Roles } from '@fastgpu/auth';
import { idSchema } from '@fastgpu/contracts';
import { ApiDoc, ApiError, negotiateMediaType, parseInput, type MediaOffer } from '@fastgpu/http';
import { decodeCursor, LATE_USAGE_PAGE_DEFAULT, LATE_USAGE_PAGE_MAX, lateUsageCsv } from './late-usage.query';
import { UsageRepository } from './usage.repository';
import { lateUsageResponse } from './usage.responses';

export const lateUsageQuerySchema = z.object({
  tenantId: idSchema.optional(),
  state: z.enum(['open', 'closed']).optional(),
  limit: z
    .string()
    .regex(/^[1-9]\d{0,5}$/, 'must be a positive integer written in digits')
    .transform(Number)
    .refine((n) => n <= LATE_USAGE_PAGE_MAX, `at most ${LATE_USAGE_PAGE_MAX}`)
    .optional(),
  cursor: z.string().min(1).max(1024).optional(),
});

type Format = 'json' | 'csv';
const OFFERED: ReadonlyArray<MediaOffer<Format>> = [
  { value: 'json', mediaType: 'application/json; charset=utf-8' },
  { value: 'csv', mediaType: 'text/csv; charset=utf-8' },
];

/** The representation by `Accept` and its q-values (the one rule, libs/http accept.ts): JSON by default, 406 when nothing fits. */
export function negotiateLateUsage(accept: string | undefined): Format {
  return negotiateMediaType(accept, OFFERED, 'the late-usage report');
}

interface Reply {
  status(code: number): Reply;
  header(name: string, value: string): Reply;
  send(body: unknown): void;
}

/**
 * `GET /v1/usage/late`: the late-usage report for finance — external allocations reported beyond
 * the lateness horizon, kept out of billable usage until finance decides. JSON or CSV (`Accept`),
 * paged with a cursor (`Link: <…>; rel="next"` and `nextCursor`).
 */
@Controller('v1/usage/late')
@UseGuards(ApiKeyGuard)
@Roles('finance')
export class LateUsageController {
  constructor(@Inject(UsageRepository) private readonly usageRepository: UsageRepository) {}

  @Get()
  @ApiDoc({
    summary: 'Late external usage (reported beyond the lateness horizon, never billed automatically), per tenant and allocation; Accept: application/json or text/csv; paged with cursor',
    query: lateUsageQuerySchema,
    response: lateUsageResponse,
    media: ['text/csv'],
    errors: { 400: 'malformed parameter or cursor', 406: 'Accept names neither application/json nor text/csv' },
    tags: ['usage'],
  })
  async report(@Query() raw: unknown, @Headers('accept') accept: string | undefined, @Res() reply: Reply) {
    const query = parseInput(lateUsageQuerySchema, raw, 'query');
    const format = negotiateLateUsage(accept);
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    if (query.cursor !== undefined && !after) throw new ApiError(400, 'invalid_request', 'cursor: not a cursor of this report (use nextCursor as given)', 'cursor');
    const page = await this.usageRepository.lateUsage({ tenantId: query.tenantId ?? null, limit: query.limit ?? LATE_USAGE_PAGE_DEFAULT, ...(query.state ? { state: query.state } : {}), ...(after ? { after } : {}) });
    if (page.nextCursor) {
      const next = new URLSearchParams({ ...(query.tenantId ? { tenantId: query.tenantId } : {}), ...(query.state ? { state: query.state } : {}), ...(query.limit ? { limit: String(query.limit) } : {}), cursor: page.nextCursor });
      reply.header('link', `</v1/usage/late?${next.toString()}>; rel="next"`);
    }
    reply.header('x-as-of-sequence', String(page.asOfSequence));
    if (format === 'csv') reply.status(200).header('content-type', 'text/csv; charset=utf-8').send(lateUsageCsv(page.items));
    else reply.status(200).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(page));
  }
}
