import { loadConfig } from '@fastgpu/config';
import { connectBus } from '@fastgpu/messaging';
import { JsonLogger } from '@fastgpu/observability';
import { logUnhandledRejections, retryTransientStart } from '@fastgpu/platform';
import { ClockSkewFile } from './clock-skew';
import { startSimulatedFleet } from './simulated-node';

// Standalone simulated nodes against NATS_URL (the docker compose shape): FASTGPU_SIMULATED_NODES=a100:8x2,h100:8x2
const config = loadConfig();
const logger = new JsonLogger('node-simulator');
logUnhandledRejections(logger);
// Fault runs skew nodes' clocks through a file (the nemesis); otherwise every node reads the machine's clock.
const skew = config.simulatorClockSkewFile ? new ClockSkewFile(config.simulatorClockSkewFile) : undefined;
await skew?.start();
// NATS not answering yet (a cluster electing leaders, a server restarting) is waited out as the
// services wait it out (libs/platform start-retry.ts); a failed attempt closes its connection.
const { bus, nodes } = await retryTransientStart(
  async () => {
    const bus = await connectBus({ natsUrl: config.natsUrl, subjectPrefix: config.subjectPrefix, name: 'node-simulator', ...(config.streamReplicas !== undefined ? { replicas: config.streamReplicas } : {}) });
    try {
      return { bus, nodes: await startSimulatedFleet(bus, config.simulatedNodes, { speed: config.simulatorSpeed, heartbeatIntervalMs: config.heartbeatIntervalMs, ...(skew ? { clockOf: (nodeId: string) => skew.clockOf(nodeId) } : {}) }) };
    } catch (error) {
      await bus.close().catch(() => undefined);
      throw error;
    }
  },
  { logger },
);
console.log(`simulating ${nodes.length} nodes: ${nodes.map((n) => n.spec.nodeId).join(', ')}`);
const shutdown = async () => {
  for (const node of nodes) await node.stop();
  skew?.stop();
  await bus.close();
  process.exit(0);
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
