import { Controller, Get, Inject, Query, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { ApiKeyGuard, CurrentPrincipal, Roles, tenantScope, type Principal } from '@fastgpu/auth';
import { ApiDoc, ApiError, parseInput } from '@fastgpu/http';
import { formatLocal, isTimeZone, windowContaining, offsetAt, type CalendarWindow } from '@fastgpu/money';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { UsageQueries, usageDimensionNames, type UsageDimension } from './usage.query';

const bound = z.string().min(4).max(40);
export const usageQuerySchema = z.object({
  /** Default: the start of the current day (month for `window=month`) in `tz`. */
  from: bound.optional(),
  /** Default: the end of the window `from` defaults to. */
  to: bound.optional(),
  window: z.enum(['hour', 'day', 'month']).default('day'),
  tz: z.string().min(1).max(64).refine(isTimeZone, 'unknown IANA time zone').default('UTC'),
  groupBy: z
    .string()
    .max(200)
    .optional()
    .transform((value, ctx) => {
      const names = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = names.filter((n) => !usageDimensionNames.includes(n as UsageDimension));
      if (unknown.length) ctx.addIssue({ code: 'custom', message: `unknown dimension(s) ${unknown.join(', ')}; use ${usageDimensionNames.join(', ')}` });
      return [...new Set(names)] as UsageDimension[];
    }),
  tenantId: z.string().min(1).max(128).optional(),
  accrueUntil: z.iso.datetime({ offset: true }).optional(),
});

/**
 * A bound is an instant with its offset (`2026-03-01T00:00:00Z`, `…+01:00`), or a local date
 * (`2026-03-01`) or month (`2026-03`) meaning its start in the query's time zone.
 */
export function parseBound(value: string, timeZone: string, field: string): number {
  const month = /^(\d{4})-(\d{2})$/.exec(value);
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (month || day) {
    const [, y, m, d] = (month ?? day)!;
    const noonWall = Date.UTC(Number(y), Number(m) - 1, Number(d ?? '1'), 12);
    const window: CalendarWindow = month ? 'month' : 'day';
    const instant = noonWall - offsetAt(timeZone, noonWall);
    return windowContaining(instant, window, timeZone).startMs;
  }
  if (!/(Z|[+-]\d{2}:\d{2})$/.test(value)) throw new ApiError(422, 'unprocessable', `${field}: give an instant with an offset (Z or ±hh:mm), a date or a month`, field);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new ApiError(400, 'invalid_request', `${field}: not an ISO-8601 instant`, field);
  return ms;
}

/** `GET /v1/usage`: integer GPU-ms per calendar window in any IANA zone, half-open and additive. */
@Controller('v1/usage')
@UseGuards(ApiKeyGuard)
@Roles('tenant', 'finance', 'sre')
export class UsageController {
  private readonly queries: UsageQueries;

  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {
    this.queries = new UsageQueries(runtime.db);
  }

  @Get()
  @ApiDoc({
    summary: 'GPU-ms per hour, day or month in a time zone, grouped by dimensions; tenants see their own, finance sees all (optional tenantId)',
    query: usageQuerySchema,
    errors: { 400: 'malformed parameter', 422: 'unknown zone or dimension, reversed range, too many windows' },
    tags: ['usage'],
  })
  async usage(@CurrentPrincipal() principal: Principal, @Query() raw: unknown) {
    const query = parseInput(usageQuerySchema, raw, 'query');
    // Without a range: the current day (or month) in the zone, from the service clock.
    const current = windowContaining(this.runtime.clock.now().getTime(), query.window === 'month' ? 'month' : 'day', query.tz);
    const fromMs = query.from ? parseBound(query.from, query.tz, 'from') : current.startMs;
    const toMs = query.to ? parseBound(query.to, query.tz, 'to') : query.from ? windowContaining(fromMs, query.window === 'month' ? 'month' : 'day', query.tz).endMs : current.endMs;
    if (toMs <= fromMs) throw new ApiError(422, 'unprocessable', 'to: must be after from', 'to');
    const tenantId = tenantScope(principal, query.tenantId);
    let result;
    try {
      result = await this.queries.usage({
        fromMs,
        toMs,
        window: query.window,
        timeZone: query.tz,
        groupBy: query.groupBy,
        tenantId,
        ...(query.accrueUntil ? { accrueUntilMs: Date.parse(query.accrueUntil) } : {}),
      });
    } catch (error) {
      if (error instanceof RangeError) throw new ApiError(422, 'unprocessable', error.message, 'to');
      throw error;
    }
    const total = result.rows.reduce((sum, r) => sum + r.gpuMs, 0);
    return {
      from: new Date(fromMs).toISOString(),
      to: new Date(toMs).toISOString(),
      window: query.window,
      timeZone: query.tz,
      groupBy: query.groupBy,
      tenantId,
      asOfSequence: result.asOfSequence,
      accruedUntil: result.accruedUntilMs === null ? null : new Date(result.accruedUntilMs).toISOString(),
      source: result.source,
      totalGpuMs: total,
      windowCount: result.windows.length,
      rows: result.rows.map((r) => {
        const w = result.windows[r.windowIndex]!;
        return {
          windowStart: new Date(w.startMs).toISOString(),
          windowEnd: new Date(w.endMs).toISOString(),
          localStart: formatLocal(w.startMs, query.tz),
          ...r.dimensions,
          gpuMs: r.gpuMs,
          interruptedGpuMs: r.interruptedGpuMs,
          accruedGpuMs: r.accruedGpuMs,
        };
      }),
    };
  }
}
