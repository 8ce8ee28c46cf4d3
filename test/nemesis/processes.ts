import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../../scripts/cluster/cluster';
import { compile } from '../../scripts/compile.mjs';

/** The services the nemesis runs as real processes, each compiled once ahead of time (scripts/compile.mjs). */
export const SERVICES = ['intake', 'scheduler', 'metering', 'billing', 'reliability'] as const;
export type ServiceKind = (typeof SERVICES)[number] | 'node-simulator';

export interface ServiceProcess {
  /** `intake-1`, `metering-2`, `node-simulator-1`. */
  name: string;
  kind: ServiceKind;
  port: number;
  grpcPort: number;
  url: string;
  child?: ChildProcess;
  stopped: boolean;
  readonly running: boolean;
  /** The last lines it wrote to stderr (for a failure report). */
  tail(): string;
}

export async function compileServices(): Promise<Record<ServiceKind, string>> {
  const out = {} as Record<ServiceKind, string>;
  for (const kind of [...SERVICES, 'node-simulator'] as ServiceKind[]) out[kind] = await compile(`apps/${kind}/src/main.ts`);
  return out;
}

const START_TIMEOUT_MS = 180_000;

/** Starts of a process on new ports after its port was taken (EADDRINUSE). */
const PORT_ATTEMPTS_MAX = 5;

export function serviceProcess(options: { name: string; kind: ServiceKind; bundle: string; port: number; grpcPort: number; env: Record<string, string> }): ServiceProcess & { start(): Promise<void> } {
  let output = '';
  const proc: ServiceProcess & { start(): Promise<void> } = {
    name: options.name,
    kind: options.kind,
    port: options.port,
    grpcPort: options.grpcPort,
    url: `http://127.0.0.1:${options.port}`,
    stopped: false,
    get running() {
      return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
    },
    tail: () => output,
    start: async () => {
      // A free port found by probing can be taken by another program before the service binds it:
      // then the service is started again on new ports (a few times).
      for (let attempt = 1; ; attempt++) {
        try {
          return await startOnce();
        } catch (error) {
          if (attempt >= PORT_ATTEMPTS_MAX || !/EADDRINUSE/.test((error as Error).message)) throw error;
          proc.port = await freePort();
          proc.grpcPort = await freePort();
          proc.url = `http://127.0.0.1:${proc.port}`;
        }
      }
    },
  };
  const startOnce = async () => {
    const child = spawn(process.execPath, [options.bundle], {
      env: { ...process.env, ...options.env, PORT: String(proc.port), FASTGPU_GRPC_PORT: String(proc.grpcPort), FASTGPU_INSTANCE_ID: options.name },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.child = child;
    proc.stopped = false;
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-3000));
    child.stderr.on('data', keep);
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      // Generous: eleven processes start at once, on a machine that may be loaded.
      const timer = setTimeout(() => reject(new Error(`${options.name} did not start within 180 s: ${output}`)), START_TIMEOUT_MS);
      child.stdout.on('data', (chunk: Buffer) => {
        keep(chunk);
        seen += chunk.toString();
        if (/listening on|simulating \d+ nodes/.test(seen)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${options.name} exited (${code ?? signal}) while starting: ${output}`));
      });
    });
  };
  return proc;
}

export async function killProcess(proc: ServiceProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const child = proc.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGCONT');
  child.kill(signal);
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
}
