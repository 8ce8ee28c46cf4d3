import { open, type FileHandle } from 'node:fs/promises';
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { LogHeader, LogKind } from '@fastgpu/contracts';
import { takeChunks } from './log-chunks';

/**
 * Ships one run's stdout and stderr (files the program writes through inherited descriptors,
 * so output survives an agent restart) to its LOGS subject while it runs: polls the files,
 * cuts whole lines into messages (log-chunks.ts), publishes them one at a time (each awaited,
 * so the stream holds them in order), with a message id of (command, stream, offset) so a
 * publish retried after a lost acknowledgement is stored once. Each message records how much
 * of each file has been shipped: a restarted agent resumes exactly there, from the stream.
 * An attempt's output is capped: past `attemptBytesMax` one `truncated` marker is sent, and
 * `end` when the run is over.
 */
export interface LogShipperLimits {
  /** Largest message body (the stream's max_msg_size less room for headers). */
  chunkBytesMax: number;
  /** Output shipped per attempt, both streams together. */
  attemptBytesMax: number;
  pollMs: number;
  /** A last line without its newline is shipped after waiting this long. */
  partialFlushMs: number;
}

/** Bytes read from one file per poll: bounds memory and a poll's publishing work. */
const READ_BYTES_PER_POLL_MAX = 1024 * 1024;
type StreamName = typeof LogKind.stdout | typeof LogKind.stderr;

interface Source {
  name: StreamName;
  file: string;
  handle?: FileHandle;
  shipped: number;
  partialSinceMs?: number;
}

export class LogShipper {
  private readonly sources: Source[];
  private truncated = false;
  private ended = false;
  private timer?: NodeJS.Timeout;
  private pumping: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly js: JetStreamClient,
    private readonly subject: string,
    /** Unique per attempt: the RunSubtask command id. */
    private readonly messageIdPrefix: string,
    files: { stdout: string; stderr: string },
    private readonly limits: LogShipperLimits,
    private readonly onError: (error: Error) => void,
  ) {
    this.sources = [
      { name: LogKind.stdout, file: files.stdout, shipped: 0 },
      { name: LogKind.stderr, file: files.stderr, shipped: 0 },
    ];
  }

  get shippedBytes(): { stdout: number; stderr: number } {
    return { stdout: this.sources[0]!.shipped, stderr: this.sources[1]!.shipped };
  }

  /** Continues from what the stream already holds for this attempt (after an agent restart). */
  async resume(jsm: JetStreamManager, logsStream: string): Promise<void> {
    let last;
    try {
      last = await jsm.streams.getMessage(logsStream, { last_by_subj: this.subject });
    } catch (error) {
      if (/no message found|not found/i.test((error as Error).message)) return;
      throw error;
    }
    if (!last) return;
    this.sources[0]!.shipped = Number(last.header.get(LogHeader.stdoutBytes) || 0);
    this.sources[1]!.shipped = Number(last.header.get(LogHeader.stderrBytes) || 0);
    const kind = last.header.get(LogHeader.kind);
    if (kind === LogKind.truncated) this.truncated = true;
    if (kind === LogKind.end) this.ended = true;
  }

  start(): void {
    const tick = () => {
      this.pumping = this.pumping.then(() => this.pump(false)).catch((error: Error) => this.onError(error));
      void this.pumping.finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.limits.pollMs);
      });
    };
    this.timer = setTimeout(tick, this.limits.pollMs);
  }

  /** The run is over: ships what is left (partial lines too) and the end marker. */
  async finish(): Promise<void> {
    this.halt();
    await this.pumping.catch(() => undefined);
    if (!this.ended) {
      await this.pump(true);
      await this.publish(LogKind.end, new Uint8Array(0), 0);
      this.ended = true;
    }
    await this.closeFiles();
  }

  /** Stops polling without an end marker (the agent is shutting down; the run goes on). */
  async close(): Promise<void> {
    this.halt();
    await this.pumping.catch(() => undefined);
    await this.closeFiles();
  }

  private halt(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async closeFiles(): Promise<void> {
    for (const source of this.sources) {
      await source.handle?.close().catch(() => undefined);
      source.handle = undefined;
    }
  }

  private async pump(final: boolean): Promise<void> {
    if (this.ended) return;
    const nowMs = Date.now();
    for (const source of this.sources) {
      // Bounded: one read per file per poll, a final drain reads until the file is shipped.
      for (let reads = 0; !this.truncated; reads++) {
        if (!source.handle) {
          try {
            source.handle = await open(source.file, 'r');
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === 'ENOENT') break;
            throw error;
          }
        }
        const size = (await source.handle.stat()).size;
        if (size <= source.shipped) break;
        const length = Math.min(size - source.shipped, READ_BYTES_PER_POLL_MAX);
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await source.handle.read(buffer, 0, length, source.shipped);
        const bytes = buffer.subarray(0, bytesRead);
        const waited = source.partialSinceMs !== undefined && nowMs - source.partialSinceMs >= this.limits.partialFlushMs;
        const { chunks, consumed } = takeChunks(bytes, this.limits.chunkBytesMax, final || waited);
        for (const chunk of chunks) {
          const budget = this.limits.attemptBytesMax - (this.sources[0]!.shipped + this.sources[1]!.shipped);
          if (chunk.end - chunk.start > budget) {
            await this.publish(LogKind.truncated, new TextEncoder().encode(`output past ${this.limits.attemptBytesMax} bytes was not kept\n`), 0);
            this.truncated = true;
            break;
          }
          const offset = source.shipped;
          // The headers carry the totals including this chunk; a failed publish takes it back.
          source.shipped += chunk.end - chunk.start;
          try {
            await this.publish(source.name, bytes.subarray(chunk.start, chunk.end), offset);
          } catch (error) {
            source.shipped = offset;
            throw error;
          }
        }
        if (this.truncated) break;
        // A partial last line starts waiting when first seen; shipping it (or a newline) resets the wait.
        source.partialSinceMs = consumed < bytes.length ? (source.partialSinceMs ?? nowMs) : undefined;
        if (!final || consumed === 0 || bytesRead < length || reads >= Math.ceil(size / READ_BYTES_PER_POLL_MAX)) break;
      }
    }
  }

  private async publish(kind: LogKind, body: Uint8Array, offset: number): Promise<void> {
    const headers = natsHeaders();
    headers.set(LogHeader.kind, kind);
    headers.set(LogHeader.offset, String(offset));
    headers.set(LogHeader.stdoutBytes, String(this.sources[0]!.shipped));
    headers.set(LogHeader.stderrBytes, String(this.sources[1]!.shipped));
    await this.js.publish(this.subject, body, { msgID: `${this.messageIdPrefix}:${kind}:${offset}`, headers });
  }
}
