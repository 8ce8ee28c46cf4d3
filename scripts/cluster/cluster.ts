import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';

/**
 * A JetStream cluster of nats-server processes on loopback, for tests, the nemesis and a
 * developer's machine (docs/cluster.md). Each server has its own free client and route ports, its
 * own store under one folder, and a config file written there; `sync_interval: always` is set when
 * the server supports it (nats-server 2.10 and later; 2.9 has no such setting and syncs on its own
 * interval, so an acknowledged write can be lost on power failure there).
 */

export interface ClusterServer {
  /** server_name, as JetStream names stream leaders and peers (`n1`, `n2`, …). */
  name: string;
  clientPort: number;
  routePort: number;
  url: string;
  configFile: string;
  process?: ChildProcess;
  /** Whether the process is running (started and not exited). */
  readonly running: boolean;
}

export interface Cluster {
  servers: ClusterServer[];
  /** Every server's client URL, comma-separated: what NATS_URL takes. */
  natsUrl: string;
  dir: string;
  /** Sends a signal to one server's process (SIGKILL, SIGSTOP, SIGCONT, SIGTERM). */
  signal(name: string, signal: NodeJS.Signals): void;
  /** Kills one server with SIGKILL and waits until its process is gone. */
  kill(name: string): Promise<void>;
  /** Starts a stopped server again on the same ports and store, and waits until it answers. */
  restart(name: string): Promise<void>;
  /** The server_name of a stream's current leader, asked of any server that answers (undefined while none). */
  streamLeader(stream: string): Promise<string | undefined>;
  /** Stops every server (SIGTERM, then SIGKILL) and removes the folder unless `keep`. */
  stop(options?: { keep?: boolean }): Promise<void>;
}

export interface ClusterOptions {
  size?: number;
  /** Folder for configs and stores; a fresh temporary one when absent (removed by stop()). */
  dir?: string;
  clusterName?: string;
  /** Extra lines for every server's config (e.g. an authorization block). */
  extraConfig?: string;
  /** Where servers write their logs: inherit shows them, ignore drops them (default). */
  stdio?: 'inherit' | 'ignore';
}

