import { readFile } from 'node:fs/promises';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, credsAuthenticator, type ConnectionOptions } from '@nats-io/transport-node';
import { topology } from '@fastgpu/contracts';
import { loadAgentConfig } from './agent.config';
import { NodeAgent } from './node-agent';

// The node agent on a GPU host (docs/node-agent.md): `npx tsx apps/node-agent/src/main.ts`.
// It authenticates as this node's own NATS user (a credentials file, or user and password)
// and keeps its runs going when it stops: a restarted agent adopts them.
const config = loadAgentConfig();
const options: ConnectionOptions = {
  servers: config.natsUrl,
  name: `fastgpu-node-agent-${config.nodeId}`,
  maxReconnectAttempts: -1,
  reconnectTimeWait: 1000,
  noAsyncTraces: true,
};
if (config.natsCredsFile) options.authenticator = credsAuthenticator(await readFile(config.natsCredsFile));
else if (config.natsUser) {
  options.user = config.natsUser;
  options.pass = config.natsPassword;
}
const nc = await connect(options);
const bus = { nc, js: jetstream(nc, { timeout: 10_000 }), jsm: await jetstreamManager(nc, { timeout: 10_000 }), topology: topology(config.subjectPrefix) };
const agent = new NodeAgent(bus, config);
try {
  await agent.start();
} catch (error) {
  console.error(`fastgpu node agent: cannot start: ${(error as Error).message}`);
  await nc.close();
  process.exit(1);
}

let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  await agent.stop();
  await nc.drain().catch(() => nc.close());
  process.exit(0);
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
