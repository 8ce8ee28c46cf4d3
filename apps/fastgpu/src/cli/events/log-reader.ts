import { DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import type { Bus } from '@fastgpu/messaging';

/** Messages buffered by the reader at once. */
const READ_BUFFER_MESSAGES_MAX = 1000;
/** A read ends when nothing arrives for this long (no more matching messages up to the end). */
const READ_IDLE_MS = 1500;

export interface ReadOptions {
  stream: string;
  fromSequence?: number;
  /** Last sequence to read (inclusive); defaults to the stream's last sequence when the read starts. */
  toSequence?: number;
  filterSubject?: string;
  /** Keep reading new messages as they arrive (until `signal` aborts). */
  follow?: boolean;
  signal?: AbortSignal;
  /** Return false to stop early. */
  onMessage(message: JsMsg): boolean | void | Promise<boolean | void>;
}

/** Stream bounds, or a clear error when the stream does not exist. */
export async function streamBounds(bus: Bus, stream: string): Promise<{ first: number; last: number; messages: number }> {
  try {
    const info = await bus.jsm.streams.info(stream);
    return { first: info.state.first_seq, last: info.state.last_seq, messages: info.state.messages };
  } catch (error) {
    if (/stream not found/i.test((error as Error).message)) throw new CliError(`stream ${stream} does not exist (is FASTGPU_PREFIX right?)`);
    throw error;
  }
}

/**
 * Reads a stream in order with an ordered consumer (no server state left behind), from a
 * sequence to the end as it was when the read began, or on and on with `follow`.
 */
export async function readLog(bus: Bus, options: ReadOptions): Promise<number> {
  const bounds = await streamBounds(bus, options.stream);
  const from = Math.max(options.fromSequence ?? 1, bounds.first, 1);
  const to = options.follow ? Number.POSITIVE_INFINITY : Math.min(options.toSequence ?? bounds.last, bounds.last);
  if (!options.follow && (bounds.messages === 0 || from > to)) return 0;
  const consumer = await bus.js.consumers.get(options.stream, {
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: from,
    ...(options.filterSubject ? { filter_subjects: options.filterSubject } : {}),
  });
  const messages = await consumer.consume({ max_messages: READ_BUFFER_MESSAGES_MAX });
  let watchdog: NodeJS.Timeout | undefined;
  const arm = () => {
    if (options.follow) return;
    clearTimeout(watchdog);
    watchdog = setTimeout(() => void messages.close(), READ_IDLE_MS);
  };
  const abort = () => void messages.close();
  options.signal?.addEventListener('abort', abort, { once: true });
  let count = 0;
  arm();
  try {
    for await (const m of messages) {
      if (m.seq > to) break;
      count++;
      if ((await options.onMessage(m)) === false) break;
      if (m.seq >= to || (!options.follow && m.info.pending === 0)) break;
      arm();
    }
  } finally {
    clearTimeout(watchdog);
    options.signal?.removeEventListener('abort', abort);
    await messages.close().catch(() => undefined);
  }
  return count;
}

/** An error the CLI reports as one clear line with a non-zero exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
