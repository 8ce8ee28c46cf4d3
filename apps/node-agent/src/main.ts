import { loadAgentConfig } from './agent.config';
import { connectAgent } from './agent-connection';
import { NodeAgent } from './node-agent';

// The node agent on a GPU host (docs/node-agent.md): `npx tsx apps/node-agent/src/main.ts`.
// It authenticates as this node's own NATS user (its nkey seed, a credentials file, or user and
// password: agent-connection.ts) and keeps its runs going when it stops: a restarted agent adopts them.
const config = loadAgentConfig();
const bus = await connectAgent(config);
const agent = new NodeAgent(bus, config);
try {
  await agent.start();
} catch (error) {
  console.error(`fastgpu node agent: cannot start: ${(error as Error).message}`);
  await bus.nc.close();
  process.exit(1);
}

let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  await agent.stop();
  await bus.close();
  process.exit(0);
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
