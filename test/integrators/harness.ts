/* eslint-disable @typescript-eslint/no-explicit-any -- bodies and gRPC stubs are typed at run time */
import 'reflect-metadata';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { hashSecret } from '@fastgpu/auth';
import type { FastGpuConfig } from '@fastgpu/config';
import { newEventId, type DomainEvent, type EventData, type EventType } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type ServiceDefinition, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, usageRecordedData, type TestEnvironment } from '@fastgpu/testing';

/**
 * The integrator tests' running platform: the services asked for on a fresh database and stream
 * prefix (real nats-server and PostgreSQL), HTTP requests with exactly the headers given (no
 * `Accept` unless a test sends one), keys written into the key directory, and helpers that
 * publish what other services would.
 */
export const ADMIN = 'test-admin-key-0123456789abcdef';

/** Far above what a test sends: these tests are about pages and representations, not the limiter. */
export const NO_RATE_LIMITS: Partial<FastGpuConfig> = { rateLimitKeyPerSecond: 1_000_000, rateLimitKeyBurst: 10_000_000, rateLimitTenantPerSecond: 1_000_000, rateLimitTenantBurst: 10_000_000 };

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  buffer: Buffer;
  text: string;
  body: any;
}

export interface Platform {
  env: TestEnvironment;
  runtime: OwnedRuntime;
  started: StartedApp;
  publisher: EventPublisher;
  /** A request with exactly these headers (plus `authorization` when a key is given). */
  http(method: string, path: string, key?: string, body?: unknown, headers?: Record<string, string>): Promise<Answer>;
  /** A key written straight into the key directory. */
  key(role: 'tenant' | 'finance' | 'sre', tenantId: string | null): Promise<string>;
  publish<T extends EventType>(type: T, data: EventData<T>, options?: { tenantId?: string | null; time?: string }): Promise<number>;
  close(): Promise<void>;
}

export async function startPlatform(services: ServiceDefinition[], overrides: Partial<FastGpuConfig> = {}): Promise<Platform> {
  const env = await createTestEnvironment({ adminKey: ADMIN, ...NO_RATE_LIMITS, ...overrides });
  const runtime = await createRuntime(env.config);
  const started = await startServices(runtime, services, { port: 0, logger: false });
  const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test/integrators');
  const target = new URL(started.url);
  const agent = new http.Agent({ keepAlive: true });
  return {
    env,
    runtime,
    started,
    publisher,
    http(method, path, key, body, headers = {}) {
      const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      return new Promise<Answer>((resolve, reject) => {
        const request = http.request(
          {
            host: target.hostname,
            port: target.port,
            path,
            method,
            agent,
            headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}), ...headers },
          },
          (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () => {
              const buffer = Buffer.concat(chunks);
              const text = buffer.toString('utf8');
              let parsed: unknown;
              try {
                parsed = text ? JSON.parse(text) : undefined;
              } catch {
                parsed = undefined;
              }
              resolve({ status: response.statusCode ?? 0, headers: response.headers, buffer, text, body: parsed });
            });
            response.on('error', reject);
          },
        );
        request.on('error', reject);
        request.end(payload);
      });
    },
    async key(role, tenantId) {
      const secret = `fgk_integrators_${randomBytes(12).toString('hex')}`;
      await runtime.db.insertInto('api_keys').values({ key_id: `k-${randomBytes(6).toString('hex')}`, tenant_id: tenantId, role, secret_hash: hashSecret(secret), issued_at: new Date() }).execute();
      return secret;
    },
    async publish(type, data, options = {}) {
      const id = newEventId();
      const event = publisher.build(type, data, { id, time: options.time ?? new Date().toISOString(), tenantId: options.tenantId ?? null, correlationId: id }) as DomainEvent;
      return (await publisher.publish(event)).sequence;
    },
    async close() {
      agent.destroy();
      await started.close();
      await runtime.close();
      await env.cleanup();
    },
  };
}

/** The billing month `back` months before the current one (UTC), and an instant on one of its days. */
export function monthBack(back: number): { period: string; at(day: number, hour?: number): string } {
  const now = new Date();
  const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1));
  return {
    period: `${first.getUTCFullYear()}-${String(first.getUTCMonth() + 1).padStart(2, '0')}`,
    at: (day, hour = 12) => new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), day, hour)).toISOString(),
  };
}

/** A `UsageRecorded` as metering announces it: one allocation of `gpus` GPUs over [startAt, endAt). */
export const usage = usageRecordedData;

/** One price book every test tenant is billed with. */
export const PRICE_BOOK = {
  priceBookId: 'standard',
  currency: 'USD',
  effectiveFrom: '2020-01-01T00:00:00.000Z',
  prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.50' }],
};
