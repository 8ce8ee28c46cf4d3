import { createHash } from 'node:crypto';
import { Controller, Get, Inject, Query, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { idSchema, requestIdSchema } from '@fastgpu/contracts';
import { ApiKeyGuard, CurrentPrincipal, Roles, tenantScope, type Principal } from '@fastgpu/auth';
import { ApiDoc, ApiError, parseDate, parseInput, parseInstant, parsePeriod, queryParam } from '@fastgpu/http';
import { formatLocal, windowContaining, offsetAt, type CalendarWindow } from '@fastgpu/money';
import { CLOCK, type Clock } from '@fastgpu/runtime';
import { USAGE_PAGE_ROWS_MAX, UsageRepository, usageDimensionNames, type UsageDimension, type UsageRowKey } from './usage.repository';
import { usageResponse } from './usage.responses';

/** Longest cursor accepted (a key of nine dimensions of at most 128 characters each, encoded). */
const USAGE_CURSOR_LENGTH_MAX = 4096;

const bound = z.string().min(4).max(40);
export const usageQuerySchema = z.object({
  /** Default: the start of the current day (month for `window=month`) in `tz`. */
  from: bound.optional(),
  /** Default: the end of the window `from` defaults to. */
  to: bound.optional(),
  window: z.enum(['hour', 'day', 'month']).default('day'),
  tz: queryParam.timeZone().default('UTC'),
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
  tenantId: idSchema.optional(),
  /** Only this project's usage (every project when absent). */
  projectId: requestIdSchema.optional(),
  accrueUntil: queryParam.instant().optional(),
  limit: queryParam.integer(1, USAGE_PAGE_ROWS_MAX).optional(),
  cursor: z.string().min(1).max(USAGE_CURSOR_LENGTH_MAX).optional(),
});
const usageQueryParameters: ReadonlySet<string> = new Set(Object.keys(usageQuerySchema.shape));

/**
 * A bound is an instant with its offset (`2026-03-01T00:00:00Z`, `…+01:00`), or a local date
 * (`2026-03-01`) or month (`2026-03`) meaning its start in the query's time zone. Read exactly
 * (libs/http query readers): `2026-13`, `0000-01`, `2026-02-30`, an instant without offset are
 * 400 with the field, never rolled over or guessed.
 */
export function parseBound(value: string, timeZone: string, field: string): number {
  let calendar: { year: number; month: number; day?: number } | undefined;
  if (/^\d{4}-\d{2}$/.test(value)) calendar = parsePeriod(value, field);
  else if (/^\d{4}-\d{2}-\d{2}$/.test(value)) calendar = parseDate(value, field);
  if (calendar) {
    const noonWall = Date.UTC(calendar.year, calendar.month - 1, calendar.day ?? 1, 12);
    const window: CalendarWindow = calendar.day === undefined ? 'month' : 'day';
    const instant = noonWall - offsetAt(timeZone, noonWall);
    return windowContaining(instant, window, timeZone).startMs;
  }
  return parseInstant(value, field);
}

/** Refuses a parameter the route does not read (a typo such as `form=` would silently answer the default range). */
function assertKnownParameters(raw: unknown): void {
  if (!raw || typeof raw !== 'object') return;
  for (const name of Object.keys(raw)) {
    if (usageQueryParameters.has(name)) continue;
    const shown = (name.length > 64 ? `${name.slice(0, 64)}…` : name).replace(/[\p{Cc}\p{Cs}]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    throw new ApiError(400, 'invalid_request', `${shown || '(empty name)'}: unknown parameter; use ${[...usageQueryParameters].join(', ')}`, shown || 'query');
  }
}

/** What a cursor is bound to: a cursor of another query (range, zone, grouping, tenant) is refused. */
function queryFingerprint(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 16);
}

function encodeUsageCursor(fingerprint: string, key: UsageRowKey): string {
  return Buffer.from(JSON.stringify({ q: fingerprint, w: key.windowIndex, k: key.values }), 'utf8').toString('base64url');
}

function decodeUsageCursor(cursor: string, fingerprint: string, groupBy: readonly UsageDimension[], windowCount: number): UsageRowKey {
  const refuse = (why: string) => new ApiError(400, 'invalid_request', `cursor: ${why} (give nextCursor as returned, with the same query)`, 'cursor');
  let value: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('not base64url');
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw refuse('not a cursor of this route');
  }
  const { q, w, k } = (value ?? {}) as { q?: unknown; w?: unknown; k?: unknown };
  if (q !== fingerprint) throw refuse('belongs to another query');
  if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w >= windowCount || !Array.isArray(k) || k.length !== groupBy.length) throw refuse('not a cursor of this route');
  k.forEach((v, i) => {
    const expected = groupBy[i] === 'attempt' ? 'number' : 'string';
    if (typeof v !== expected) throw refuse('not a cursor of this route');
  });
  return { windowIndex: w, values: k as Array<string | number> };
}

