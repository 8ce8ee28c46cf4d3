/**
 * Proves the docker compose deployment is well-formed (docker cannot run on this machine, so
 * the files are parsed and checked): each service runs in its own container from the one
 * Dockerfile with `npx tsx apps/<svc>/src/main.ts` (a file that exists), NATS is a current
 * release with JetStream and `sync_interval: always`, PostgreSQL, an OpenTelemetry collector
 * exporting to Jaeger, and no password or key is shipped: every secret is a required
 * variable from .env, whose example holds no values.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  profiles?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };
const services = compose.services;
const APPS = ['intake', 'scheduler', 'metering', 'billing', 'reliability'];

describe('docker-compose.yml', () => {
  it('runs each service in its own container from the one Dockerfile', () => {
    for (const app of APPS) {
      const service = services[app]!;
      expect(service.build, app).toEqual({ context: '.', dockerfile: 'deploy/Dockerfile' });
      expect(service.command, app).toEqual(['npx', 'tsx', `apps/${app}/src/main.ts`]);
      expect(existsSync(path.join(root, `apps/${app}/src/main.ts`)), app).toBe(true);
      expect(service.environment?.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://otel-collector:4318');
      expect(service.environment?.HOST).toBe('0.0.0.0');
      expect(service.depends_on).toMatchObject({ migrate: { condition: 'service_completed_successfully' } });
    }
    expect(existsSync(path.join(root, services['node-simulator']!.command![2]!))).toBe(true);
    const dockerfile = read('deploy/Dockerfile');
    expect(dockerfile).toMatch(/^FROM node:20/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
  });

  it('runs a current NATS with JetStream and sync_interval: always', () => {
    const nats = services.nats!;
    const [, major, minor] = /^nats:(\d+)\.(\d+)/.exec(nats.image ?? '') ?? [];
    expect(Number(major) * 100 + Number(minor)).toBeGreaterThanOrEqual(212);
    expect(nats.command).toEqual(['-c', '/etc/nats/nats.conf']);
    expect(nats.volumes).toContain('./deploy/nats/nats.conf:/etc/nats/nats.conf:ro');
    const conf = read('deploy/nats/nats.conf');
    const jetstream = /jetstream\s*\{([^}]*)\}/m.exec(conf)?.[1] ?? '';
    expect(jetstream).toMatch(/^\s*sync_interval:\s*always\s*$/m);
    expect(jetstream).toMatch(/store_dir:/);
  });

  it('has PostgreSQL, an OpenTelemetry collector exporting to Jaeger, and Jaeger', () => {
    expect(services.postgres!.image).toMatch(/^postgres:\d+/);
    expect(services['otel-collector']!.image).toMatch(/opentelemetry-collector/);
    expect(services.jaeger!.image).toMatch(/^jaegertracing\//);
    const collector = parse(read('deploy/otel/collector.yaml')) as { receivers: { otlp: { protocols: { http: { endpoint: string } } } }; exporters: Record<string, { endpoint: string }>; service: { pipelines: { traces: { receivers: string[]; exporters: string[] } } } };
    expect(collector.receivers.otlp.protocols.http.endpoint).toMatch(/:4318$/);
    const exporters = collector.service.pipelines.traces.exporters;
    expect(exporters.map((e) => collector.exporters[e]!.endpoint)).toContain('jaeger:4317');
  });

  it('ships no password or key: secrets are required variables and the example is empty', () => {
    const secretish = /(PASSWORD|SECRET|ADMIN_KEY|TOKEN)/;
    const urlWithPassword = /:\/\/[^:/]+:([^@]+)@/;
    let checked = 0;
    for (const [name, service] of Object.entries(services)) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        const text = String(value);
        if (secretish.test(key)) {
          expect(text, `${name}.${key}`).toMatch(/^\$\{[A-Z_]+:\?[^}]+\}$/);
          checked++;
        }
        const inUrl = urlWithPassword.exec(text)?.[1];
        if (inUrl) {
          expect(inUrl, `${name}.${key}`).toMatch(/^\$\{[A-Z_]+:\?[^}]+\}$/);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(10);
    for (const line of read('deploy/env.example').split('\n')) {
      if (line.startsWith('#') || !line.includes('=')) continue;
      expect(line, 'deploy/env.example must hold placeholders only').toMatch(/^[A-Z_]+=$/);
    }
    const nats = read('deploy/nats/nats.conf');
    for (const password of nats.matchAll(/password:\s*(\S+)/g)) expect(password[1]).toMatch(/^\$[A-Z_]+$/);
  });
});
