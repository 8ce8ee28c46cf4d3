import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ProjectionHost } from '@fastgpu/platform';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import { CLOUDEVENTS_MEDIA_TYPES } from '../external/binary-mode';
import { streamTimesFrom, UsageProjection } from './usage.projection';

interface FastifyParsers {
  hasContentTypeParser(type: string): boolean;
  addContentTypeParser(type: string[], options: { parseAs: 'string' }, parser: (req: unknown, body: string, done: (error: Error | null, value?: unknown) => void) => void): void;
}

/**
 * Runs the live usage projection for the life of the service; its health is
 * `projection:usage` in `/healthz` (a valid event it cannot apply stalls it there).
 */
@Injectable()
export class MeteringProjections implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  readonly host: ProjectionHost;
  readonly usage: UsageProjection;

  constructor(
    @Inject(RUNTIME) runtime: Runtime,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {
    this.host = new ProjectionHost(runtime);
    this.usage = new UsageProjection({
      publisher: publisherFor(runtime, 'metering'),
      nc: runtime.bus.nc,
      streamTimes: streamTimesFrom(runtime.bus),
    });
    this.host.add(this.usage);
  }

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter?.getInstance?.<FastifyParsers | undefined>();
    if (!fastify?.addContentTypeParser) return;
    const missing = CLOUDEVENTS_MEDIA_TYPES.filter((type) => !fastify.hasContentTypeParser(type));
    if (!missing.length) return;
    // CloudEvents media types accepted by `POST /v1/events`, parsed as JSON.
    fastify.addContentTypeParser(missing, { parseAs: 'string' }, (_req, body, done) => {
      try {
        done(null, JSON.parse(body));
      } catch (error) {
        done(Object.assign(error as Error, { statusCode: 400 }));
      }
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.host.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.host.stop();
  }

  waitFor(sequence: number, timeoutMs = 5000): Promise<boolean> {
    return this.host.runner(this.usage.name).waitFor(sequence, timeoutMs);
  }
}
