import { Controller, Get, Headers, Inject, Query, Res, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { idSchema } from '@fastgpu/contracts';
import { ApiKeyGuard, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { ApiDoc, negotiateMediaType, notFound, parseInput, queryParam, type MediaOffer } from '@fastgpu/http';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { ReliabilityEngine } from '../reliability.engine';
import { reportsToCsv } from './sla.csv';
import { periodOf } from './sla.period';
import type { ServedReport } from './sla.report';

export const slaReportQuery = z.object({
  /** Read exactly (libs/http): `2026-13` and `0000-01` are 400, never another month. */
  period: queryParam.period().optional(),
  /** Picks the representation in the URL; without it, `Accept` picks (JSON by default). Either way `Accept` must allow it. */
  format: z.enum(['json', 'csv']).optional(),
  tenantId: idSchema.optional(),
});

const SLA_OFFERS: ReadonlyArray<MediaOffer<'json' | 'csv'>> = [
  { value: 'json', mediaType: 'application/json; charset=utf-8' },
  { value: 'csv', mediaType: 'text/csv; charset=utf-8' },
];

const verdict = z.looseObject({ availabilityPercent: z.string().nullable(), targetPercent: z.string(), met: z.boolean(), creditPercent: z.number() });
/** The served reports as documented: the fields clients read first, typed; the rest as the report has them. */
export const slaReportsResponse = z.object({
  period: z.string(),
  reports: z.array(
    z.looseObject({
      tenantId: z.string(),
      period: z.string(),
      periodStart: z.string(),
      periodEnd: z.string(),
      asOf: z.string(),
      final: z.boolean(),
      windowEndSequence: z.number().int(),
      allocationAvailability: verdict,
      apiAvailability: verdict,
      credits: z.array(z.looseObject({})),
    }),
  ),
});

/**
 * `GET /v1/sla-reports?period=2026-11&format=csv`: a tenant sees its own report; sre, finance
 * and admin see every tenant's, or one with `tenantId=`. A closed month serves the stored
 * final report (the one its credits cite); the current month is provisional, as of now.
 */
@Controller('v1/sla-reports')
@UseGuards(ApiKeyGuard)
export class SlaReportsController {
  constructor(
    @Inject(ReliabilityEngine) private readonly engine: ReliabilityEngine,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  @Get()
  @Roles('tenant', 'sre', 'finance')
  @ApiDoc({
    summary: 'SLA reports for a month: JSON or CSV, by ?format= or by Accept with q-values',
    query: slaReportQuery,
    response: slaReportsResponse,
    media: ['text/csv'],
    tags: ['reliability'],
    errors: { 400: 'bad period (YYYY-MM, 1970-01…9999-12), format or tenantId, a parameter given twice, or a malformed Accept', 404: 'another tenant', 406: 'Accept allows neither JSON nor CSV (or not the ?format= asked for)' },
  })
  async list(
    @CurrentPrincipal() principal: Principal,
    @Query() rawQuery: unknown,
    @Headers('accept') accept: string | undefined,
    @Res({ passthrough: true }) reply: { header(name: string, value: string): unknown },
  ): Promise<{ period: string; reports: ServedReport[] } | string> {
    const query = parseInput(slaReportQuery, rawQuery, 'query');
    // `?format=` narrows the offer to one type; Accept still has to allow it (text/csv;q=0 is never CSV).
    const format = negotiateMediaType(accept, query.format ? SLA_OFFERS.filter((o) => o.value === query.format) : SLA_OFFERS, 'the SLA report');
    const nowMs = this.runtime.clock.now().getTime();
    const period = query.period ?? periodOf(nowMs);
    let tenantId: string | null = query.tenantId ?? null;
    if (principal.tenantId) {
      if (tenantId && tenantId !== principal.tenantId) throw notFound('tenant');
      tenantId = principal.tenantId;
    }
    const reports = await this.engine.sla.reports(period, tenantId, nowMs);
    if (format === 'csv') {
      reply.header('content-type', 'text/csv; charset=utf-8');
      reply.header('content-disposition', `attachment; filename="sla-${period}.csv"`);
      return reportsToCsv(reports);
    }
    return { period, reports };
  }
}
