import { loadConfig } from '@fastgpu/config';
import { JsonLogger } from '@fastgpu/observability';
import { startTelemetry } from '@fastgpu/telemetry';
import { type ServiceDefinition } from './app';
import { collectStartupGarbage, resumeOptimizingCompiler } from './process-start';
import { logUnhandledRejections, startWithRetry } from './start-retry';

/** A service started alone against NATS_URL and DATABASE_URL (the docker compose shape). */
export async function runStandalone(service: ServiceDefinition): Promise<void> {
  const config = loadConfig();
  const logger = new JsonLogger(service.name);
  logUnhandledRejections(logger);
  const telemetry = startTelemetry({ serviceName: `fastgpu-${service.name}`, otlpEndpoint: config.otlpEndpoint });
  // Any number of instances may run: each projection applies in one of them at a time. NATS or
  // PostgreSQL not answering yet is waited out (startWithRetry), not a crash.
  const { runtime, started } = await startWithRetry(service, config, { runtime: { projectionLeases: true }, logger });
  if (runtime.generatedAdminKey) console.log(`admin key (generated, shown once): ${runtime.generatedAdminKey}`);
  collectStartupGarbage();
  resumeOptimizingCompiler();
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
