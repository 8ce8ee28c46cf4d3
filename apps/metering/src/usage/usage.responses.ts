import { z } from 'zod';
import type { LateUsagePage } from './late-usage.query';
import type { UsageController } from './usage.controller';
import { usageDimensionNames, type UsageDimension } from './usage.repository';

/**
 * What `GET /v1/usage` and `GET /v1/usage/late` answer, as the zod schemas the OpenAPI document
 * shows. The type-check holds them equal to the handler's answer and to `LateUsagePage`.
 */
const gpuMs = z.number().int().nonnegative();
const instant = z.string().describe('RFC 3339 instant, UTC');

/** A row's dimension values: the `groupBy` dimensions only; `attempt` is an integer, the others text. */
const dimensionValues = Object.fromEntries(usageDimensionNames.map((name) => [name, (name === 'attempt' ? z.number().int() : z.string()).optional()])) as Record<UsageDimension, z.ZodOptional<z.ZodString | z.ZodNumber>>;

export const usageRow = z.object({
  windowStart: instant,
  windowEnd: instant,
  localStart: z.string().describe('The window start as a wall-clock time in the query zone, with its offset'),
  ...dimensionValues,
  gpuMs,
  interruptedGpuMs: gpuMs,
  accruedGpuMs: gpuMs.describe('GPU-ms of allocations still open, accrued up to accruedUntil'),
});

export const usageResponse = z.object({
  from: instant,
  to: instant,
  window: z.enum(['hour', 'day', 'month']),
  timeZone: z.string(),
  groupBy: z.array(z.enum(usageDimensionNames as [UsageDimension, ...UsageDimension[]])),
  tenantId: z.string().nullable().describe('null: every tenant (platform roles without tenantId)'),
  projectId: z.string().nullable().describe('The project the usage is filtered to; null: every project'),
  asOfSequence: z.number().int().nonnegative().describe("The usage projection's checkpoint the answer was read at"),
  accruedUntil: instant.nullable(),
  source: z.enum(['hourly', 'intervals']).describe('Which store answered: the hourly table (boundaries on UTC hours) or the exact intervals'),
  totalGpuMs: gpuMs.describe('The whole range, every page'),
  totalInterruptedGpuMs: gpuMs,
  totalAccruedGpuMs: gpuMs,
  windowCount: z.number().int().nonnegative(),
  nextCursor: z.string().nullable().describe('Give it as cursor for the next page; null on the last'),
  rows: z.array(usageRow),
});

export const lateUsageResponse = z.object({
  items: z.array(
    z.object({
      tenantId: z.string(),
      allocationId: z.string(),
      projectId: z.string().nullable(),
      gpuModel: z.string().nullable(),
      capacityType: z.string().nullable(),
      gpus: z.number().int().nullable(),
      startAt: instant.nullable(),
      endAt: instant.nullable(),
      gpuMs: gpuMs.nullable().describe('gpus × (end − start) once closed; null while the start or the stop is missing'),
      state: z.enum(['open', 'closed']),
      reportedLateAt: instant.describe('When FastGPU received the first late report'),
      usageId: z.string().nullable().describe("The LateUsageRecorded event id once closed (what billing's review queue refers to)"),
    }),
  ),
  nextCursor: z.string().nullable().describe('Give it as cursor for the next page; null on the last (also the Link header, rel="next")'),
  asOfSequence: z.number().int().nonnegative(),
});

/** Both ways assignable: neither side has a field, or a field type, the other lacks. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails the type-check (at its line) unless given `true`. */
type Assert<T extends true> = T;
type UsageAnswer = Awaited<ReturnType<UsageController['usage']>>;
type Row<T extends { rows: unknown[] }> = T['rows'][number];
export type AnswersMatchSchemas = [
  Assert<Same<Omit<UsageAnswer, 'rows'>, Omit<z.output<typeof usageResponse>, 'rows'>>>,
  // A row's dimension values are `string | number` to the type-checker; the schema says which is which.
  Assert<Same<keyof Row<UsageAnswer>, keyof Row<z.output<typeof usageResponse>>>>,
  Assert<Same<LateUsagePage, z.output<typeof lateUsageResponse>>>,
];
