import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { ProjectionHost } from '@fastgpu/platform';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { directoryProjection } from '../tenants/directory.projection';
import { jobsProjection } from '../jobs/jobs.projection';

/** Runs intake's read models (directory, jobs) for the life of the service. */
@Injectable()
export class IntakeProjections implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly host: ProjectionHost;

  constructor(@Inject(RUNTIME) runtime: Runtime) {
    this.host = new ProjectionHost(runtime);
    this.host.add(directoryProjection);
    this.host.add(jobsProjection);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.host.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.host.stop();
  }

  /** Read-your-writes: waits until the named projection has applied `sequence`. */
  waitFor(projection: 'intake-directory' | 'intake-jobs', sequence: number, timeoutMs = 5000): Promise<boolean> {
    return this.host.runner(projection).waitFor(sequence, timeoutMs);
  }
}