/** The installed nats-server's version as [major, minor, patch]. */
export function natsServerVersion(): [number, number, number] {
  const out = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  if (out.error) throw new Error('nats-server is not on PATH (Debian/Ubuntu: apt-get install -y nats-server; macOS: brew install nats-server)');
  const match = /v?(\d+)\.(\d+)\.(\d+)/.exec(out.stdout);
  if (!match) throw new Error(`cannot read the version of nats-server: ${out.stdout}`);
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

/** Whether this nats-server takes `jetstream { sync_interval: always }` (2.10 and later). */
export function supportsSyncAlways(version = natsServerVersion()): boolean {
  return version[0] > 2 || (version[0] === 2 && version[1] >= 10);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The config file of one server of the cluster. */
export function serverConfig(options: { name: string; clientPort: number; routePort: number; routePorts: number[]; storeDir: string; clusterName: string; syncAlways: boolean; extra?: string }): string {
  const routes = options.routePorts.map((port) => `    nats-route://127.0.0.1:${port}`).join('\n');
  return [
    `server_name: ${options.name}`,
    `listen: 127.0.0.1:${options.clientPort}`,
    'jetstream {',
    `  store_dir: ${JSON.stringify(options.storeDir)}`,
    '  max_memory_store: 64MB',
    '  max_file_store: 2GB',
    // Every acknowledged write on disk before the acknowledgement (2.10+), not on a 2-minute timer.
    ...(options.syncAlways ? ['  sync_interval: always'] : []),
    '}',
    'cluster {',
    `  name: ${options.clusterName}`,
    `  listen: 127.0.0.1:${options.routePort}`,
    '  routes: [',
    routes,
    '  ]',
    '}',
    ...(options.extra ? [options.extra] : []),
    '',
  ].join('\n');
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts `size` servers (3 by default), waits until JetStream has a meta leader, returns the cluster. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const size = options.size ?? 3;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'fastgpu-cluster-'));
  mkdirSync(dir, { recursive: true });
  const syncAlways = supportsSyncAlways();
  const clusterName = options.clusterName ?? 'fastgpu';
  const ports: Array<{ clientPort: number; routePort: number }> = [];
  const taken = new Set<number>();
  while (ports.length < size) {
    const clientPort = await freePort();
    const routePort = await freePort();
    if (taken.has(clientPort) || taken.has(routePort) || clientPort === routePort) continue;
    taken.add(clientPort).add(routePort);
    ports.push({ clientPort, routePort });
  }
  const servers: ClusterServer[] = ports.map(({ clientPort, routePort }, i) => {
    const name = `n${i + 1}`;
    const storeDir = path.join(dir, name);
    mkdirSync(storeDir, { recursive: true });
    const configFile = path.join(dir, `${name}.conf`);
    const routePorts = ports.filter((_, j) => j !== i).map((p) => p.routePort);
    writeFileSync(configFile, serverConfig({ name, clientPort, routePort, routePorts, storeDir, clusterName, syncAlways, extra: options.extraConfig }));
    const server: ClusterServer = {
      name,
      clientPort,
      routePort,
      url: `nats://127.0.0.1:${clientPort}`,
      configFile,
      get running() {
        return this.process !== undefined && this.process.exitCode === null && this.process.signalCode === null;
      },
    };
    return server;
  });
  const byName = (name: string): ClusterServer => {
    const server = servers.find((s) => s.name === name);
    if (!server) throw new Error(`no server ${name}`);
    return server;
  };
  const launch = (server: ClusterServer): void => {
    server.process = spawn('nats-server', ['-c', server.configFile], { stdio: options.stdio ?? 'ignore' });
  };
  const exited = (server: ClusterServer): Promise<void> =>
    new Promise((resolve) => {
      const child = server.process;
      if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
    });

  for (const server of servers) launch(server);
  for (const server of servers) await waitFor(() => portAnswers(server.clientPort), 15_000, `nats-server ${server.name} did not answer on ${server.clientPort}`);
  const natsUrl = servers.map((s) => s.url).join(',');

  const withConnection = async <T>(use: (nc: NatsConnection) => Promise<T>): Promise<T> => {
    const live = servers.filter((s) => s.running).map((s) => s.url);
    const nc = await connect({ servers: live, reconnect: false, timeout: 2000 });
    try {
      return await use(nc);
    } finally {
      await nc.close().catch(() => undefined);
    }
  };

  const cluster: Cluster = {
    servers,
    natsUrl,
    dir,
    signal: (name, signal) => {
      byName(name).process?.kill(signal);
    },
    kill: async (name) => {
      const server = byName(name);
      server.process?.kill('SIGKILL');
      await exited(server);
    },
    restart: async (name) => {
      const server = byName(name);
      if (server.running) throw new Error(`${name} is running`);
      launch(server);
      await waitFor(() => portAnswers(server.clientPort), 15_000, `nats-server ${name} did not answer again`);
    },
    streamLeader: async (stream) => {
      try {
        return await withConnection(async (nc) => {
          const jsm = await jetstreamManager(nc, { timeout: 2000 });
          const info = await jsm.streams.info(stream);
          return info.cluster?.leader || undefined;
        });
      } catch {
        return undefined;
      }
    },
    stop: async (stopOptions = {}) => {
      for (const server of servers) {
        if (!server.running) continue;
        server.process!.kill('SIGCONT');
        server.process!.kill('SIGTERM');
      }
      await Promise.race([Promise.all(servers.map(exited)), new Promise((resolve) => setTimeout(resolve, 5000))]);
      for (const server of servers) if (server.running) server.process!.kill('SIGKILL');
      await Promise.all(servers.map(exited));
      if (ownDir && !stopOptions.keep) rmSync(dir, { recursive: true, force: true });
    },
  };

  // JetStream is usable once the servers have elected a meta leader: account info answers.
  await waitFor(
    async () => {
      try {
        return await withConnection(async (nc) => {
          const jsm = await jetstreamManager(nc, { timeout: 2000 });
          await jsm.getAccountInfo();
          return true;
        });
      } catch {
        return false;
      }
    },
    30_000,
    'the JetStream cluster elected no meta leader',
  );
  return cluster;
}
