/**
 * Proves the real node agent works with its own NATS credential (issue 18; docs/node-agent.md,
 * "Credentials") on a throwaway nats-server with JetStream whose `authorization` block holds a
 * platform user and two nodes' nkey users exactly as `npm run node-credentials` prints them
 * (scripts/node-credentials.ts): the agent's own process (apps/node-agent/src/main.ts), given
 * only its seed file (FASTGPU_NODE_NKEY_SEED_FILE) and no stream rights, registers, runs a
 * sub-task, ships its logs and stores its result, and stops cleanly on SIGTERM; restarted in the
 * middle of a run it finds its consumer and resumes the run's logs from the stream; its connection
 * (agent-connection.ts, what main.ts uses) is refused another node's subjects. What a node's
 * credential refuses subject by subject is proved in test/cluster/node-credentials.spec.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Objm } from '@nats-io/obj';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resultObjectName } from '@fastgpu/contracts';
import { connectBus, type Bus } from '@fastgpu/messaging';
import { eventually } from '@fastgpu/testing';
import { freePort } from '../../../scripts/cluster/cluster';
import { generateNodeCredential } from '../../../scripts/node-credentials';
import { agentConfigSchema, loadAgentConfig, type AgentConfig } from '../src/agent.config';
import { connectAgent } from '../src/agent-connection';
import { openResultBucket, RESULT_BUCKET_LIMITS_DEFAULT } from '../src/results/result-store';
import { EventTail, FakeHost, runCommand } from './agent-harness';

const PREFIX = 'agentcreds';
const PLATFORM_PASSWORD = 'platform-secret-for-this-test-only';
let dir: string;
let port: number;
let server: ChildProcess;
let platform: Bus;
let host: FakeHost;
let tail: EventTail;
let agentEnv: NodeJS.ProcessEnv;
let config: AgentConfig;
let agentProcess: ChildProcess | undefined;
let agentOutput = '';
const connections: Bus[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fastgpu-agent-creds-'));
  port = await freePort();
  const nodeA = generateNodeCredential('gpu-a', PREFIX);
  const nodeB = generateNodeCredential('gpu-b', PREFIX);
  writeFileSync(path.join(dir, 'server.conf'), [`listen: 127.0.0.1:${port}`, `jetstream { store_dir: ${JSON.stringify(path.join(dir, 'store'))} }`, 'authorization {', '  users: [', `  { user: platform, password: ${JSON.stringify(PLATFORM_PASSWORD)} }`, nodeA.userEntry, nodeB.userEntry, '  ]', '}', ''].join('\n'));
  server = spawn('nats-server', ['-c', path.join(dir, 'server.conf')], { stdio: 'ignore' });
  const natsUrl = `nats://127.0.0.1:${port}`;
  // The platform's user creates the streams and the results bucket (the operator's part in production).
  platform = await eventually(() => connectBus({ natsUrl: `nats://platform:${PLATFORM_PASSWORD}@127.0.0.1:${port}`, subjectPrefix: PREFIX, name: 'platform' }), { timeoutMs: 15_000 });
  await openResultBucket(platform.nc, platform.topology, { create: true, limits: RESULT_BUCKET_LIMITS_DEFAULT });
  tail = new EventTail(platform);
  await tail.start();

  host = await FakeHost.create();
  const seedFile = path.join(dir, 'gpu-a.nk');
  writeFileSync(seedFile, `${nodeA.seed}\n`, { mode: 0o600 });
  // The agent's whole environment: no platform credentials, only its seed file.
  agentEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NATS_URL: natsUrl, FASTGPU_PREFIX: PREFIX, FASTGPU_NODE_NKEY_SEED_FILE: seedFile, FASTGPU_AGENT_NODE_ID: 'gpu-a', FASTGPU_AGENT_WORK_ROOT: path.join(host.root, 'work'), FASTGPU_AGENT_MANAGE_STREAMS: 'false', FASTGPU_HEARTBEAT_INTERVAL_MS: '200', FASTGPU_AGENT_LOG_POLL_MS: '50' };
  config = loadAgentConfig({}, agentEnv);
  expect(config.natsNkeySeedFile).toBe(seedFile);
});

afterAll(async () => {
  if (agentProcess && agentProcess.exitCode === null) {
    agentProcess.kill('SIGKILL');
    await once(agentProcess, 'exit');
  }
  for (const bus of connections) await bus.close();
  await tail?.stop();
  await platform?.close();
  await host?.cleanup();
  server?.kill('SIGTERM');
  await new Promise((resolve) => (server && server.exitCode === null ? server.once('exit', resolve) : resolve(undefined)));
  rmSync(dir, { recursive: true, force: true });
});

describe('the node agent signed in with its own nkey', () => {
  it('registers, runs a sub-task, ships its logs and stores its result, and stops on SIGTERM', async () => {
    agentProcess = spawn(process.execPath, ['--import', 'tsx', 'apps/node-agent/src/main.ts'], { env: agentEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    agentProcess.stdout!.on('data', (chunk: Buffer) => (agentOutput += chunk.toString()));
    agentProcess.stderr!.on('data', (chunk: Buffer) => (agentOutput += chunk.toString()));
    const registered = await tail.waitFor('NodeRegistered', (e) => e.data.nodeId === 'gpu-a', 30_000);
    expect(registered.data).toMatchObject({ gpuCount: 4 });
    await eventually(async () => (await platform.jsm.streams.info(platform.topology.streams.heartbeats, { subjects_filter: platform.topology.subjects.heartbeat('gpu-a') })).state.subjects?.[platform.topology.subjects.heartbeat('gpu-a')]);

    const command = runCommand({ subtaskId: 'st-creds', jobId: 'job-creds', tenantId: 'acme', script: "console.log('hello from ' + process.env.CUDA_VISIBLE_DEVICES); require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, 'signed-in result')" });
    await platform.js.publish(platform.topology.subjects.command('gpu-a'), JSON.stringify(command), { msgID: command.commandId });
    const completed = await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === 'st-creds');
    expect(completed.data).toMatchObject({ nodeId: 'gpu-a', attempt: 1, exitCode: 0 });

    const store = await new Objm(platform.nc).open(platform.topology.buckets.results);
    expect(new TextDecoder().decode(await store.getBlob(resultObjectName('acme', 'job-creds', 0, 1)))).toBe('signed-in result');
    const subject = platform.topology.subjects.logs('acme', 'job-creds', 0, 1);
    const logs = await platform.jsm.streams.info(platform.topology.streams.logs, { subjects_filter: subject });
    expect(logs.state.subjects?.[subject]).toBeGreaterThanOrEqual(2); // its output and the end marker
    const first = await platform.jsm.streams.getMessage(platform.topology.streams.logs, { seq: logs.state.first_seq });
    expect(new TextDecoder().decode(first!.data)).toMatch(/^hello from GPU-/);
    expect(agentOutput).toMatch(/registered: 4 × a100/);
    expect(agentOutput).not.toMatch(/permission|error/i);

    agentProcess.kill('SIGTERM');
    const [code] = (await once(agentProcess, 'exit')) as [number | null];
    expect(code).toBe(0);
  });

  it('restarted mid-run, adopts the run and resumes its logs where they stopped', async () => {
    const outbox = await host.directory('outbox');
    const start = () => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'apps/node-agent/src/main.ts'], { env: agentEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      return { child, output: () => output };
    };
    let run = start();
    agentProcess = run.child;
    // Its state file from the test above: a restart with nothing running (same shape: no new registration).
    await eventually(() => /registered|restarted with agent epoch/.test(run.output()), { timeoutMs: 30_000, message: 'the agent did not start' });
    const command = runCommand({
      subtaskId: 'st-creds-restart',
      jobId: 'job-creds-restart',
      workload: { env: { OUTBOX: outbox } },
      script: `const fs = require('fs'); let i = 0;
               const timer = setInterval(() => {
                 console.log('tick ' + i++);
                 if (fs.existsSync(process.env.OUTBOX + '/release') && i > 20) { clearInterval(timer); fs.writeFileSync(process.env.FASTGPU_RESULT_PATH, String(i)); }
               }, 20);`,
    });
    await platform.js.publish(platform.topology.subjects.command('gpu-a'), JSON.stringify(command), { msgID: command.commandId });
    const subject = platform.topology.subjects.logs('acme', 'job-creds-restart', 0, 1);
    await eventually(async () => ((await platform.jsm.streams.info(platform.topology.streams.logs, { subjects_filter: subject })).state.subjects?.[subject] ?? 0) >= 2);
    run.child.kill('SIGTERM');
    expect((await once(run.child, 'exit'))[0]).toBe(0);
    const before = run.output();

    run = start();
    agentProcess = run.child;
    await eventually(() => /st-creds-restart\S* is alive after the restart: adopted/.test(run.output()), { timeoutMs: 30_000, message: 'the run was not adopted' });
    writeFileSync(path.join(outbox, 'release'), '');
    expect((await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === 'st-creds-restart', 30_000)).data.attempt).toBe(1);
    const messages = await eventually(async () => {
      const state = (await platform.jsm.streams.info(platform.topology.streams.logs, { subjects_filter: subject })).state;
      const total = state.subjects?.[subject] ?? 0;
      const consumer = await platform.js.consumers.get(platform.topology.streams.logs, { filter_subjects: subject });
      const out: string[] = [];
      while (out.length < total) {
        const m = await consumer.next({ expires: 2000 });
        if (!m) break;
        out.push(new TextDecoder().decode(m.data));
      }
      return out.at(-1) === '' && out;
    });
    const ticks = messages.join('').trimEnd().split('\n');
    expect(ticks).toEqual(ticks.map((_, i) => `tick ${i}`)); // shipped exactly once across the restart
    expect(`${before}${run.output()}`).not.toMatch(/permission|error/i);
    run.child.kill('SIGTERM');
    expect((await once(run.child, 'exit'))[0]).toBe(0);
  });

  it('is refused another node\'s reports and heartbeats on its own connection', async () => {
    const agentBus = await connectAgent(config, { maxReconnectAttempts: 0 });
    connections.push(agentBus);
    for (const subject of [platform.topology.subjects.agentNode('gpu-b'), platform.topology.subjects.heartbeat('gpu-b')]) {
      const refused = await agentBus.js.publish(subject, new TextEncoder().encode('{}'), { timeout: 2000 }).then(
        () => 'stored',
        (error: Error) => error.message,
      );
      expect({ subject, refused }).toEqual({ subject, refused: expect.stringMatching(/permission/i) });
    }
  });

  it('takes one way of signing in', () => {
    expect(() => loadAgentConfig({}, { FASTGPU_NODE_NKEY_SEED_FILE: '/x/node.nk', NATS_CREDS: '/x/node.creds', FASTGPU_AGENT_NODE_ID: 'gpu-a' })).toThrow(/one of/);
    expect(agentConfigSchema.shape.natsNkeySeedFile.safeParse(undefined).success).toBe(true);
  });
});
