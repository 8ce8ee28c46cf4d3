import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';

async function natsAnswers(url: string): Promise<boolean> {
  try {
    const nc = await connect({ servers: url, reconnect: false, timeout: 1000 });
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * The embedded default: use NATS at `natsUrl` when it answers; otherwise start `nats-server`
 * from PATH with JetStream in a local folder. Says how to install it when there is none. NATS on
 * another host is not started here: the start retry waits until it answers (startWithRetry).
 */
export async function ensureNats(natsUrl: string, dataDir: string): Promise<{ started?: ChildProcess; stop(): void }> {
  const url = new URL(natsUrl);
  if (!['127.0.0.1', 'localhost'].includes(url.hostname) || (await natsAnswers(natsUrl))) return { stop: () => undefined };
  const found = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  if (found.error) {
    throw new Error(
      `No NATS server answers at ${natsUrl} and nats-server is not on PATH.\n` +
        `Install it (Debian/Ubuntu: sudo apt-get install -y nats-server; macOS: brew install nats-server)\n` +
        `or point NATS_URL at a running NATS server with JetStream enabled.`,
    );
  }
  const storeDir = path.resolve(dataDir, 'nats');
  mkdirSync(storeDir, { recursive: true });
  const child = spawn('nats-server', ['-a', url.hostname, '-p', url.port || '4222', '-js', '-sd', storeDir], { stdio: 'ignore', detached: false });
  const deadline = Date.now() + 10_000;
  while (!(await natsAnswers(natsUrl))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`nats-server did not start at ${natsUrl}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { started: child, stop: () => child.kill('SIGTERM') };
}
