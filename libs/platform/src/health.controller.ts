import { Controller, Get, Inject, Res, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { ApiKeyGuard, Roles } from '@fastgpu/auth';
import { ApiDoc } from '@fastgpu/http';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';

type Reply = { status(code: number): { send(body: unknown): void } };

export const publicHealthResponse = z.object({ status: z.enum(['up', 'down']) });
export const healthDetailsResponse = z.object({
  status: z.enum(['up', 'down']),
  checks: z.record(z.string(), z.object({ ok: z.boolean(), detail: z.unknown().optional() })),
});

/**
 * Liveness and readiness that tell the truth (a stalled projection or a lost connection fails
 * them) without telling strangers why: `/healthz` and `/readyz` answer only up or down (200 /
 * 503, `{status}`), for probes and load balancers; `/v1/health` gives every check with its
 * detail (projection states, stalled sequences, errors, and each projection's lag behind the
 * event stream) to an sre or admin key.
 */
@Controller()
export class HealthController {
  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  @Get('healthz')
  @ApiDoc({ summary: 'Up or down (200 / 503), nothing more; details at /v1/health', response: publicHealthResponse, success: { 200: 'up', 503: 'down' }, tags: ['health'] })
  async healthz(@Res() reply: Reply): Promise<void> {
    await this.answer(reply, false);
  }

  @Get('readyz')
  @ApiDoc({ summary: 'Ready or not (200 / 503), the same checks as /healthz', response: publicHealthResponse, success: { 200: 'up', 503: 'down' }, tags: ['health'] })
  async readyz(@Res() reply: Reply): Promise<void> {
    await this.answer(reply, false);
  }

  @Get('v1/health')
  @UseGuards(ApiKeyGuard)
  @Roles('sre')
  @ApiDoc({ summary: 'Every health check with its detail: connections, projections (status, last and stalled sequence, lag = the event stream\'s last sequence minus the last applied, error)', response: healthDetailsResponse, success: { 200: 'every check ok', 503: 'a check failed' }, tags: ['health'] })
  async details(@Res() reply: Reply): Promise<void> {
    await this.answer(reply, true);
  }

  private async answer(reply: Reply, details: boolean): Promise<void> {
    const report = await this.runtime.health.report();
    const status = report.ok ? 'up' : 'down';
    reply.status(report.ok ? 200 : 503).send(details ? { status, checks: await this.withLag(report.checks) } : { status });
  }

  /**
   * Each check whose detail names the last sequence it applied (the projections) also gets its
   * `lag`: the event stream's last sequence now minus that one, the events it has still to read.
   * Read once per request; without an answer from the stream the details go without it.
   */
  private async withLag(checks: Record<string, { ok: boolean; detail?: unknown }>): Promise<Record<string, { ok: boolean; detail?: unknown }>> {
    let streamLast: number;
    try {
      streamLast = (await this.runtime.bus.jsm.streams.info(this.runtime.bus.topology.streams.events)).state.last_seq;
    } catch {
      return checks;
    }
    const out: Record<string, { ok: boolean; detail?: unknown }> = {};
    for (const [name, check] of Object.entries(checks)) {
      const detail = check.detail as { lastSequence?: unknown } | undefined;
      out[name] = typeof detail === 'object' && detail !== null && typeof detail.lastSequence === 'number' ? { ...check, detail: { ...detail, lag: Math.max(0, streamLast - detail.lastSequence) } } : check;
    }
    return out;
  }
}
