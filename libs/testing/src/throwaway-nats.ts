import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eventually } from './environment';

/** How long a throwaway nats-server may take to answer on its port. */
const NATS_START_TIMEOUT_MS = 10_000;

/**
 * A nats-server of one test file on a free loopback port, with its own JetStream store folder,
 * that the test kills (SIGKILL) and starts again on the same port and store: a NATS outage, or
 * a server without JetStream. `dispose()` kills it and removes the folder.
 */
export class ThrowawayNatsServer {
  private process: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly storeDir: string,
  ) {}

  static async create(label: string): Promise<ThrowawayNatsServer> {
    return new ThrowawayNatsServer(await freeLoopbackPort(), mkdtempSync(path.join(tmpdir(), `fastgpu-${label}-`)));
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.process !== undefined;
  }

  /** Starts it (with JetStream unless told otherwise) and waits until it answers on its port. */
  async start(options: { jetStream?: boolean } = {}): Promise<void> {
    const jetStream = options.jetStream ?? true;
    this.process = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(this.port), ...(jetStream ? ['-js', '-sd', this.storeDir] : [])], { stdio: 'ignore' });
    await eventually(() => answers(this.port), { timeoutMs: NATS_START_TIMEOUT_MS, intervalMs: 50, message: 'the throwaway nats-server did not start' });
  }

  /** Kills it at once (SIGKILL) and waits for it to exit. */
  async kill(): Promise<void> {
    const running = this.process;
    this.process = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
