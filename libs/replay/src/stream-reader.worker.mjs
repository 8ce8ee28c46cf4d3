// The replay's stream reader, on a worker thread: reads [fromSequence, toSequence] of the events
// stream through an ephemeral pull consumer and hands the main thread batches of raw message bodies, packed
// into one transferred ArrayBuffer (no copy, no per-message object crossing threads). The main
// thread decodes, folds and writes; this thread pays the NATS client's protocol parsing.
//
// Messages whose type header names a type the projection does not read are left out here (only
// their sequence counts): the same rule the live runner applies (libs/messaging message-decoding).
//
// Plain JavaScript with npm imports (and stream-reader.frames.mjs) only, so it runs the same under
// tsx, vitest and a compiled bundle (scripts/compile.mjs copies both next to the bundle).
//
// workerData: { natsUrl, stream, fromSequence, toSequence, batchMax, pullMax, typeHeader,
//               wantedTypes: string[], idleTimeoutMs?: number, batchesAhead: number }
// to main:    { kind: 'batch', lastSequence, count, bodies: ArrayBuffer, meta: ArrayBuffer,
//               subjects: string[] }  (meta: per message sequence, stream time ms, body
//               start, body end, type index into wantedTypes or -1 for none, as float64)
//             { kind: 'end' } | { kind: 'error', message }
// from main:  { kind: 'credit' } (one more batch may be sent) | { kind: 'stop' }
/* global process, setTimeout, clearTimeout */
import { parentPort, workerData } from 'node:worker_threads';
import { connect, createInbox } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstreamManager } from '@nats-io/jetstream';
import { delivery, readDelivery, typeReader, UNREAD_TYPE } from './stream-reader.frames.mjs';

const { natsUrl, stream, fromSequence, toSequence, batchMax, pullMax, typeHeader, wantedTypes, idleTimeoutMs, batchesAhead } = workerData;

const typeOf = typeReader(typeHeader, wantedTypes);

let credits = batchesAhead;
let wakeCredit;
let stopped = false;
parentPort.on('message', (message) => {
  if (message.kind === 'credit') {
    credits++;
    wakeCredit?.();
  } else if (message.kind === 'stop') {
    stopped = true;
    wakeCredit?.();
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

/** Nanoseconds, as JetStream's API takes durations. */
const nanos = (ms) => ms * 1_000_000;
/** How long one pull request waits on the server for messages before it expires (a 408 status comes back). */
const PULL_EXPIRES_MS = 30_000;
/** The consumer is removed by the server this long after the reader is gone (if it could not delete it). */
const CONSUMER_INACTIVE_MS = 60_000;

/**
 * Reads the range through an ephemeral pull consumer (no acks) on a plain subscription: pull
 * requests are published by hand, two at a time, and each delivery's sequence and time are read
 * off its reply subject. The JetStream client's consumer iterator, which wraps and parses every
 * message, cost this thread about as much as the protocol parsing itself.
 */
async function run() {
  const nc = await connect({ servers: natsUrl, name: 'fastgpu-replay-reader', noAsyncTraces: true });
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  let consumerName;
  let timeout;
  try {
    const info = await jsm.consumers.add(stream, {
      ack_policy: AckPolicy.None,
      deliver_policy: fromSequence > 1 ? DeliverPolicy.StartSequence : DeliverPolicy.All,
      ...(fromSequence > 1 ? { opt_start_seq: fromSequence } : {}),
      inactive_threshold: nanos(CONSUMER_INACTIVE_MS),
      mem_storage: true,
      num_replicas: 1,
    });
    consumerName = info.name;
    const inbox = createInbox();
    const pullSubject = `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumerName}`;
    const pullRequest = JSON.stringify({ batch: pullMax, expires: nanos(PULL_EXPIRES_MS) });
    /** Messages asked for and not yet received. */
    let requested = 0;
    const pull = () => {
      requested += pullMax;
      nc.publish(pullSubject, pullRequest, { reply: inbox });
    };

    const finished = new Promise((resolve, reject) => {
      const ready = [];
      let batch = new BatchBuilder();
      let inBatch = 0;
      let expected = 1;
      let sending = false;
      let done = false;
      const fail = (error) => {
        if (done) return;
        done = true;
        reject(error);
      };
      const arm = () => {
        if (idleTimeoutMs === undefined) return;
        clearTimeout(timeout);
        timeout = setTimeout(() => fail(new Error(`reading the stream toward sequence ${toSequence}: nothing for ${idleTimeoutMs} ms`)), idleTimeoutMs);
      };
      /** Hands ready batches over as credits allow; pulls more only while the main thread keeps up. */
      const flush = async () => {
        if (sending) return;
        sending = true;
        try {
          while (ready.length && !stopped && !done) {
            const [next, lastSequence] = ready.shift();
            await send(next, lastSequence);
            if (lastSequence >= toSequence) {
              done = true;
              resolve();
              return;
            }
            arm();
            if (requested < pullMax && ready.length === 0) pull();
          }
          if (stopped && !done) {
            done = true;
            resolve();
          }
        } catch (error) {
          fail(error);
        } finally {
          sending = false;
        }
      };
      nc.subscribe(inbox, {
        callback: (error, m) => {
          if (done) return;
          if (error) return fail(error);
          if (!readDelivery(m)) {
            // A status: 408 (the pull expired unanswered) or 409 (a request limit) ask for a new pull;
            // 100 (heartbeat) needs nothing; anything else ends the read.
            const code = m.headers?.code ?? 0;
            if (code === 408 || code === 409) {
              requested = 0;
              if (!ready.length) pull();
              return;
            }
            if (code === 100) return;
            return fail(new Error(`reading the stream toward sequence ${toSequence}: unexpected status ${code} ${m.headers?.description ?? ''} from the server`));
          }
          requested--;
          if (delivery.consumerSequence !== expected) {
            return fail(new Error(`reading the stream: delivery ${delivery.consumerSequence} arrived where ${expected} was due (a message was lost on the way)`));
          }
          expected++;
          const sequence = delivery.streamSequence;
          if (sequence > toSequence) return;
          const type = typeOf(m);
          if (type !== UNREAD_TYPE) batch.add(sequence, delivery.timeMs, m.subject, type, m.data);
          inBatch++;
          if (inBatch >= batchMax || sequence >= toSequence || delivery.pending === 0) {
            ready.push([batch, sequence]);
            batch = new BatchBuilder();
            inBatch = 0;
            void flush();
          }
          // The second pull goes out when the first is half received: the server never waits for us.
          if (requested <= pullMax / 2 && ready.length === 0 && !sending) pull();
        },
      });
      arm();
      pull();
      pull();
    });
    await finished;
  } finally {
    clearTimeout(timeout);
    if (consumerName) await jsm.consumers.delete(stream, consumerName).catch(() => undefined);
    await nc.close().catch(() => undefined);
  }
  // After the clean-up: the main thread waits for this before it ends the thread.
  if (!stopped) parentPort.postMessage({ kind: 'end' });
}

run().catch((error) => {
  parentPort.postMessage({ kind: 'error', message: error instanceof Error ? error.message : String(error) });
  process.exitCode = 1;
});
