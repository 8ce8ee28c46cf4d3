/**
 * Proves that reliability waits out NATS not answering at start instead of dying of it (real
 * NATS and PostgreSQL): started (startWithRetry, what every service's main runs) against a
 * throwaway nats-server on a free loopback port that has no JetStream, each attempt fails
 * (JetStream not enabled) and is retried with backoff; once the server is started again on the
 * same port with JetStream, reliability comes up and is ready (liveness loop and SLA projection
 * running), with no unhandled promise rejection on the way. An error that no retry changes (the
 * database refuses the credentials) is still thrown.
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonLogger } from '@fastgpu/observability';
import { isTransientStartError, startWithRetry, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { ReliabilityModule } from '../src/reliability.module';

let port: number;
let storeDir: string;
let server: ChildProcess | undefined;
let env: TestEnvironment;
let started: { runtime: OwnedRuntime; started: StartedApp } | undefined;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function answers(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function startServer(jetStream: boolean): Promise<void> {
  server = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), ...(jetStream ? ['-js', '-sd', storeDir] : [])], { stdio: 'ignore' });
  await eventually(answers, { timeoutMs: 10_000, intervalMs: 50, message: 'the throwaway nats-server did not start' });
}

async function stopServer(): Promise<void> {
  const running = server;
  server = undefined;
  if (!running || running.exitCode !== null) return;
  const exited = new Promise((resolve) => running.once('exit', resolve));
  running.kill('SIGKILL');
  await exited;
}

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  port = await freePort();
  storeDir = mkdtempSync(path.join(tmpdir(), 'fastgpu-start-retry-'));
  env = await createTestEnvironment();
});

afterAll(async () => {
  await started?.started.close();
  await started?.runtime.close();
  await stopServer();
  await env?.cleanup();
  rmSync(storeDir, { recursive: true, force: true });
  process.off('unhandledRejection', onUnhandled);
});

describe('reliability at start while NATS does not answer', () => {
  it('retries until JetStream answers, then comes up ready without a crash', async () => {
    await startServer(false);
    const retries: unknown[] = [];
    const logged: string[] = [];
    const starting = startWithRetry({ name: 'reliability', module: ReliabilityModule.withOptions({ slaAutoClose: false }) }, { ...env.config, natsUrl: `nats://127.0.0.1:${port}` }, {
      http: { port: 0, logger: false },
      logger: new JsonLogger('reliability', { sink: (line) => logged.push(line) }),
      onRetry: (_attempt, error) => retries.push(error),
    });
    let settled = false;
    void starting.then(
      () => (settled = true),
      () => (settled = true),
    );
    await eventually(() => retries.length >= 2, { timeoutMs: 30_000, message: 'no retried start while JetStream was off' });
    expect(settled).toBe(false);
    expect(retries.every((error) => isTransientStartError(error))).toBe(true);
    expect(JSON.parse(logged[0]!)).toMatchObject({ level: 'warn', service: 'reliability', msg: 'start failed; retrying', attempt: 1, error: { name: expect.any(String), message: expect.any(String) } });

    await stopServer();
    await startServer(true);
    started = await starting;
    const ready = await eventually(
      async () => {
        const response = await fetch(`${started!.started.url}/readyz`);
        return response.status === 200 && ((await response.json()) as Record<string, unknown>);
      },
      { timeoutMs: 30_000, message: 'reliability never became ready' },
    );
    expect(ready).toBeTruthy();
    expect(unhandled).toEqual([]);
  });

  it('does not retry what no retry changes', () => {
    expect(isTransientStartError(Object.assign(new Error('password authentication failed for user "x"'), { code: '28P01' }))).toBe(false);
    expect(isTransientStartError(new Error('FASTGPU_HTTP_PORT must be a number'))).toBe(false);
    expect(isTransientStartError(Object.assign(new Error('timeout'), { name: 'TimeoutError' }))).toBe(true);
    expect(isTransientStartError(new Error('start failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }))).toBe(true);
  });
});
