// The replay's stream reader, on a worker thread: reads [fromSequence, toSequence] of the events
// stream with an ordered consumer and hands the main thread batches of raw message bodies, packed
// into one transferred ArrayBuffer (no copy, no per-message object crossing threads). The main
// thread decodes, folds and writes; this thread pays the NATS client's protocol parsing.
//
// Messages whose type header names a type the projection does not read are left out here (only
// their sequence counts): the same rule the live runner applies (libs/messaging message-decoding).
//
// Plain JavaScript with npm imports only, so it runs the same under tsx, vitest and a compiled
// bundle (scripts/compile.mjs copies it next to the bundle).
//
// workerData: { natsUrl, stream, fromSequence, toSequence, batchMax, pullMax, typeHeader,
//               wantedTypes: string[], idleTimeoutMs?: number, batchesAhead: number }
// to main:    { kind: 'batch', lastSequence, count, bodies: ArrayBuffer, meta: ArrayBuffer,
//               subjects: string[] }  (meta: per message sequence, stream time ms, body
//               start, body end, type index into wantedTypes or -1 for none, as float64)
//             { kind: 'end' } | { kind: 'error', message }
// from main:  { kind: 'credit' } (one more batch may be sent) | { kind: 'stop' }
/* global process, TextEncoder, setTimeout, clearTimeout */
import { parentPort, workerData } from 'node:worker_threads';
import { connect } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';

const { natsUrl, stream, fromSequence, toSequence, batchMax, pullMax, typeHeader, wantedTypes, idleTimeoutMs, batchesAhead } = workerData;

const typeMarker = new TextEncoder().encode(`\r\n${typeHeader}:`);
/** The wanted type names as bytes, by length, with their index in wantedTypes. */
const wantedByLength = new Map();
wantedTypes.forEach((name, index) => {
  const bytes = new TextEncoder().encode(name);
  wantedByLength.set(bytes.length, [...(wantedByLength.get(bytes.length) ?? []), { bytes, index }]);
});
/** typeOf: the message has no type header. */
const NO_TYPE = -1;
/** typeOf: the type header names a type the projection does not read. */
const UNREAD_TYPE = -2;

function typeIndexOf(name) {
  if (!name) return NO_TYPE;
  const index = wantedTypes.indexOf(name);
  return index >= 0 ? index : UNREAD_TYPE;
}

/**
 * The type header of a message as `m.headers.get(typeHeader)` gives it, as an index into
 * wantedTypes (or NO_TYPE, UNREAD_TYPE), read straight from the raw header block
 * ("NATS/1.0\r\nName: value\r\n…") when the client exposes it and compared as bytes: decoding
 * every header into a map (or even the value into a string) cost this thread more than the
 * bodies it let the main thread skip. Anything but the plain form `Ce-Type: <letters and
 * digits>` is left to the client's own parser.
 */
function typeOf(m) {
  const raw = m.msg?._rdata;
  const end = m.msg?._msg?.hdr;
  if (!(raw instanceof Uint8Array) || typeof end !== 'number') return typeIndexOf(m.headers?.get(typeHeader));
  if (end < 0) return NO_TYPE;
  const first = typeMarker[0];
  search: for (let i = 0; i + typeMarker.length <= end; i++) {
    if (raw[i] !== first) continue;
    for (let k = 1; k < typeMarker.length; k++) if (raw[i + k] !== typeMarker[k]) continue search;
    const from = i + typeMarker.length + 1;
    if (raw[from - 1] !== 32) return typeIndexOf(m.headers?.get(typeHeader));
    let to = from;
    for (; to < end && raw[to] !== 13; to++) {
      const c = raw[to];
      const plain = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
      if (!plain) return typeIndexOf(m.headers?.get(typeHeader));
    }
    if (to === from) return typeIndexOf(m.headers?.get(typeHeader));
    candidates: for (const { bytes, index } of wantedByLength.get(to - from) ?? []) {
      for (let k = 0; k < bytes.length; k++) if (raw[from + k] !== bytes[k]) continue candidates;
      return index;
    }
    return UNREAD_TYPE;
  }
  return NO_TYPE;
}

