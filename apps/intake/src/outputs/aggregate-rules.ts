/**
 * How a job's sub-task results become its aggregate (the workload's `aggregate` rule), as
 * streaming transforms over each result's bytes, in sub-task order. Pure: bytes in, bytes out.
 *
 * - `concat`: the results' bytes one after another, unchanged.
 * - `jsonl`: every result is JSON Lines; the aggregate is their lines in order, each ending with
 *   "\n" (a result without a final newline gets one; "\r\n" becomes "\n"; empty lines are
 *   dropped). A line that is not JSON fails the aggregation, naming the sub-task and line.
 */
export type AggregateRuleName = 'concat' | 'jsonl';

/** One JSON line may be at most this long (it is held in memory to be checked). */
export const JSONL_LINE_BYTES_MAX = 16 * 1024 * 1024;

export class AggregationError extends Error {}

export interface ResultTransform {
  /** Output for the next chunk of this result. */
  push(chunk: Uint8Array): Uint8Array[];
  /** Output once this result's bytes are all read. */
  end(): Uint8Array[];
}

const NEWLINE = 0x0a;
const decoder = new TextDecoder('utf-8', { fatal: true });

class JsonLines implements ResultTransform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private line = 0;

  constructor(private readonly subtaskIndex: number) {}

  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let start = 0;
    for (let at = chunk.indexOf(NEWLINE); at >= 0; at = chunk.indexOf(NEWLINE, start)) {
      this.hold(chunk.subarray(start, at));
      const line = this.takeLine();
      if (line) out.push(line);
      start = at + 1;
    }
    this.hold(chunk.subarray(start));
    return out;
  }

  end(): Uint8Array[] {
    const line = this.takeLine();
    return line ? [line] : [];
  }

  private hold(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.pendingBytes += bytes.length;
    if (this.pendingBytes > JSONL_LINE_BYTES_MAX) throw new AggregationError(`sub-task ${this.subtaskIndex}, line ${this.line + 1}: longer than ${JSONL_LINE_BYTES_MAX} bytes`);
    this.pending.push(Buffer.from(bytes));
  }

  /** The held line, checked and ending with "\n"; undefined for an empty line. */
  private takeLine(): Uint8Array | undefined {
    this.line++;
    let bytes = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length === 0) return undefined;
    try {
      JSON.parse(decoder.decode(bytes));
    } catch {
      throw new AggregationError(`sub-task ${this.subtaskIndex}, line ${this.line}: not a JSON value`);
    }
    return Buffer.concat([bytes, Buffer.from([NEWLINE])]);
  }
}

const identity: ResultTransform = { push: (chunk) => [chunk], end: () => [] };

/** The transform one sub-task's result goes through under `rule`. */
export function resultTransform(rule: AggregateRuleName, subtaskIndex: number): ResultTransform {
  return rule === 'jsonl' ? new JsonLines(subtaskIndex) : identity;
}

/** Aggregates in-memory results (tests and small tools): the same transforms as the streaming path. */
export function aggregateBytes(rule: AggregateRuleName, results: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [];
  results.forEach((result, index) => {
    const transform = resultTransform(rule, index);
    parts.push(...transform.push(result), ...transform.end());
  });
  return Buffer.concat(parts);
}
