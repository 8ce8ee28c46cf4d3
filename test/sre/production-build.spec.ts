/**
 * Proves the production build (`npm run build`, scripts/build.mjs): every service, the
 * all-in-one apps/fastgpu, the node agent, the simulator and every `*.cli.ts` compile to one
 * JavaScript file each under dist/, the `start:prod` scripts run those files with plain `node`
 * (no tsx, Node options only), and a service started from dist with plain node — Nest's decorators compiled by
 * esbuild, without emitted metadata — answers /healthz, rejects a bad request with the 4xx
 * shape, authenticates with the admin key and stops on SIGTERM. The compiled migration CLI
 * runs against a real database, and the bundles import only production dependencies.
 */
import { spawn, execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { buildAll, entryPoints, type EntryPoint } from '../../scripts/build.mjs';

const root = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const SERVICES = ['intake', 'scheduler', 'metering', 'billing', 'reliability'];
const ADMIN_KEY = `fgk_${'b'.repeat(32)}`;

let environment: TestEnvironment;
let built: EntryPoint[];

beforeAll(async () => {
  environment = await createTestEnvironment();
  built = await buildAll();
});
afterAll(async () => {
  await environment?.cleanup();
});

/** The environment a deployment gives a service: the test's own database and subject prefix. */
function serviceEnvironment(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    NATS_URL: environment.config.natsUrl,
    DATABASE_URL: environment.config.databaseUrl,
    FASTGPU_PREFIX: environment.config.subjectPrefix,
    FASTGPU_ADMIN_KEY: ADMIN_KEY,
    HOST: '127.0.0.1',
    PORT: '0',
    FASTGPU_GRPC_PORT: '0',
    LOG_LEVEL: 'warn',
  };
}

describe('production build', () => {
  it('compiles every service, the all-in-one process and every CLI into dist/', async () => {
    const apps = readdirSync(path.join(root, 'apps')).filter((app) => existsSync(path.join(root, 'apps', app, 'src/main.ts')));
    const outputs = built.map((entry) => entry.output);
    for (const app of apps) expect(outputs, app).toContain(`dist/apps/${app}/main.mjs`);
    for (const entry of await entryPoints()) {
      expect(existsSync(path.join(root, entry.output)), entry.output).toBe(true);
      // three folders below the root, as the sources are: libs/grpc finds ../../../proto from there
      expect(entry.output.split('/')).toHaveLength(4);
    }
    expect(outputs).toEqual(expect.arrayContaining(['dist/apps/fastgpu/replay.cli.mjs', 'dist/apps/billing/invoices.cli.mjs', 'dist/libs/db/migrate.cli.mjs']));
    expect(existsSync(path.join(root, 'dist/apps/node-agent/runs/supervisor.mjs'))).toBe(true);
    expect(existsSync(path.join(root, 'dist/apps/fastgpu/stream-reader.worker.mjs'))).toBe(true);
  });

  it('imports at run time only production dependencies (what npm ci --omit=dev installs in the image)', () => {
    const dependencies = new Set(Object.keys((JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies));
    const files = (folder: string): string[] => readdirSync(folder, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(folder, e.name)) : [path.join(folder, e.name)]));
    const bundles = files(path.join(root, 'dist')).filter((file) => file.endsWith('.mjs'));
    expect(bundles.length).toBeGreaterThan(10);
    for (const bundle of bundles) {
      const text = readFileSync(bundle, 'utf8');
      const specifiers = [...text.matchAll(/^import\s[^;]*?from\s*"([^"]+)"|^import\s*"([^"]+)"|import\(\s*"([^"]+)"\s*\)/gm)].map((m) => m[1] ?? m[2] ?? m[3]!);
      for (const specifier of specifiers.filter((s) => !s.startsWith('node:') && !s.startsWith('.'))) {
        const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
        expect(dependencies.has(name), `${path.relative(root, bundle)} imports ${specifier}`).toBe(true);
      }
    }
  });

  it('start:prod scripts run the compiled files with plain node', () => {
    const scripts = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.build).toBe('node scripts/build.mjs');
    // a young generation of 2 MB semi-spaces keeps an idle service's heap small (bench/service-rss)
    expect(scripts['start:prod']).toBe('node --max-semi-space-size=2 dist/apps/fastgpu/main.mjs');
    for (const service of SERVICES) expect(scripts[`start:prod:${service}`]).toBe(`node --max-semi-space-size=2 dist/apps/${service}/main.mjs`);
    for (const [name, script] of Object.entries(scripts).filter(([name]) => name.startsWith('start:prod'))) {
      expect(script, name).not.toMatch(/tsx/);
      expect(existsSync(path.join(root, script.split(' ').find((word) => word.startsWith('dist/'))!)), name).toBe(true);
    }
  });

  it('runs the compiled migration CLI against a real database', async () => {
    const { stdout } = await run(process.execPath, ['dist/libs/db/migrate.cli.mjs'], { cwd: root, env: serviceEnvironment(), timeout: 60_000 });
    expect(stdout).toContain('database is up to date');
  });

  it('starts a service from dist with plain node, which answers /healthz and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, ['dist/apps/intake/main.mjs'], { cwd: root, env: serviceEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = await eventually(() => /listening on (http:\/\/\S+)/.exec(output)?.[1], { timeoutMs: 45_000, message: `intake did not start: ${output}` });
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'up' });
      const unauthenticated = await fetch(`${url}/v1/jobs`);
      expect(unauthenticated.status).toBe(401);
      const invalid = await fetch(`${url}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json', 'idempotency-key': 'build-1' }, body: '{}' });
      expect(invalid.status).toBeGreaterThanOrEqual(400);
      expect(invalid.status).toBeLessThan(500);
      expect(((await invalid.json()) as { error: { code: string } }).error.code).toEqual(expect.any(String));
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
