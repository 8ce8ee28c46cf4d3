import { join } from 'node:path';
import type { Bus } from '@fastgpu/messaging';
import { loadAgentConfig } from './agent.config';
import { NodeAgent } from './node-agent';

/**
 * The real agent on the local host inside `npm start` (FASTGPU_LOCAL_AGENT=1): it shares the
 * process's NATS connection, keeps its work root under FASTGPU_DATA_DIR, and reads the rest of
 * its configuration from the same environment variables as `npm run start:node-agent`
 * (docs/node-agent.md). On a host without nvidia-smi it refuses to start, saying so.
 */
export function localAgentWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.FASTGPU_LOCAL_AGENT === '1' || env.FASTGPU_LOCAL_AGENT === 'true';
}

export async function startLocalAgent(bus: Bus, options: { dataDir: string; env?: NodeJS.ProcessEnv }): Promise<NodeAgent> {
  const env = options.env ?? process.env;
  const config = loadAgentConfig({ workRoot: env.FASTGPU_AGENT_WORK_ROOT || join(options.dataDir, 'node-agent') }, env);
  const agent = new NodeAgent(bus, config);
  try {
    await agent.start();
  } catch (error) {
    throw new Error(`FASTGPU_LOCAL_AGENT=1: the local node agent cannot start: ${(error as Error).message}`);
  }
  return agent;
}
