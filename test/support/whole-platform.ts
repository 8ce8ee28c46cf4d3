/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies are typed at run time */
import 'reflect-metadata';
import type { FastGpuConfig } from '@fastgpu/config';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { startSimulatedFleet, type SimulatedNode } from '../../apps/node-simulator/src/simulated-node';
import { allServices } from '../../apps/fastgpu/src/services';

/**
 * The whole system for one test file, as `npm start` runs it: every service in one process on
 * real NATS JetStream and PostgreSQL with the file's own database and streams, simulated GPU
 * nodes, a JSON client of its HTTP API, and `close()` that stops all of it in order. The console
 * browser tests and the hostile-input suite start theirs with it.
 */
export interface Answer {
  status: number;
  body: any;
  text: string;
}

export interface WholePlatform {
  env: TestEnvironment;
  runtime: OwnedRuntime;
  started: StartedApp;
  fleet: SimulatedNode[];
  /** The platform's origin. */
  url: string;
  /** One request: the key (if any) as a bearer token, the body as JSON; the answer's body parsed when it is JSON. */
  http(method: string, route: string, key?: string, body?: unknown, headers?: Record<string, string>): Promise<Answer>;
  close(): Promise<void>;
}

export interface WholePlatformOptions {
  adminKey: string;
  /** The simulated fleet (startSimulatedFleet's spec); default two 8-GPU A100 nodes. */
  fleet?: string;
  /** Run times of the simulated nodes are multiplied by this. */
  speed?: number;
  /** How often nodes send heartbeats (and the services expect them). */
  heartbeatIntervalMs?: number;
  config?: Partial<FastGpuConfig>;
}

export async function startWholePlatform(options: WholePlatformOptions): Promise<WholePlatform> {
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 200;
  const env = await createTestEnvironment({ adminKey: options.adminKey, heartbeatIntervalMs, ...options.config });
  const runtime = await createRuntime(env.config);
  const started = await startServices(runtime, allServices, { port: 0, logger: false });
  const fleet = await startSimulatedFleet(env.bus, options.fleet ?? 'a100:8x2', { speed: options.speed ?? 1, heartbeatIntervalMs });
  const http: WholePlatform['http'] = async (method, route, key, body, headers = {}) => {
    const response = await fetch(`${started.url}${route}`, {
      method: method.toUpperCase(),
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed, text };
  };
  return {
    env,
    runtime,
    started,
    fleet,
    url: started.url,
    http,
    async close() {
      for (const node of fleet) await node.stop();
      await started.close();
      await runtime.close();
      await env.cleanup();
    },
  };
}
