import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { NestFactory, type ModuleRef } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { ApiKeyGuard, ApiKeyResolver } from '@fastgpu/auth';
import { GrpcModule, GrpcServerHandle, type GrpcHandlers } from '@fastgpu/grpc';
import { ApiErrorFilter, HealthController } from '@fastgpu/http';
import { JetStreamServer, ServiceTransport, type ServiceName } from '@fastgpu/messaging';
import { instrumentHttp, MetricsModule, NestJsonLogger } from '@fastgpu/observability';
import { OpenApiModule } from '@fastgpu/openapi';
import { RuntimeModule, type Runtime } from '@fastgpu/runtime';

/** One service as the platform starts it: its Nest module, and whether it consumes events. */
export interface ServiceDefinition {
  name: ServiceName;
  module: Type | DynamicModule;
  /** Creates the service's durable consumer (its `@OnEvent(type, name)` handlers). */
  consumesEvents: boolean;
  /** The gRPC ports this service serves, resolved from the running app. */
  grpc?(moduleRef: ModuleRef): Partial<GrpcHandlers>;
}

/** Request bodies above this are refused with 413: a request buys GPUs, so size is bounded. */
export const HTTP_BODY_BYTES_MAX = 4 * 1024 * 1024;

@Module({ providers: [ApiKeyResolver, ApiKeyGuard], exports: [ApiKeyResolver, ApiKeyGuard] })
export class AuthModule {}

export interface StartedApp {
  app: NestFastifyApplication;
  url: string;
  /** Bound gRPC port when a started service serves gRPC. */
  grpcPort?: number;
  close(): Promise<void>;
}

/**
 * Starts services in one Nest app: HTTP (Fastify) with the shared error shape, health,
 * `/metrics` and `/docs` routes, gRPC for the services that serve it, and one JetStream
 * consumer per event-consuming service. `npm start` passes all five; a service's main passes one.
 */
export async function startServices(runtime: Runtime, services: ServiceDefinition[], options: { port?: number; host?: string; logger?: boolean } = {}): Promise<StartedApp> {
  const grpcServices = services.filter((s) => s.grpc);
  const grpc = grpcServices.length
    ? [GrpcModule.forRoot({ port: runtime.config.grpcPort, handlers: (ref) => Object.assign({}, ...grpcServices.map((s) => s.grpc!(ref))) as GrpcHandlers })]
    : [];

  @Module({
    imports: [RuntimeModule.forRoot(runtime), { module: AuthModule, global: true }, MetricsModule, OpenApiModule, ...services.map((s) => s.module), ...grpc],
    controllers: [HealthController],
  })
  class PlatformModule {}

  const name = services.map((s) => s.name).join('+');
  const app = await NestFactory.create<NestFastifyApplication>(PlatformModule, new FastifyAdapter({ bodyLimit: HTTP_BODY_BYTES_MAX }), {
    logger: options.logger === false ? false : new NestJsonLogger(name, { level: 'warn' }),
  });
  instrumentHttp(app, runtime);
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
  return {
    app,
    url: `http://${options.host ?? runtime.config.httpHost}:${port}`,
    ...(grpc.length ? { grpcPort: app.get(GrpcServerHandle, { strict: false }).port } : {}),
    close: () => app.close(),
  };
}
