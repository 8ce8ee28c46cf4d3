/**
 * Proves the agent's heartbeats do not wait on nvidia-smi, with a real stand-in nvidia-smi
 * process on PATH that hangs deaf to SIGTERM (as it does on a GPU stuck in the driver) and a real
 * agent on real NATS: heartbeats keep coming while it hangs; each hung query is killed at its
 * timeout and no second one starts while one is alive; once the newest sample is older than its
 * bound the heartbeats leave the GPU samples out (stale telemetry, said once in the agent's log);
 * when nvidia-smi answers again the samples come back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Heartbeat } from '@fastgpu/contracts';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { agentConfig, FakeHost, startAgent, type RunningAgent } from './agent-harness';

const NODE = 'gpu-host-slow-smi';
const HEARTBEAT_MS = 200;
const NVIDIA_SMI_TIMEOUT_MS = 1000;
let env: TestEnvironment;
let host: FakeHost;
let agent: RunningAgent;
const beats: Heartbeat[] = [];

beforeAll(async () => {
  env = await createTestEnvironment({ heartbeatIntervalMs: HEARTBEAT_MS });
  host = await FakeHost.create();
  const subscription = env.bus.nc.subscribe(env.bus.topology.subjects.heartbeat(NODE));
  void (async () => {
    for await (const m of subscription) beats.push(Heartbeat.parse(m.json()));
  })();
  agent = await startAgent(env, agentConfig(env, host, { nodeId: NODE, heartbeatIntervalMs: HEARTBEAT_MS, nvidiaSmiTimeoutMs: NVIDIA_SMI_TIMEOUT_MS }));
});

afterAll(async () => {
  await agent?.stop();
  await host?.hangNvidiaSmi(false);
  await host?.cleanup();
  await env?.cleanup();
});

describe('heartbeats apart from nvidia-smi', () => {
  it('keeps beating while nvidia-smi hangs, reports the GPU samples stale, and takes them back when it answers', async () => {
    await eventually(() => beats.some((beat) => beat.gpus.length === 4), { message: 'no heartbeat with the 4 GPUs' });

    await host.hangNvidiaSmi(true);
    const hungFrom = beats.length;
    let hungQueriesMax = 0;
    // Heartbeats go on, and after the samples' bound (timeout + interval) they carry no GPU sample.
    const stale = await eventually(
      async () => {
        hungQueriesMax = Math.max(hungQueriesMax, (await host.nvidiaSmiProcesses()).length);
        const since = beats.slice(hungFrom);
        return since.length >= 10 && since.at(-1)!.gpus.length === 0 ? since : undefined;
      },
      { timeoutMs: 30_000, message: 'heartbeats stopped, or kept stale GPU samples, while nvidia-smi hung' },
    );
    expect(stale.every((beat) => beat.agentEpoch === agent.agent.agentEpoch)).toBe(true);
    expect(agent.logs.filter((line) => line.startsWith('warn: GPU telemetry stale'))).toHaveLength(1);
    expect(agent.logs.some((line) => /GPU sample failed: .*did not answer within 1000 ms \(killed\)/.test(line))).toBe(true);
    // One hung query at a time: the sampler kills it at its timeout and waits for it to exit.
    expect(hungQueriesMax).toBeLessThanOrEqual(1);

    await host.hangNvidiaSmi(false);
    await host.setGpus([{ utilization: 42 }, {}, {}, {}]);
    const fresh = await eventually(() => beats.find((beat, at) => at > hungFrom && beat.gpus.length === 4 && beat.gpus[0]!.utilizationPercent === 42), { timeoutMs: 30_000, message: 'GPU samples did not come back' });
    expect(fresh.gpus.map((gpu) => gpu.index)).toEqual([0, 1, 2, 3]);
    expect(agent.logs).toContain('info: GPU telemetry fresh again');
  });
});
