import { Inject, Module, type DynamicModule, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { Authenticator } from '@fastgpu/auth';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import type { GrpcHandlers } from './ports';
import { startGrpcServer, type StartedGrpcServer } from './server';

export interface GrpcModuleOptions {
  /** 0 picks a free port (tests); read the bound one from `GrpcServerHandle.port`. */
  port: number;
  host?: string;
  /** Resolves the ports from the app (e.g. `app.get(JobsService)`), once every module is up. */
  handlers(moduleRef: ModuleRef): GrpcHandlers;
}

/** The running gRPC server of an app, once bootstrapped. */
export class GrpcServerHandle {
  started?: StartedGrpcServer;
  get port(): number {
    if (!this.started) throw new Error('the gRPC server is not started yet');
    return this.started.port;
  }
}

const OPTIONS = Symbol('GrpcModuleOptions');

class GrpcLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(OPTIONS) private readonly options: GrpcModuleOptions,
    @Inject(ModuleRef) private readonly moduleRef: ModuleRef,
    @Inject(GrpcServerHandle) private readonly handle: GrpcServerHandle,
    @Inject(Authenticator) private readonly authenticator: Authenticator,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.handle.started = await startGrpcServer(this.runtime, this.options.handlers(this.moduleRef), this.options.port, this.options.host ?? this.runtime.config.httpHost, this.authenticator);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.handle.started?.close();
  }
}

/**
 * The gRPC API inside the Nest app's lifecycle: started after every module is initialised (so
 * the services the handlers call exist), stopped with the app.
 * `GrpcModule.forRoot({ port: 50051, handlers: (ref) => ({ jobs: …ref.get(JobsService, { strict: false })… }) })`
 */
@Module({})
export class GrpcModule {
  static forRoot(options: GrpcModuleOptions): DynamicModule {
    return {
      module: GrpcModule,
      providers: [{ provide: OPTIONS, useValue: options }, GrpcServerHandle, GrpcLifecycle],
      exports: [GrpcServerHandle],
    };
  }
}
