import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { ApiKeyGuard, ApiKeyResolver } from '@fastgpu/auth';
import { ApiErrorFilter, HealthController } from '@fastgpu/http';
import { JetStreamServer, ServiceTransport, type ServiceName } from '@fastgpu/messaging';
import { RuntimeModule, type Runtime } from '@fastgpu/runtime';

/** One service as the platform starts it: its Nest module, and whether it consumes events. */
export interface ServiceDefinition {
  name: ServiceName;
  module: Type | DynamicModule;
  /** Creates the service's durable consumer (its `@OnEvent(type, name)` handlers). */
  consumesEvents: boolean;
}

/** Request bodies above this are refused with 413: a request buys GPUs, so size is bounded. */
export const HTTP_BODY_BYTES_MAX = 4 * 1024 * 1024;

@Module({ providers: [ApiKeyResolver, ApiKeyGuard], exports: [ApiKeyResolver, ApiKeyGuard] })
export class AuthModule {}

export interface StartedApp {
  app: NestFastifyApplication;
  url: string;
  close(): Promise<void>;
}

/**
 * Starts services in one Nest app: HTTP (Fastify) with the shared error shape, health routes,
 * and one JetStream consumer per event-consuming service. `npm start` passes all five; a
 * service's own main passes one.
 */
export async function startServices(runtime: Runtime, services: ServiceDefinition[], options: { port?: number; host?: string; logger?: boolean } = {}): Promise<StartedApp> {
  @Module({
    imports: [RuntimeModule.forRoot(runtime), { module: AuthModule, global: true }, ...services.map((s) => s.module)],
    controllers: [HealthController],
  })
  class PlatformModule {}

  const app = await NestFactory.create<NestFastifyApplication>(PlatformModule, new FastifyAdapter({ bodyLimit: HTTP_BODY_BYTES_MAX }), {
    logger: options.logger === false ? false : ['error', 'warn'],
  });
  app.useGlobalFilters(new ApiErrorFilter());
  for (const service of services.filter((s) => s.consumesEvents)) {
    app.connectMicroservice(
      { strategy: new JetStreamServer({ bus: runtime.bus, service: service.name, durable: service.name, transportId: ServiceTransport[service.name] }) },
      { inheritAppConfig: true },
    );
  }
  await app.startAllMicroservices();
  await app.listen(options.port ?? runtime.config.httpPort, options.host ?? runtime.config.httpHost);
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return { app, url: `http://${options.host ?? runtime.config.httpHost}:${port}`, close: () => app.close() };
}
