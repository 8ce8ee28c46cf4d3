import { Controller, Get, Inject, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { ApiKeyGuard, Roles } from '@fastgpu/auth';
import { ApiDoc } from '@fastgpu/http';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { ReliabilityEngine } from '../reliability.engine';

const decimal = z.string().describe('A decimal, at most 6 places, truncated toward zero');
const count = z.number().int().nonnegative();

export const sloResponse = z.object({
  at: z.string().describe('The instant the states are computed at (ISO 8601)'),
  slos: z.array(
    z.object({
      slo: z.string().describe('api-availability, job-start-latency or metering-freshness'),
      objectivePercent: z.string(),
      periodMs: count,
      period: z.object({ total: count, bad: count }).describe('Events over the period (30 days)'),
      budgetConsumed: decimal.describe('Share of the error budget spent over the period (1 = all of it)'),
      budgetRemaining: decimal.describe('1 − budgetConsumed (negative when overspent)'),
      currentBurnRate: decimal.describe('Burn rate over the shortest window'),
      status: z.enum(['ok', 'ticket', 'page']).describe('page when a page alert fires, else ticket when a ticket alert fires, else ok'),
      alerts: z.array(
        z.object({
          name: z.enum(['page-quick', 'page-slow', 'ticket-quick', 'ticket-slow']),
          severity: z.enum(['page', 'ticket']),
          factor: decimal.describe('The burn rate both windows must exceed'),
          shortWindowMs: count,
          longWindowMs: count,
          shortBurnRate: decimal,
          longBurnRate: decimal,
          firing: z.boolean(),
        }),
      ),
    }),
  ),
});

/** GET /v1/slo: the burn states reliability computes (the same as /metrics exports), for the console's SRE view. */
@Controller('v1/slo')
@UseGuards(ApiKeyGuard)
@Roles('sre')
export class SloController {
  constructor(
    @Inject(ReliabilityEngine) private readonly engine: ReliabilityEngine,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  @Get()
  @ApiDoc({ summary: 'Every SLO now: objective, error budget spent and left over 30 days, burn rates over the multi-window alert pairs (page 14.4× over 1 h/5 min and 6× over 6 h/30 min; ticket 3× over 1 d/2 h and 1× over 3 d/6 h), and whether each alert fires', response: sloResponse, tags: ['reliability'] })
  async slo(): Promise<z.output<typeof sloResponse>> {
    const nowMs = this.runtime.clock.now().getTime();
    return { at: new Date(nowMs).toISOString(), slos: await this.engine.sloStates(nowMs) };
  }
}
