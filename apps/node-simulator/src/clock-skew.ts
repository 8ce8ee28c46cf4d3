import { readFile } from 'node:fs/promises';

/** How often the skew file is read again. */
export const CLOCK_SKEW_READ_INTERVAL_MS = 200;

/**
 * Node clocks skewed on purpose, for fault runs (the nemesis): a JSON file `{ "<nodeId>": skewMs }`
 * read every 200 ms; a node it names reports with its clock `skewMs` ahead (negative: behind) of
 * the machine's, the others with the machine's. A missing or unreadable file skews nothing.
 */
export class ClockSkewFile {
  private skews = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly file: string) {}

  /** Reads the file now and then every interval. */
  async start(): Promise<void> {
    await this.read();
    const tick = () => {
      this.timer = setTimeout(() => void this.read().finally(() => this.timer && tick()), CLOCK_SKEW_READ_INTERVAL_MS);
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The clock of one node: the machine's plus its skew at the time of the call. */
  clockOf(nodeId: string): () => Date {
    return () => new Date(Date.now() + (this.skews.get(nodeId) ?? 0));
  }

  private async read(): Promise<void> {
    try {
      const parsed: unknown = JSON.parse(await readFile(this.file, 'utf8'));
      const entries = typeof parsed === 'object' && parsed !== null ? Object.entries(parsed) : [];
      this.skews = new Map(entries.filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1])));
    } catch {
      this.skews = new Map();
    }
  }
}
