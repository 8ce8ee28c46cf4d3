import { startGpuQuery, type GpuReading } from './nvidia-smi';

/** How long a killed query may take to exit before the sampler says it is stuck. */
const EXIT_WAIT_MS = 1000;

async function exitsWithin(exited: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([exited.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The newest GPU readings and how old they are. */
export interface GpuTelemetry {
  readings: GpuReading[];
  /** Milliseconds since the readings were taken. */
  ageMs: number;
  /** Older than the bound: nvidia-smi has not answered in time (or failed) since. */
  stale: boolean;
}

export interface GpuSamplerOptions {
  nvidiaSmi: string;
  /** How long one nvidia-smi query may take before it is killed. */
  timeoutMs: number;
  /** Wait between the end of one query and the start of the next (the heartbeat interval). */
  intervalMs: number;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  now?(): number;
}

/**
 * Samples the GPUs with nvidia-smi on its own timer, apart from heartbeats, which send the newest
 * sample: a slow or hung nvidia-smi (a GPU fallen off the bus can leave it stuck in the driver)
 * never delays or stops a heartbeat. Each query is killed after `timeoutMs`; while a killed one
 * has not exited no other is started, so a hung driver gathers one process, not one per interval.
 * Readings older than `timeoutMs + intervalMs` (no query answered within its bound since) are
 * stale, and heartbeats leave them out (docs/node-agent.md).
 */
export class GpuSampler {
  private latest: { readings: GpuReading[]; atMs: number };
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private wasStale = false;
  private readonly now: () => number;

  constructor(
    private readonly options: GpuSamplerOptions,
    /** The readings taken at start (discovery), the first sample. */
    initial: GpuReading[],
  ) {
    this.now = options.now ?? Date.now;
    this.latest = { readings: initial, atMs: this.now() };
  }

  /** Readings older than this are stale. */
  get staleAfterMs(): number {
    return this.options.timeoutMs + this.options.intervalMs;
  }

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The newest readings; logs once when they turn stale and once when they are fresh again. */
  current(): GpuTelemetry {
    const ageMs = Math.max(0, this.now() - this.latest.atMs);
    const stale = ageMs > this.staleAfterMs;
    if (stale !== this.wasStale) {
      this.wasStale = stale;
      if (stale) this.options.log('warn', `GPU telemetry stale: no nvidia-smi sample for ${ageMs} ms (bound ${this.staleAfterMs} ms); heartbeats carry no GPU samples until one arrives`);
      else this.options.log('info', 'GPU telemetry fresh again');
    }
    return { readings: this.latest.readings, ageMs, stale };
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.sample(), this.options.intervalMs);
  }

  private async sample(): Promise<void> {
    const query = startGpuQuery(this.options.nvidiaSmi, this.options.timeoutMs);
    try {
      const readings = await query.readings;
      this.latest = { readings, atMs: this.now() };
    } catch (error) {
      this.options.log('warn', `GPU sample failed: ${(error as Error).message}`);
    }
    // Never two at once: a query killed for its timeout may still be stuck in the driver.
    if (!(await exitsWithin(query.exited, EXIT_WAIT_MS))) {
      this.options.log('warn', `${this.options.nvidiaSmi} has not exited ${EXIT_WAIT_MS} ms after SIGKILL; no new sample until it does`);
      await query.exited;
    }
    this.schedule();
  }
}
