import { Controller, Get, Inject, Res } from '@nestjs/common';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';

/** Liveness and readiness that tell the truth: a stalled projection or lost connection fails them. */
@Controller()
export class HealthController {
  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  @Get('healthz')
  async healthz(@Res() reply: { status(code: number): { send(body: unknown): void } }): Promise<void> {
    const report = await this.runtime.health.report();
    reply.status(report.ok ? 200 : 503).send({ status: report.ok ? 'ok' : 'unhealthy', ...report });
  }

  @Get('readyz')
  async readyz(@Res() reply: { status(code: number): { send(body: unknown): void } }): Promise<void> {
    const report = await this.runtime.health.report();
    reply.status(report.ok ? 200 : 503).send({ status: report.ok ? 'ready' : 'not ready', ...report });
  }
}
