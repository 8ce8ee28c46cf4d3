import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { NestFactory, type ModuleRef } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyServerOptions } from 'fastify';
import { ApiKeyGuard, ApiKeyResolver, Authenticator } from '@fastgpu/auth';
import { ConsoleModule, defaultConsoleDirectory, registerConsole } from '@fastgpu/console';
import type { GrpcHandlers } from '@fastgpu/grpc';
import { isSingleLineText, SINGLE_LINE_TEXT_MESSAGE, type ServiceName } from '@fastgpu/contracts';
import { ApiErrorFilter, assertSingleValuedQuery, badRequest, errorBody, ERROR_CONTENT_TYPE, parseQueryString, RouteTable, sendApiError, toApiError } from '@fastgpu/http';
import { instrumentHttp, MetricsModule, NestJsonLogger } from '@fastgpu/observability';
import { OpenApiModule } from '@fastgpu/openapi';
import { RuntimeModule, type Runtime } from '@fastgpu/runtime';
import { HealthController } from './health.controller';

/**
 * One service as the platform starts it: its Nest module (which starts its own log readers:
 * projection runners and in-memory folds, ADR 1 and ADR 6) and its gRPC ports.
 */
export interface ServiceDefinition {
  name: ServiceName;
  module: Type | DynamicModule;
  /** The gRPC ports this service serves, resolved from the running app. */
  grpc?(moduleRef: ModuleRef): Partial<GrpcHandlers>;
}

/** Longest path parameter accepted: ids are at most 128 characters, periods and names shorter. */
export const PATH_PARAMETER_LENGTH_MAX = 256;

/** Request bodies above this are refused with 413: a request buys GPUs, so size is bounded. */
export const HTTP_BODY_BYTES_MAX = 4 * 1024 * 1024;

@Module({ providers: [ApiKeyResolver, Authenticator, ApiKeyGuard], exports: [ApiKeyResolver, Authenticator, ApiKeyGuard] })
export class AuthModule {}

export interface StartedApp {
  app: NestFastifyApplication;
  url: string;
  /** Bound gRPC port when a started service serves gRPC. */
  grpcPort?: number;
  close(): Promise<void>;
}

/**
 * Fastify as every service runs it: bounded bodies, the strict querystring parser, and the
 * platform's error shape for what Fastify answers before Nest sees a request (a malformed URL
 * in the router, a malformed HTTP message on the socket).
 */
function fastifyOptions(): FastifyServerOptions {
  return {
    bodyLimit: HTTP_BODY_BYTES_MAX,
    routerOptions: { querystringParser: parseQueryString },
    frameworkErrors: (error, request, reply) => sendApiError(reply as never, toApiError(error, request).error),
    clientErrorHandler: (error: Error & { code?: string }, socket) => {
      if (!socket.writable) return socket.destroy();
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const { error: apiError } = toApiError(Object.assign(new Error(status === 400 ? 'malformed HTTP request' : status === 431 ? 'request headers too large' : 'request timed out'), { statusCode: status }));
      const body = JSON.stringify(errorBody(apiError.code, apiError.message, status === 400 ? 'request' : apiError.field));
      socket.end(`HTTP/1.1 ${status} ${status === 400 ? 'Bad Request' : status === 431 ? 'Request Header Fields Too Large' : 'Request Timeout'}\r\nConnection: close\r\nContent-Type: ${ERROR_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    },
  };
}

/**
 * Starts services in one Nest app: HTTP (Fastify) with the shared error shape, health,
 * `/metrics` and `/docs` routes, the console (`/console`, `/v1/live`, `/v1/dead-letters`:
 * libs/console), and gRPC for the services that serve it. `npm start` passes all
 * five; a service's main passes one.
 */
export async function startServices(
  runtime: Runtime,
  services: ServiceDefinition[],
  options: { port?: number; host?: string; logger?: boolean; /** The built console served at /console (default: `<root>/dist/console`). */ consoleDirectory?: string } = {},
): Promise<StartedApp> {
  const grpcServices = services.filter((s) => s.grpc);
  // Loaded only by a process that serves gRPC (intake, billing, the all-in-one): gRPC, its proto
  // loader and reflection are some MB of an idle process's memory (docs/benchmarks.md, service-rss).
  const grpcLib = grpcServices.length ? await import('@fastgpu/grpc') : undefined;
  const grpc = grpcLib
    ? [grpcLib.GrpcModule.forRoot({ port: runtime.config.grpcPort, handlers: (ref) => Object.assign({}, ...grpcServices.map((s) => s.grpc!(ref))) as GrpcHandlers })]
    : [];

  @Module({
    imports: [RuntimeModule.forRoot(runtime), { module: AuthModule, global: true }, MetricsModule, OpenApiModule, ConsoleModule, ...services.map((s) => s.module), ...grpc],
    controllers: [HealthController],
  })
  class PlatformModule {}

  const name = services.map((s) => s.name).join('+');
  const routes = new RouteTable();
  const app = await NestFactory.create<NestFastifyApplication>(PlatformModule, new FastifyAdapter(fastifyOptions()), {
    logger: options.logger === false ? false : new NestJsonLogger(name, { level: 'warn' }),
  });
  const fastify = app.getHttpAdapter().getInstance();
  // Routes are registered when the app initialises, after these hooks are in place.
  fastify.addHook('onRoute', (route) => routes.add(route.method, route.url ?? route.path));
  fastify.addHook('onRequest', (request, _reply, done) => {
    try {
      assertSingleValuedQuery(request.query);
      done();
    } catch (error) {
      done(error as Error);
    }
  });
  // Path parameters name stored objects: one that no store could hold (a control character, a
  // lone surrogate, an overlong value) is a 400 naming it, on every route, before any lookup
  // (PostgreSQL refuses U+0000 in a query parameter with an error, which was a 500).
  fastify.addHook('preValidation', (request, _reply, done) => {
    for (const [name, value] of Object.entries((request.params ?? {}) as Record<string, unknown>)) {
      if (typeof value !== 'string') continue;
      if (value.length > PATH_PARAMETER_LENGTH_MAX) return done(badRequest(`at most ${PATH_PARAMETER_LENGTH_MAX} characters`, name));
      if (!isSingleLineText(value)) return done(badRequest(SINGLE_LINE_TEXT_MESSAGE, name));
    }
    done();
  });
  // The browser console (issue 19), same origin as the API; a missing build answers 503, never fails the start.
  await registerConsole(fastify, options.consoleDirectory ?? defaultConsoleDirectory());
  instrumentHttp(app, runtime);
  app.useGlobalFilters(new ApiErrorFilter(routes));
  try {
    await app.listen(options.port ?? runtime.config.httpPort, options.host ?? runtime.config.httpHost);
  } catch (error) {
    // A module that failed to start (NATS not answering in time): what the others started stops.
    await app.close().catch(() => undefined);
    throw error;
  }
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    app,
    url: `http://${options.host ?? runtime.config.httpHost}:${port}`,
    ...(grpcLib ? { grpcPort: app.get(grpcLib.GrpcServerHandle, { strict: false }).port } : {}),
    close: () => app.close(),
  };
}
