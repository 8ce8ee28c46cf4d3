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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonLogger } from '@fastgpu/observability';
import { isTransientStartError, startWithRetry, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, ThrowawayNatsServer, type TestEnvironment } from '@fastgpu/testing';
import { ReliabilityModule } from '../src/reliability.module';

let nats: ThrowawayNatsServer;
let env: TestEnvironment;
let started: { runtime: OwnedRuntime; started: StartedApp } | undefined;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  nats = await ThrowawayNatsServer.create('start-retry');
  env = await createTestEnvironment();
});

afterAll(async () => {
  await started?.started.close();
  await started?.runtime.close();
  await nats?.dispose();
  await env?.cleanup();
  process.off('unhandledRejection', onUnhandled);
});

describe('reliability at start while NATS does not answer', () => {
  it('retries until JetStream answers, then comes up ready without a crash', async () => {
    await nats.start({ jetStream: false });
    const retries: unknown[] = [];
    const logged: string[] = [];
    const starting = startWithRetry({ name: 'reliability', module: ReliabilityModule.withOptions({ slaAutoClose: false }) }, { ...env.config, natsUrl: nats.url }, {
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

    await nats.kill();
    await nats.start();
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
