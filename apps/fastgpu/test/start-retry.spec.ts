/**
 * Proves that `npm start` (apps/fastgpu/src/main.ts, all five services in one process) waits out
 * PostgreSQL and NATS not answering yet instead of dying of it, with the rule every service's main
 * uses (libs/platform startWithRetry): the real process is started while its DATABASE_URL points
 * at a closed TCP relay to the machine's PostgreSQL and its NATS_URL at a throwaway nats-server
 * without JetStream. It logs retried starts (PostgreSQL refused, then JetStream not enabled) and
 * keeps running; once the relay opens and the server is restarted with JetStream on the same port
 * it comes up, prints its address, answers /healthz and stops on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnvironment, eventually, TcpRelay, ThrowawayNatsServer, type TestEnvironment } from '@fastgpu/testing';

const root = path.resolve(import.meta.dirname, '../../..');
/** The all-in-one under tsx compiles and starts five services: slow on a loaded machine. */
const START_TIMEOUT_MS = 120_000;

let env: TestEnvironment;
let relay: TcpRelay;
let folder: string;
let nats: ThrowawayNatsServer;
let platform: ChildProcess | undefined;
let output = '';

async function stop(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

beforeAll(async () => {
  env = await createTestEnvironment();
  folder = mkdtempSync(path.join(tmpdir(), 'fastgpu-all-in-one-retry-'));
  nats = await ThrowawayNatsServer.create('all-in-one-retry');
  // A port that refuses connections until the relay opens on it.
  relay = TcpRelay.to(env.config.databaseUrl!, 5432);
  await relay.open();
  await relay.cut();
});

afterAll(async () => {
  await stop(platform, 'SIGKILL');
  await nats?.dispose();
  await relay?.cut();
  await env?.cleanup();
  rmSync(folder, { recursive: true, force: true });
});

describe('npm start while PostgreSQL and NATS are not up yet', () => {
  it('retries its start, then comes up once both answer', async () => {
    await nats.start({ jetStream: false });
    platform = spawn(process.execPath, ['--import', 'tsx', 'apps/fastgpu/src/main.ts'], {
      cwd: root,
      env: {
        PATH: process.env.PATH,
        NATS_URL: nats.url,
        DATABASE_URL: relay.through(env.config.databaseUrl!),
        FASTGPU_PREFIX: `${env.config.subjectPrefix}aio`,
        FASTGPU_DATA_DIR: folder,
        FASTGPU_ADMIN_KEY: `fgk_${'s'.repeat(32)}`,
        FASTGPU_SIMULATED_NODES: 'a100:8x1',
        HOST: '127.0.0.1',
        PORT: '0',
        FASTGPU_GRPC_PORT: '0',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    platform.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    platform.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const retries = () => output.split('\n').filter((line) => line.includes('"msg":"start failed; retrying"'));

    // PostgreSQL refused: retried, the process stays up.
    await eventually(() => retries().length >= 2, { timeoutMs: START_TIMEOUT_MS, intervalMs: 200, message: `no retried start while PostgreSQL was out of reach:\n${output}` });
    expect(platform.exitCode).toBeNull();
    expect(retries().map((line) => JSON.parse(line) as { level: string; service: string })[0]).toMatchObject({ level: 'warn', service: 'fastgpu' });

    // PostgreSQL answers, JetStream is not enabled yet: still retried.
    await relay.open();
    const seen = retries().length;
    await eventually(() => retries().length >= seen + 2, { timeoutMs: START_TIMEOUT_MS, intervalMs: 200, message: `no retried start while JetStream was off:\n${output}` });
    expect(retries().slice(seen).join('\n')).toMatch(/jetstream/i);
    expect(platform.exitCode).toBeNull();

    await nats.kill();
    await nats.start();
    const url = await eventually(() => /FastGPU is running at (http:\/\/\S+)/.exec(output)?.[1], { timeoutMs: START_TIMEOUT_MS, intervalMs: 200, message: `npm start did not come up:\n${output}` });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    await stop(platform, 'SIGTERM');
    expect(platform.exitCode).toBe(0);
  }, 4 * START_TIMEOUT_MS);
});
