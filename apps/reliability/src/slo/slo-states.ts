import { sql, type Kysely } from 'kysely';
import type { ReliabilityDatabase } from '@fastgpu/db';
import type { ReliabilityConfig } from '../reliability.config';
import { SliName } from '../sla/sla.projection';
import { evaluateSlo, googleWindows30d, type EventCounts, type SloState } from './slo';

/** The SLOs FastGPU keeps, as named in reports and metrics. */
export const SloName = { apiAvailability: 'api-availability', jobStartLatency: SliName.jobStartLatency, meteringFreshness: SliName.meteringFreshness } as const;

async function windowCounts(db: Kysely<ReliabilityDatabase>, source: 'sli' | 'api', sli: string, nowMs: number, windowMs: number): Promise<EventCounts> {
  const fromMs = nowMs - windowMs;
  if (source === 'api') {
    const row = await db
      .selectFrom('reliability_api_requests')
      .select([sql<string | null>`sum(total)`.as('total'), sql<string | null>`sum(errors)`.as('bad')])
      .where('minute_ms', '>', fromMs)
      .where('minute_ms', '<=', nowMs)
      .executeTakeFirst();
    return { total: Number(row?.total ?? 0), bad: Number(row?.bad ?? 0) };
  }
  const row = await db
    .selectFrom('reliability_sli_minutes')
    .select([sql<string | null>`sum(total)`.as('total'), sql<string | null>`sum(good)`.as('good')])
    .where('sli', '=', sli)
    .where('minute_ms', '>', fromMs)
    .where('minute_ms', '<=', nowMs)
    .executeTakeFirst();
  const total = Number(row?.total ?? 0);
  return { total, bad: total - Number(row?.good ?? 0) };
}

async function stateOf(db: Kysely<ReliabilityDatabase>, slo: string, objective: string, source: 'sli' | 'api', nowMs: number): Promise<SloState> {
  const windows = new Set<number>([googleWindows30d.periodMs, ...googleWindows30d.windows.flatMap((w) => [w.shortWindowMs, w.longWindowMs])]);
  const counts = new Map<number, EventCounts>();
  for (const windowMs of windows) counts.set(windowMs, await windowCounts(db, source, slo, nowMs, windowMs));
  return evaluateSlo(slo, objective, (windowMs) => counts.get(windowMs)!, googleWindows30d);
}

/**
 * The current state of every SLO (error budget over 30 days, burn rates, page/ticket) at
 * `nowMs`: for the metrics endpoint and the SLA report. Job-start latency and metering
 * freshness come from the SLI minutes folded from the log; API availability from the request
 * counts the HTTP layer records.
 */
export async function currentSloStates(db: Kysely<ReliabilityDatabase>, config: Pick<ReliabilityConfig, 'slo'>, nowMs: number): Promise<SloState[]> {
  return [
    await stateOf(db, SloName.apiAvailability, config.slo.apiAvailabilityObjective, 'api', nowMs),
    await stateOf(db, SloName.jobStartLatency, config.slo.jobStartLatencyObjective, 'sli', nowMs),
    await stateOf(db, SloName.meteringFreshness, config.slo.meteringFreshnessObjective, 'sli', nowMs),
  ];
}
