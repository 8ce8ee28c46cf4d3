import { readFile } from 'node:fs/promises';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, credsAuthenticator, nkeyAuthenticator, type ConnectionOptions } from '@nats-io/transport-node';
import { topology } from '@fastgpu/contracts';
import type { Bus } from '@fastgpu/messaging';
import type { AgentConfig } from './agent.config';

/**
 * How the agent signs in to NATS as this node's own user (docs/node-agent.md, "Credentials"):
 * the node's nkey seed (`FASTGPU_NODE_NKEY_SEED_FILE`, written by `npm run node-credentials`),
 * a credentials file (`NATS_CREDS`, JWT + seed), or a user and password; none: anonymous
 * (a development server without authorization).
 */
export async function agentConnectionOptions(config: AgentConfig): Promise<ConnectionOptions> {
  const options: ConnectionOptions = {
    servers: config.natsUrl,
    name: `fastgpu-node-agent-${config.nodeId}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    noAsyncTraces: true,
  };
  if (config.natsNkeySeedFile) {
    const seed = (await readFile(config.natsNkeySeedFile, 'utf8')).trim();
    if (!/^SU[A-Z2-7]{50,60}$/.test(seed)) throw new Error(`${config.natsNkeySeedFile} does not hold a user nkey seed (SU…)`);
    options.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  } else if (config.natsCredsFile) options.authenticator = credsAuthenticator(await readFile(config.natsCredsFile));
  else if (config.natsUser) {
    options.user = config.natsUser;
    options.pass = config.natsPassword;
  }
  return options;
}

/** The agent's connection, with only what it uses (no stream is created here: see `manageStreams`). */
export async function connectAgent(config: AgentConfig, overrides: Partial<ConnectionOptions> = {}): Promise<Bus> {
  const nc = await connect({ ...(await agentConnectionOptions(config)), ...overrides });
  try {
    return {
      nc,
      js: jetstream(nc, { timeout: 10_000 }),
      jsm: await jetstreamManager(nc, { timeout: 10_000 }),
      topology: topology(config.subjectPrefix),
      natsUrl: config.natsUrl,
      close: async () => {
        if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
      },
    };
  } catch (error) {
    await nc.close();
    throw error;
  }
}
