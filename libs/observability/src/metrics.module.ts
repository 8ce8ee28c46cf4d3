import { Controller, Get, Inject, Module, Res, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { ApiDoc } from '@fastgpu/http';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { instrumentHttpInstance } from './http';
import { metricsFor } from './metrics';

/** `GET /metrics`: Prometheus text exposition of this process (no auth, like any exporter: bind it to the scrape network). */
@Controller()
export class MetricsController {
  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  @Get('metrics')
  @ApiDoc({ summary: 'Prometheus text exposition of this process (public, like any exporter: bind it to the scrape network)', media: ['text/plain'], tags: ['observability'] })
  async metrics(@Res() reply: { header(name: string, value: string): unknown; status(code: number): { send(body: unknown): void } }): Promise<void> {
    const metrics = metricsFor(this.runtime);
    const body = await metrics.render();
    reply.header('content-type', metrics.contentType);
    reply.status(200).send(body);
  }
}

/**
 * Metrics and HTTP tracing for a service app: serves `/metrics`, starts the log fold behind the
 * fleet gauges, and installs the Fastify tracing/latency hooks (before the server is ready).
 */
@Module({ controllers: [MetricsController] })
export class MetricsModule implements OnModuleInit, OnApplicationShutdown {
  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {}

  async onModuleInit(): Promise<void> {
    const instance: FastifyInstance | undefined = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (instance && typeof instance.addHook === 'function') instrumentHttpInstance(instance, this.runtime);
    await metricsFor(this.runtime).start();
  }

  async onApplicationShutdown(): Promise<void> {
    await metricsFor(this.runtime).stop();
  }
}
