import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { parseXidLine, type XidEvent } from './xid';

/**
 * Counts the NVIDIA driver's XID errors per GPU (by PCI address) since the agent started, from
 * the kernel log. The source is `/dev/kmsg` (each read returns one record; opened non-blocking,
 * and what the ring buffer already holds is read and dropped at start, so only XIDs logged after
 * the agent started count) or a regular file, followed like `tail -F` from its end at start (a
 * file that shrinks or is replaced is read again from its start). `off` disables it.
 *
 * Without a readable source the counts are unknown, never 0: `available` is false and the
 * heartbeat leaves xidErrors out. Reading happens when the agent asks (once per heartbeat).
 */
export const KMSG_DEFAULT = '/dev/kmsg';
/**
 * XIDs a user's program causes on a healthy GPU (an exception, a page fault, its process killed
 * mid-kernel): not counted, or one user's faulty or cancelled job would drain a node. The same
 * list NVIDIA's Kubernetes device plugin treats as application errors.
 */
export const APPLICATION_XIDS: ReadonlySet<number> = new Set([13, 31, 43, 45, 68, 109]);
const RECORD_BYTES_MAX = 8192;
const RECORDS_PER_POLL_MAX = 100_000;
const FILE_BYTES_PER_POLL_MAX = 4 * 1024 * 1024;

export type Logger = (level: 'info' | 'warn' | 'error', message: string) => void;

export class XidCounter {
  private handle?: FileHandle;
  private mode: 'off' | 'device' | 'file' | 'unavailable' = 'off';
  private offset = 0;
  private inode = 0;
  private partial = '';
  private polling: Promise<void> = Promise.resolve();
  private readonly counts = new Map<string, number>();
  private readonly buffer = Buffer.alloc(RECORD_BYTES_MAX);

  constructor(
    private readonly source: string,
    private readonly log: Logger,
    /** Called with every XID counted (after the application-error filter). */
    private readonly onXid: (event: XidEvent) => void = () => undefined,
  ) {}

  /** True when the counts are real (the source is open); false when off or unreadable. */
  get available(): boolean {
    return this.mode === 'device' || this.mode === 'file';
  }

  /** XIDs counted for a GPU since the agent started, by its pciKey. */
  count(pciBusId: string): number {
    return this.counts.get(pciBusId) ?? 0;
  }

  async start(): Promise<void> {
    if (this.source === 'off') {
      this.log('info', 'XID errors are not read (FASTGPU_AGENT_KMSG=off): heartbeats leave them out');
      return;
    }
    try {
      this.handle = await open(this.source, constants.O_RDONLY | constants.O_NONBLOCK);
      const info = await this.handle.stat();
      if (info.isCharacterDevice()) {
        this.mode = 'device';
        await this.readDevice(false);
      } else if (info.isFile()) {
        this.mode = 'file';
        this.offset = info.size;
        this.inode = info.ino;
      } else {
        throw new Error('neither the kernel log device nor a regular file');
      }
    } catch (error) {
      this.unavailable(error as Error);
    }
  }

  /** Reads what the source logged since the last poll and counts its XIDs (one poll at a time). */
  poll(): Promise<void> {
    this.polling = this.polling.then(() => this.readNew());
    return this.polling;
  }

  private async readNew(): Promise<void> {
    try {
      if (this.mode === 'device') await this.readDevice(true);
      else if (this.mode === 'file') await this.readFile();
    } catch (error) {
      this.unavailable(error as Error);
    }
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close().catch(() => undefined);
  }

  private unavailable(error: Error): void {
    this.mode = 'unavailable';
    void this.close();
    const hint = /EACCES|EPERM/.test(String((error as NodeJS.ErrnoException).code)) ? ' (reading /dev/kmsg needs CAP_SYSLOG or root, docs/node-agent.md)' : '';
    this.log('warn', `XID errors are not read: ${this.source}: ${error.message}${hint}; heartbeats leave them out`);
  }

  private add(line: string): void {
    const event = parseXidLine(line);
    if (!event || APPLICATION_XIDS.has(event.xid)) return;
    this.counts.set(event.pciBusId, this.count(event.pciBusId) + 1);
    this.onXid(event);
  }

  /** One record per read, until there is none (EAGAIN). At start the records are dropped (`count` false). */
  private async readDevice(count: boolean): Promise<void> {
    for (let records = 0; records < RECORDS_PER_POLL_MAX && this.handle; records++) {
      try {
        const { bytesRead } = await this.handle.read(this.buffer, 0, this.buffer.length, null);
        if (bytesRead === 0) return;
        if (count) this.add(this.buffer.toString('utf8', 0, bytesRead));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') return;
        // The ring buffer overwrote records before they were read: the next read goes on after them.
        if (code === 'EPIPE') {
          if (count) this.log('warn', 'kernel log records were overwritten before the agent read them: XIDs among them are not counted');
          continue;
        }
        throw error;
      }
    }
  }

  private async readFile(): Promise<void> {
    const info = await stat(this.source);
    if (info.ino !== this.inode || info.size < this.offset) {
      // Replaced or truncated: follow the new file from its start.
      await this.close();
      this.handle = await open(this.source, constants.O_RDONLY);
      this.inode = info.ino;
      this.offset = 0;
      this.partial = '';
    }
    if (!this.handle || info.size <= this.offset) return;
    const length = Math.min(info.size - this.offset, FILE_BYTES_PER_POLL_MAX);
    const chunk = Buffer.alloc(length);
    const { bytesRead } = await this.handle.read(chunk, 0, length, this.offset);
    this.offset += bytesRead;
    const lines = (this.partial + chunk.toString('utf8', 0, bytesRead)).split('\n');
    // The last piece has no newline yet: it is completed by the next read.
    this.partial = lines.pop()!.slice(-RECORD_BYTES_MAX);
    for (const line of lines) this.add(line);
  }
}
