import { ProjectionRunner, type Projection } from '@fastgpu/messaging';
import type { Runtime } from '@fastgpu/runtime';

/**
 * Runs a service's projections for the life of the app and reports each one's health
 * (`projection:<name>`): a stalled projection fails readiness with the sequence and reason.
 */
export class ProjectionHost {
  private readonly runners = new Map<string, ProjectionRunner>();

  constructor(private readonly runtime: Runtime) {}

  add(projection: Projection): ProjectionRunner {
    const runner = new ProjectionRunner(this.runtime.bus, this.runtime.db, projection);
    this.runners.set(projection.name, runner);
    this.runtime.health.register(`projection:${projection.name}`, {
      check: () => {
        const health = runner.health;
        return { ok: health.status === 'running', detail: health };
      },
    });
    return runner;
  }

  runner(name: string): ProjectionRunner {
    const runner = this.runners.get(name);
    if (!runner) throw new Error(`no projection ${name}`);
    return runner;
  }

  async start(): Promise<void> {
    for (const runner of this.runners.values()) await runner.start();
  }

  async stop(): Promise<void> {
    for (const runner of this.runners.values()) await runner.stop();
  }
}