let credits = batchesAhead;
let wakeCredit;
let stopped = false;
let messages;
parentPort.on('message', (message) => {
  if (message.kind === 'credit') {
    credits++;
    wakeCredit?.();
  } else if (message.kind === 'stop') {
    stopped = true;
    wakeCredit?.();
    void messages?.close();
  }
});

/** Numbers per message in a batch's meta: sequence, stream time ms, body start, body end, type index. */
const META_STRIDE = 5;

/** Accumulates one batch: bodies appended into a growing buffer, META_STRIDE numbers per message. */
class BatchBuilder {
  constructor() {
    this.bodies = new Uint8Array(batchMax * 512);
    this.used = 0;
    this.meta = new Float64Array(batchMax * META_STRIDE);
    this.count = 0;
    this.subjects = [];
  }

  add(sequence, timeMs, subject, type, data) {
    if (this.used + data.length > this.bodies.length) {
      const grown = new Uint8Array(Math.max(this.bodies.length * 2, this.used + data.length));
      grown.set(this.bodies.subarray(0, this.used));
      this.bodies = grown;
    }
    this.bodies.set(data, this.used);
    const at = this.count * META_STRIDE;
    this.meta[at] = sequence;
    this.meta[at + 1] = timeMs;
    this.meta[at + 2] = this.used;
    this.meta[at + 3] = this.used + data.length;
    this.meta[at + 4] = type;
    this.used += data.length;
    this.subjects.push(subject);
    this.count++;
  }
}

async function send(batch, lastSequence) {
  while (credits <= 0 && !stopped) await new Promise((resolve) => (wakeCredit = resolve));
  if (stopped) return;
  credits--;
  // Only the used parts travel; both buffers are transferred, not cloned.
  const bodies = batch.bodies.slice(0, batch.used).buffer;
  const meta = batch.meta.slice(0, batch.count * META_STRIDE).buffer;
  parentPort.postMessage({ kind: 'batch', lastSequence, count: batch.count, bodies, meta, subjects: batch.subjects }, [bodies, meta]);
}

async function run() {
  const nc = await connect({ servers: natsUrl, name: 'fastgpu-replay-reader', noAsyncTraces: true });
  let timedOut = false;
  let timeout;
  try {
    const js = jetstream(nc, { timeout: 10_000 });
    const consumer = await js.consumers.get(stream, fromSequence > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSequence } : { deliver_policy: DeliverPolicy.All });
    messages = await consumer.consume({ max_messages: pullMax });
    const arm = () => {
      if (idleTimeoutMs === undefined) return;
      clearTimeout(timeout);
      timeout = setTimeout(() => {
        timedOut = true;
        void messages.close();
      }, idleTimeoutMs);
    };
    arm();
    let batch = new BatchBuilder();
    let inBatch = 0;
    let reached = false;
    for await (const m of messages) {
      if (stopped) break;
      // The client has parsed the delivery info already (the ordered consumer checks it).
      const info = m.info;
      const sequence = info.streamSequence;
      if (sequence > toSequence) break;
      const type = typeOf(m);
      if (type !== UNREAD_TYPE) batch.add(sequence, Math.floor(info.timestampNanos / 1_000_000), m.subject, type, m.data);
      inBatch++;
      if (inBatch >= batchMax || sequence >= toSequence || info.pending === 0) {
        clearTimeout(timeout);
        await send(batch, sequence);
        batch = new BatchBuilder();
        inBatch = 0;
        arm();
        if (sequence >= toSequence) {
          reached = true;
          break;
        }
      }
    }
    if (stopped) return;
    if (!reached) throw new Error(timedOut ? `reading the stream toward sequence ${toSequence}: nothing for ${idleTimeoutMs} ms` : `the stream ended before sequence ${toSequence}`);
    parentPort.postMessage({ kind: 'end' });
  } finally {
    clearTimeout(timeout);
    await messages?.close().catch(() => undefined);
    await nc.close().catch(() => undefined);
  }
}

run().catch((error) => {
  parentPort.postMessage({ kind: 'error', message: error instanceof Error ? error.message : String(error) });
  process.exitCode = 1;
});
