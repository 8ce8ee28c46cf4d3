/* eslint-disable @typescript-eslint/no-explicit-any -- gRPC stubs are typed at run time from the protos */
import 'reflect-metadata';
import * as grpc from '@grpc/grpc-js';
import type { FastGpuConfig } from '@fastgpu/config';
import { createRuntime, startServices, type OwnedRuntime, type ServiceDefinition, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, insertTestApiKey, type TestEnvironment } from '@fastgpu/testing';
import { loadFastGpuProtos } from '../../libs/grpc/src';

/** The edge tests' own running platform: real NATS and Postgres, the services asked for, HTTP and gRPC. */
export const ADMIN = 'test-admin-key-0123456789abcdef';

export interface Edge {
  env: TestEnvironment;
  runtime: OwnedRuntime;
  started: StartedApp;
  url: string;
  http(method: string, path: string, key?: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; headers: Headers; body: any; text: string }>;
  tenantKey(tenantId: string, role?: 'tenant'): Promise<{ keyId: string; secret: string }>;
  platformKey(role: 'sre' | 'finance' | 'admin'): Promise<{ keyId: string; secret: string }>;
  /** A key written straight into the key directory, for apps that do not serve intake's admin routes. */
  directKey(keyId: string, role: 'tenant' | 'sre' | 'finance', tenantId: string | null): Promise<string>;
  intake(): grpc.Client & Record<string, any>;
  close(): Promise<void>;
}

export async function startEdge(services: ServiceDefinition[], overrides: Partial<FastGpuConfig> = {}): Promise<Edge> {
  const env = await createTestEnvironment({ adminKey: ADMIN, ...overrides });
  const runtime = await createRuntime(env.config);
  const started = await startServices(runtime, services, { port: 0, logger: false });
  const clients: grpc.Client[] = [];
  const http: Edge['http'] = async (method, path, key, body, headers = {}) => {
    const response = await fetch(`${started.url}${path}`, {
      method,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  };
  const created = new Set<string>();
  return {
    env,
    runtime,
    started,
    url: started.url,
    http,
    async tenantKey(tenantId) {
      if (!created.has(tenantId)) {
        const tenant = await http('POST', '/v1/tenants', ADMIN, { tenantId, name: tenantId });
        if (tenant.status !== 201) throw new Error(`tenant ${tenantId}: ${tenant.text}`);
        created.add(tenantId);
      }
      const key = await http('POST', `/v1/tenants/${tenantId}/api-keys`, ADMIN, { role: 'tenant' });
      if (key.status !== 201) throw new Error(`key for ${tenantId}: ${key.text}`);
      return { keyId: key.body.keyId, secret: key.body.secret };
    },
    async platformKey(role) {
      const key = await http('POST', '/v1/api-keys', ADMIN, { role });
      if (key.status !== 201) throw new Error(`${role} key: ${key.text}`);
      return { keyId: key.body.keyId, secret: key.body.secret };
    },
    async directKey(keyId, role, tenantId) {
      const secret = `fgk_edge_${keyId}_0123456789abcdef0123`;
      return insertTestApiKey(env.database.db, { keyId, tenantId, role, issuedAt: new Date(), secret });
    },
    intake() {
      const loaded = grpc.loadPackageDefinition(loadFastGpuProtos()) as any;
      const client = new loaded.fastgpu.intake.v1.IntakeService(`127.0.0.1:${started.grpcPort}`, grpc.credentials.createInsecure());
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients) client.close();
      await started.close();
      await runtime.close();
      await env.cleanup();
    },
  };
}

export function metadata(key?: string): grpc.Metadata {
  const m = new grpc.Metadata();
  if (key) m.set('authorization', `Bearer ${key}`);
  return m;
}

/** A unary call's answer, or its error. */
export function unary(client: Record<string, any>, method: string, request: object, meta: grpc.Metadata): Promise<{ ok: true; response: any } | { ok: false; error: grpc.ServiceError }> {
  return new Promise((resolve) =>
    client[method](request, meta, (error: grpc.ServiceError | null, response: unknown) => resolve(error ? { ok: false, error } : { ok: true, response })),
  );
}

/** The Prometheus sample value of `name{labels…}` in `/metrics`, or 0 when absent. */
export async function metricValue(url: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** The one error shape, asserted strictly: `{ error: { code, message, field? } }` and nothing else. */
export function isErrorShape(body: unknown): boolean {
  if (!body || typeof body !== 'object' || Object.keys(body).join() !== 'error') return false;
  const error = (body as { error: Record<string, unknown> }).error;
  if (!error || typeof error !== 'object') return false;
  const keys = Object.keys(error).sort().join();
  if (keys !== 'code,message' && keys !== 'code,field,message') return false;
  return typeof error.code === 'string' && /^[a-z_]+$/.test(error.code) && typeof error.message === 'string' && (error.field === undefined || (typeof error.field === 'string' && error.field.length > 0));
}