/** `GET /v1/usage`: integer GPU-ms per calendar window in any IANA zone, half-open and additive. */
@Controller('v1/usage')
@UseGuards(ApiKeyGuard)
@Roles('tenant', 'finance', 'sre')
export class UsageController {
  constructor(
    @Inject(UsageRepository) private readonly usageRepository: UsageRepository,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  @Get()
  @ApiDoc({
    summary: 'GPU-ms per hour, day or month in a time zone between from and to, grouped by dimensions, filtered by project (projectId), paged by cursor; tenants see their own, finance sees all (optional tenantId)',
    query: usageQuerySchema,
    response: usageResponse,
    errors: { 400: 'malformed, unknown or repeated parameter (period, date, instant, zone, dimension, limit, cursor)', 422: 'reversed range, too many windows' },
    tags: ['usage'],
  })
  async usage(@CurrentPrincipal() principal: Principal, @Query() raw: unknown) {
    assertKnownParameters(raw);
    const query = parseInput(usageQuerySchema, raw, 'query');
    // Without a range: the current day (or month) in the zone, from the service clock.
    const current = windowContaining(this.clock.now().getTime(), query.window === 'month' ? 'month' : 'day', query.tz);
    const fromMs = query.from ? parseBound(query.from, query.tz, 'from') : current.startMs;
    const toMs = query.to ? parseBound(query.to, query.tz, 'to') : query.from ? windowContaining(fromMs, query.window === 'month' ? 'month' : 'day', query.tz).endMs : current.endMs;
    if (toMs <= fromMs) throw new ApiError(422, 'unprocessable', 'to: must be after from', 'to');
    const tenantId = tenantScope(principal, query.tenantId);
    const accrueUntilMs = query.accrueUntil === undefined ? undefined : parseInstant(query.accrueUntil, 'accrueUntil');
    const windowCount = this.usageRepository.windowsFor({ fromMs, toMs, window: query.window, timeZone: query.tz }).length;
    const fingerprint = queryFingerprint([fromMs, toMs, query.window, query.tz, query.groupBy, tenantId, accrueUntilMs ?? null, ...(query.projectId === undefined ? [] : [query.projectId])]);
    const after = query.cursor === undefined ? undefined : decodeUsageCursor(query.cursor, fingerprint, query.groupBy, windowCount);
    let result;
    try {
      result = await this.usageRepository.usage({
        fromMs,
        toMs,
        window: query.window,
        timeZone: query.tz,
        groupBy: query.groupBy,
        tenantId,
        ...(query.projectId === undefined ? {} : { projectId: query.projectId }),
        ...(accrueUntilMs === undefined ? {} : { accrueUntilMs }),
        ...(query.limit === undefined ? {} : { limit: query.limit }),
        ...(after ? { after } : {}),
      });
    } catch (error) {
      if (error instanceof RangeError) throw new ApiError(422, 'unprocessable', error.message, 'to');
      throw error;
    }
    return {
      from: new Date(fromMs).toISOString(),
      to: new Date(toMs).toISOString(),
      window: query.window,
      timeZone: query.tz,
      groupBy: query.groupBy,
      tenantId,
      projectId: query.projectId ?? null,
      asOfSequence: result.asOfSequence,
      accruedUntil: result.accruedUntilMs === null ? null : new Date(result.accruedUntilMs).toISOString(),
      source: result.source,
      /** The whole range, every page. */
      totalGpuMs: result.total.gpuMs,
      totalInterruptedGpuMs: result.total.interruptedGpuMs,
      totalAccruedGpuMs: result.total.accruedGpuMs,
      windowCount: result.windows.length,
      nextCursor: result.nextKey ? encodeUsageCursor(fingerprint, result.nextKey) : null,
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
