/**
 * Proves the node simulator waits out NATS not answering at start, by the services' start rule
 * (libs/platform start-retry.ts), instead of exiting (the nemesis saw it exit on a NATS
 * TimeoutError while the cluster was faulted). The compiled simulator (what the nemesis and
 * compose run) is started against a 3-server JetStream cluster whose servers are all down: it
 * logs retried starts and stays up; once the servers are back it registers its fleet, on
 * streams at the replicas it was given.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type Bus } from '@fastgpu/messaging';
import { eventually } from '@fastgpu/testing';
import { startCluster, type Cluster } from '../../../scripts/cluster/cluster';
import { compile } from '../../../scripts/compile.mjs';

let cluster: Cluster;
let simulator: ChildProcess | undefined;
let bus: Bus | undefined;
let output = '';
const prefix = `simretry${process.pid}`;

beforeAll(async () => {
  cluster = await startCluster({ size: 3 });
}, 120_000);

afterAll(async () => {
  if (simulator && simulator.exitCode === null) {
    const exited = new Promise((resolve) => simulator!.once('exit', resolve));
    simulator.kill('SIGKILL');
    await exited;
  }
  await bus?.close();
  await cluster?.stop();
});

describe('node simulator at start while NATS does not answer', () => {
  it('retries its start with backoff, then registers its fleet once the cluster is back', async () => {
    const bundle = await compile('apps/node-simulator/src/main.ts');
    for (const server of cluster.servers) await cluster.kill(server.name);
    simulator = spawn(process.execPath, [bundle], {
      env: { ...process.env, NATS_URL: cluster.natsUrl, FASTGPU_PREFIX: prefix, FASTGPU_STREAM_REPLICAS: '3', FASTGPU_SIMULATED_NODES: 'a100:2x1', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    simulator.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    simulator.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const retries = () => output.split('\n').filter((line) => line.includes('"msg":"start failed; retrying"')).map((line) => JSON.parse(line) as Record<string, unknown>);
    await eventually(() => retries().length >= 2, { timeoutMs: 30_000, message: `no retried start while NATS was down: ${output}` });
    expect(simulator.exitCode).toBeNull();
    expect(retries()[0]).toMatchObject({ level: 'warn', service: 'node-simulator', attempt: 1, retryInMs: 250 });
    expect(retries()[1]).toMatchObject({ attempt: 2, retryInMs: 500 });

    for (const server of cluster.servers) await cluster.restart(server.name);
    await eventually(() => /simulating 1 nodes: sim-a100-0/.test(output), { timeoutMs: 90_000, message: `the simulator never started: ${output}` });
    expect(simulator.exitCode).toBeNull();
    bus = await connectBus({ natsUrl: cluster.natsUrl, subjectPrefix: prefix, name: 'start-retry-spec', ensureStreams: false });
    const info = await bus.jsm.streams.info(bus.topology.streams.events);
    expect(info.config.num_replicas).toBe(3);
    expect(info.state.messages).toBeGreaterThanOrEqual(1);
  }, 180_000);
});
