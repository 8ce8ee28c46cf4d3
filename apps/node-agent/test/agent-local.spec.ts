/**
 * The agent inside `npm start` (FASTGPU_LOCAL_AGENT=1): it is wanted only when asked, registers
 * this host's GPUs on the process's own bus with its work root under the data directory, and on
 * a host without nvidia-smi refuses to start with one line that says so.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { localAgentWanted, startLocalAgent } from '../src/local-agent';
import { EventTail, FakeHost } from './agent-harness';

let env: TestEnvironment;
let host: FakeHost;

beforeAll(async () => {
  env = await createTestEnvironment({ heartbeatIntervalMs: 200 });
  host = await FakeHost.create();
});

afterAll(async () => {
  await host?.cleanup();
  await env?.cleanup();
});

describe('FASTGPU_LOCAL_AGENT', () => {
  it('is off unless set to 1 or true', () => {
    expect(localAgentWanted({})).toBe(false);
    expect(localAgentWanted({ FASTGPU_LOCAL_AGENT: '0' })).toBe(false);
    expect(localAgentWanted({ FASTGPU_LOCAL_AGENT: '1' })).toBe(true);
    expect(localAgentWanted({ FASTGPU_LOCAL_AGENT: 'true' })).toBe(true);
  });

  it('registers the host\'s GPUs on the process\'s bus, its work root under the data directory', async () => {
    const tail = new EventTail(env.bus);
    await tail.start();
    const dataDir = await host.directory('data');
    const agent = await startLocalAgent(env.bus, { dataDir, env: { NATS_URL: env.config.natsUrl, FASTGPU_PREFIX: env.config.subjectPrefix, FASTGPU_AGENT_NODE_ID: 'local-1', FASTGPU_HEARTBEAT_INTERVAL_MS: '200' } });
    try {
      expect(agent.summary).toBe('local-1 (4× a100)');
      expect((await tail.waitFor('NodeRegistered', (e) => e.data.nodeId === 'local-1')).data).toMatchObject({ gpuCount: 4, gpuModel: 'a100' });
      const { stat } = await import('node:fs/promises');
      expect((await stat(join(dataDir, 'node-agent', 'agent-state.json'))).isFile()).toBe(true);
    } finally {
      await agent.stop();
      await tail.stop();
    }
  });

  it('says clearly that a host without nvidia-smi cannot run it', async () => {
    const dataDir = await host.directory('data-no-gpu');
    await expect(startLocalAgent(env.bus, { dataDir, env: { FASTGPU_PREFIX: env.config.subjectPrefix, FASTGPU_AGENT_NODE_ID: 'local-2', FASTGPU_AGENT_NVIDIA_SMI: 'nvidia-smi-not-installed' } })).rejects.toThrow(
      'FASTGPU_LOCAL_AGENT=1: the local node agent cannot start: nvidia-smi-not-installed not found: this host has no NVIDIA driver (the agent runs only on a GPU host), or set FASTGPU_AGENT_NVIDIA_SMI to its path',
    );
  });
});
