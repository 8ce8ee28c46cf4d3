/**
 * Proves that while PostgreSQL is down the API answers 503 with Retry-After, never 500, and
 * serves again once it is back: intake runs on a throwaway PostgreSQL (initdb into a temporary
 * directory, its own free loopback port) that is stopped with an immediate shutdown (SIGQUIT) and
 * started again. Requests that need the database, a tenant's (its API key is looked up) and an
 * admin's (a read of the jobs read model), answer 503 `unavailable` with `retry-after` while it is
 * down (the pooled connections it cut and the refused new ones alike), and 200 again after the
 * restart.
 */
import 'reflect-metadata';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { intakeService } from '../../apps/intake/src/intake.service';
import { call, tenantKey } from './harness';

const ADMIN = 'faults-admin-key-0123456789abcdef';

let pgBin: string;
let dataDir: string;
let port: number;
let postmaster: ChildProcess | undefined;
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;

/** Runs as the postgres user when this process is root (PostgreSQL refuses to run as root). */
function asDatabaseUser(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

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

async function startPostgres(): Promise<void> {
  const [command, args] = asDatabaseUser(path.join(pgBin, 'postgres'), ['-D', path.join(dataDir, 'pg'), '-p', String(port), '-k', dataDir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off']);
  postmaster = spawn(command, args, { stdio: 'ignore' });
  await eventually(() => spawnSync(path.join(pgBin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port)]).status === 0, { timeoutMs: 20_000, intervalMs: 100, message: 'the throwaway PostgreSQL did not start' });
}

/** An immediate shutdown: the postmaster and its backends quit at once, as in a crash. */
async function stopPostgres(): Promise<void> {
  const running = postmaster;
  postmaster = undefined;
  if (!running || running.exitCode !== null) return;
  const exited = new Promise((resolve) => running.once('exit', resolve));
  // Signalled by the pid it records (it may run under runuser, which need not pass signals on).
  const pid = Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
  process.kill(pid, 'SIGQUIT');
  await exited;
  await eventually(() => spawnSync(path.join(pgBin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port)]).status !== 0, { timeoutMs: 10_000, message: 'PostgreSQL did not stop' });
}

beforeAll(async () => {
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b));
  pgBin = path.join('/usr/lib/postgresql', versions[versions.length - 1]!, 'bin');
  dataDir = mkdtempSync(path.join(tmpdir(), 'fastgpu-pg-down-'));
  if (process.getuid?.() === 0) {
    const uid = Number(spawnSync('id', ['-u', 'postgres']).stdout.toString().trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres']).stdout.toString().trim());
    chownSync(dataDir, uid, gid);
  }
  const [command, args] = asDatabaseUser(path.join(pgBin, 'initdb'), ['-D', path.join(dataDir, 'pg'), '-A', 'trust', '-U', 'postgres']);
  const initdb = spawnSync(command, args, { stdio: 'ignore' });
  if (initdb.status !== 0 || !existsSync(path.join(dataDir, 'pg', 'PG_VERSION'))) throw new Error('initdb failed');
  port = await freePort();
  await startPostgres();
  env = await createTestEnvironment({ adminKey: ADMIN, databaseUrl: `postgres://postgres@127.0.0.1:${port}/postgres` });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [intakeService], { port: 0, logger: false });
});

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
  await stopPostgres().catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('PostgreSQL down', () => {
  it('answers 503 with Retry-After while it is down, never 500, and 200 once it is back', async () => {
    const key = await tenantKey(app, ADMIN, 'acme');
    expect((await call(app, 'GET', '/v1/jobs', key)).status).toBe(200);
    expect((await call(app, 'GET', '/v1/jobs?tenantId=acme', ADMIN)).status).toBe(200);

    await stopPostgres();
    // Several rounds: the first requests meet pooled connections the shutdown cut, later ones are refused.
    for (let round = 0; round < 3; round++) {
      for (const [path, credential] of [
        ['/v1/jobs', key],
        ['/v1/jobs?tenantId=acme', ADMIN],
      ] as const) {
        const answer = await call(app, 'GET', path, credential);
        expect({ path, status: answer.status, body: answer.body }).toEqual({ path, status: 503, body: { error: { code: 'unavailable', message: 'the database is unavailable; retry later' } } });
        expect(answer.headers.get('retry-after')).toBe('5');
      }
    }

    await startPostgres();
    await eventually(async () => (await call(app, 'GET', '/v1/jobs', key)).status === 200, { timeoutMs: 20_000, message: 'the API did not serve again after PostgreSQL came back' });
    expect((await call(app, 'GET', '/v1/jobs?tenantId=acme', ADMIN)).status).toBe(200);
  });
});
