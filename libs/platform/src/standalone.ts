import { loadConfig } from '@fastgpu/config';
import { startTelemetry } from '@fastgpu/telemetry';
import { createRuntime } from './runtime';
import { startServices, type ServiceDefinition } from './app';
import { collectStartupGarbage } from './process-start';

/** A service started alone against NATS_URL and DATABASE_URL (the docker compose shape). */
export async function runStandalone(service: ServiceDefinition): Promise<void> {
  const config = loadConfig();
  const telemetry = startTelemetry({ serviceName: `fastgpu-${service.name}`, otlpEndpoint: config.otlpEndpoint });
  // Any number of instances may run: each projection applies in one of them at a time.
  const runtime = await createRuntime(config, { projectionLeases: true });
  if (runtime.generatedAdminKey) console.log(`admin key (generated, shown once): ${runtime.generatedAdminKey}`);
  const started = await startServices(runtime, [service]);
  collectStartupGarbage();
  console.log(`fastgpu ${service.name} listening on ${started.url}`);
  const shutdown = async () => {
    await started.close();
    await runtime.close();
    await telemetry.shutdown();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
