import 'reflect-metadata';
import { loadConfig } from '@fastgpu/config';
import { ensureNats, startWithRetry } from '@fastgpu/platform';
import { startTelemetry } from '@fastgpu/telemetry';
import { localAgentWanted, startLocalAgent } from '../../node-agent/src/local-agent';
import { startSimulatedFleet } from '../../node-simulator/src/simulated-node';
import { seedDemo } from './demo';
import { allServices } from './services';

/**
 * `npm start`: the whole system on embedded defaults — all five services in one process,
 * PGlite under FASTGPU_DATA_DIR (unless DATABASE_URL), NATS at NATS_URL or a local
 * nats-server started with JetStream, simulated GPU nodes, and a demo tenant whose key it prints.
 * NATS or PostgreSQL not answering yet is waited out as every service's main waits it out
 * (startWithRetry, libs/platform start-retry.ts), not a crash.
 */
const config = loadConfig();
const telemetry = startTelemetry({ serviceName: 'fastgpu', otlpEndpoint: config.otlpEndpoint });
try {
  const nats = await ensureNats(config.natsUrl, config.dataDir);
  const { runtime, started } = await startWithRetry(allServices, config);
  const adminKey = config.adminKey ?? runtime.generatedAdminKey!;
  const demo = await seedDemo(runtime, started.url, adminKey);
  const fleet = await startSimulatedFleet(runtime.bus, config.simulatedNodes, { speed: config.simulatorSpeed, heartbeatIntervalMs: config.heartbeatIntervalMs });
  // FASTGPU_LOCAL_AGENT=1: this host's GPUs through the real node agent (docs/node-agent.md), beside the simulated nodes.
  const localAgent = localAgentWanted() ? await startLocalAgent(runtime.bus, { dataDir: config.dataDir }) : undefined;

  const now = runtime.clock.now();
  const month = now.toISOString().slice(0, 7);
  const nextMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString().slice(0, 7);
  console.log(`
FastGPU is running at ${started.url}
  database : ${config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `PGlite in ${config.dataDir}/pglite`}
  NATS     : ${config.natsUrl}${nats.started ? ` (started nats-server, store in ${config.dataDir}/nats)` : ''}
  nodes    : ${fleet.map((n) => `${n.spec.nodeId} (${n.spec.gpuCount}× ${n.spec.gpuModel})`).join(', ')}${localAgent ? `\n  local agent : ${localAgent.summary}, runs jobs with a workload on this host` : ''}
  admin key   : ${config.adminKey ? '(FASTGPU_ADMIN_KEY)' : adminKey}
  demo tenant : demo   key: ${demo.tenantKey}
  finance key : ${demo.financeKey}

Try:
  export KEY=${demo.tenantKey}
  curl -s -X POST ${started.url}/v1/jobs -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
       -H 'Idempotency-Key: demo-1' -d '{"projectId":"demo","gpuModels":["a100"],"gpusPerSubtask":2,"subtaskCount":2,"runtimeSeconds":20}'
  curl -s ${started.url}/v1/jobs/<jobId> -H "Authorization: Bearer $KEY"
  curl -s "${started.url}/v1/usage?from=${month}&to=${nextMonth}&window=hour" -H "Authorization: Bearer $KEY"
  curl -s ${started.url}/v1/invoices -H "Authorization: Bearer $KEY"
  curl -s "${started.url}/v1/sla-reports?period=${month}" -H "Authorization: Bearer $KEY"
  OpenAPI: ${started.url}/docs   metrics: ${started.url}/metrics${started.grpcPort ? `   gRPC: 127.0.0.1:${started.grpcPort} (reflection)` : ''}
`);

  const shutdown = async () => {
    for (const node of fleet) await node.stop();
    await localAgent?.stop();
    await started.close();
    await runtime.close();
    nats.stop();
    await telemetry.shutdown();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
