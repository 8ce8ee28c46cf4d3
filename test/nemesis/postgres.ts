import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';

/**
 * A throwaway PostgreSQL cluster of the nemesis's own (initdb into a temporary folder, its own
 * port), so that "PostgreSQL immediate stop" stops nothing but it. Never the machine's shared
 * server. Run as the `postgres` system user when this process is root (initdb refuses root).
 */
export interface ThrowawayPostgres {
  port: number;
  url(database?: string): string;
  /** `pg_ctl stop -m immediate`: no shutdown checkpoint, like a crash. */
  stopImmediate(): void;
  start(): void;
  readonly running: boolean;
  destroy(): void;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql (Debian: apt-get install postgresql)');
  const versions = readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a));
  if (!versions.length) throw new Error('no pg_ctl under /usr/lib/postgresql/*/bin');
  return path.join(root, versions[0]!, 'bin');
}

export function startThrowawayPostgres(port: number): ThrowawayPostgres {
  const bin = binDir();
  const dir = mkdtempSync(path.join(tmpdir(), 'fastgpu-nemesis-pg-'));
  const data = path.join(dir, 'data');
  const asRoot = userInfo().uid === 0;
  let owner: { uid: number; gid: number } | undefined;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    owner = { uid, gid };
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  const run = (command: string, args: string[], check = true) => {
    const full = path.join(bin, command);
    const result = asRoot ? spawnSync('runuser', ['-u', 'postgres', '--', full, ...args], { encoding: 'utf8' }) : spawnSync(full, args, { encoding: 'utf8' });
    if (check && result.status !== 0) throw new Error(`${command} failed: ${result.stderr || result.stdout}`);
    return result;
  };
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c full_page_writes=off`;
  let running = false;
  const start = () => {
    run('pg_ctl', ['-D', data, '-o', options, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start']);
    running = true;
  };
  start();
  void owner;
  return {
    port,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    stopImmediate: () => {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'], false);
      running = false;
    },
    start,
    get running() {
      return running;
    },
    destroy: () => {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'], false);
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
