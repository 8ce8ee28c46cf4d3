import { loadConfig } from '@fastgpu/config';
import { connectBus } from '@fastgpu/messaging';
import { startSimulatedFleet } from './simulated-node';

// Standalone simulated nodes against NATS_URL (the docker compose shape): FASTGPU_SIMULATED_NODES=a100:8x2,h100:8x2
const config = loadConfig();
const bus = await connectBus({ natsUrl: config.natsUrl, subjectPrefix: config.subjectPrefix, name: 'node-simulator' });
const nodes = await startSimulatedFleet(bus, config.simulatedNodes, { speed: config.simulatorSpeed, heartbeatIntervalMs: config.heartbeatIntervalMs });
console.log(`simulating ${nodes.length} nodes: ${nodes.map((n) => n.spec.nodeId).join(', ')}`);
const shutdown = async () => {
  for (const node of nodes) await node.stop();
  await bus.close();
  process.exit(0);
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
