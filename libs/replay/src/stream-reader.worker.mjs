// The replay's stream reader, on a worker thread: reads [fromSequence, toSequence] of the events
// stream through an ephemeral pull consumer and hands the main thread batches of raw message
// bodies packed into one transferred ArrayBuffer (no copy, no per-message object crossing
// threads), which come back for reuse once decoded. The main thread decodes, folds and writes;
// this thread pays the NATS client's protocol parsing.
//
// A batch ends when full, at the range's end, or at a message the server delivered with nothing
// pending after it; a range whose last sequences were deleted ends at the first delivery past
// its end, or, with nothing stored after it, once the stream's real last sequence shows they will
// never come (never on a client-side pending estimate).
//
// Messages whose type header names a type the projection does not read are left out here (only
// their sequence counts): the same rule the live runner applies (libs/messaging message-decoding).
//
// Plain JavaScript with npm imports (and stream-reader.frames.mjs) only, so it runs the same under
// tsx, vitest and a compiled bundle (scripts/compile.mjs copies both next to the bundle).
//
// workerData: { natsUrl, stream, fromSequence, toSequence, batchMax, pullMax, typeHeader,
//               wantedTypes: string[], idleTimeoutMs?: number, batchesAhead: number,
//               pullExpiresMs?: number }
// to main:    { kind: 'batch', lastSequence, count, bodies: ArrayBuffer, meta: ArrayBuffer,
//               subjects: string[] }  (meta: per message sequence, stream time ms, body
//               start, body end, type index into wantedTypes or -1 for none, as float64)
//             { kind: 'end' } | { kind: 'error', message }
// from main:  { kind: 'credit', bodies?, meta? } (one more batch may be sent; the decoded batch's
//             buffers, transferred back for reuse) | { kind: 'stop' }
/* global process, setTimeout, clearTimeout, setInterval, clearInterval */
import { parentPort, workerData } from 'node:worker_threads';
import { connect, createInbox } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstreamManager } from '@nats-io/jetstream';
import { delivery, readDelivery, typeReader, UNREAD_TYPE } from './stream-reader.frames.mjs';

const { natsUrl, stream, fromSequence, toSequence, batchMax, pullMax, typeHeader, wantedTypes, idleTimeoutMs, batchesAhead, pullExpiresMs } = workerData;

const typeOf = typeReader(typeHeader, wantedTypes);

let credits = batchesAhead;
/** Buffers of batches the main thread has decoded, handed back for the next batches. */
const spare = [];
let wakeCredit;
let stopped = false;
parentPort.on('message', (message) => {
  if (message.kind === 'credit') {
    credits++;
    if (message.bodies && message.meta) spare.push({ bodies: new Uint8Array(message.bodies), meta: new Float64Array(message.meta) });
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
    // A batch's buffers go to the main thread and come back once it is decoded: a few pairs
    // circulate instead of new megabytes per batch (external memory that also hastens V8's GC).
    const reused = spare.pop();
    this.bodies = reused?.bodies ?? new Uint8Array(batchMax * 512);
    this.used = 0;
    this.meta = reused?.meta ?? new Float64Array(batchMax * META_STRIDE);
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
  // Both buffers are transferred whole, not copied: the main thread reads `count` entries of
  // meta, and bodies only at the offsets meta gives.
  const bodies = batch.bodies.buffer;
  const meta = batch.meta.buffer;
  parentPort.postMessage({ kind: 'batch', lastSequence, count: batch.count, bodies, meta, subjects: batch.subjects }, [bodies, meta]);
}

/** Nanoseconds, as JetStream's API takes durations. */
const nanos = (ms) => ms * 1_000_000;
/** How long one pull request waits on the server for messages before it expires (a 408 status comes back). */
const PULL_EXPIRES_MS = pullExpiresMs ?? 30_000;
/**
 * A pull outstanding with nothing at all back for this long (the server answers every pull before
 * it expires, with messages or a status) means the consumer or the connection is gone (nats-server
 * 2.9 says nothing to the pulls of a deleted consumer): the read goes on with a new consumer from
 * the next sequence.
 */
const PULL_SILENCE_MS = PULL_EXPIRES_MS + Math.min(PULL_EXPIRES_MS, 10_000);
/** The server removes a consumer this long after it last had a pull waiting (a reader that died). */
const CONSUMER_INACTIVE_MS = 5 * 60_000;
/** Pause before a new consumer replaces one that failed (a refused or unanswered pull, a gap). */
const RESET_DELAY_MS = 250;

/**
 * Reads the range through an ephemeral pull consumer (no acks) on a plain subscription: pull
 * requests are published by hand, two outstanding, and each delivery's sequence and time are read
 * off its reply subject. The JetStream client's consumer iterator, which wraps and parses every
 * message, cost this thread about as much as the protocol parsing itself.
 *
 * Like nats.js's ordered consumer it never skips: a gap in the delivery sequence, a deleted
 * consumer, a refused pull or a pull the server never answers (a reconnect) all end that consumer
 * and start a new one at the sequence after the last one received, on a new inbox (late messages
 * of the old one are not read).
 */
async function run() {
  const nc = await connect({ servers: natsUrl, name: 'fastgpu-replay-reader', noAsyncTraces: true });
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  /** The consumer in use: its name, inbox subscription, and what its deliveries are checked against. */
  let current;
  let idleTimer;
  let silenceTimer;
  let resetTimer;
  try {
    await new Promise((resolve, reject) => {
      const ready = [];
      let batch = new BatchBuilder();
      let inBatch = 0;
      /** The last stream sequence received (whether kept or left out). */
      let lastReceived = fromSequence - 1;
      let sending = false;
      let done = false;
      let resetting = false;
      const finish = (error) => {
        if (done) return;
        done = true;
        if (error) reject(error);
        else resolve();
      };
      const armIdle = () => {
        if (idleTimeoutMs === undefined) return;
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => finish(new Error(`reading the stream toward sequence ${toSequence}: nothing for ${idleTimeoutMs} ms`)), idleTimeoutMs);
      };
      /**
       * Watches the consumer while it owes us messages: a count of answers (messages and statuses)
       * checked a few times per PULL_SILENCE_MS, not a timer per message.
       */
      let heard = 0;
      let heardAtCheck = 0;
      let silentChecks = 0;
      const SILENCE_CHECKS = 4;
      silenceTimer = setInterval(() => {
        const owed = current !== undefined && !resetting && current.requested > 0 && ready.length === 0 && !sending;
        silentChecks = owed && heard === heardAtCheck ? silentChecks + 1 : 0;
        heardAtCheck = heard;
        if (silentChecks >= SILENCE_CHECKS) {
          silentChecks = 0;
          reset('no answer to a pull');
        }
      }, PULL_SILENCE_MS / SILENCE_CHECKS);
      const pull = () => {
        if (!current || done) return;
        current.requested += pullMax;
        nc.publish(current.pullSubject, current.pullRequest, { reply: current.inbox });
      };
      /**
       * Pulls again once less than half a pull is owed and nothing waits for the main thread: two
       * pulls at the start, then at most one and a half pulls' worth outstanding.
       */
      const pullIfRoom = () => {
        if (current && !resetting && !ready.length && current.requested <= pullMax / 2) pull();
      };

      const startConsumer = async () => {
        const from = lastReceived + 1;
        const info = await jsm.consumers.add(stream, {
          ack_policy: AckPolicy.None,
          deliver_policy: from > 1 ? DeliverPolicy.StartSequence : DeliverPolicy.All,
          ...(from > 1 ? { opt_start_seq: from } : {}),
          inactive_threshold: nanos(CONSUMER_INACTIVE_MS),
          mem_storage: true,
          num_replicas: 1,
        });
        const inbox = createInbox();
        const consumer = {
          name: info.name,
          inbox,
          pullSubject: `$JS.API.CONSUMER.MSG.NEXT.${stream}.${info.name}`,
          pullRequest: JSON.stringify({ batch: pullMax, expires: nanos(PULL_EXPIRES_MS) }),
          /** Messages asked for and not yet received. */
          requested: 0,
          expected: 1,
        };
        consumer.subscription = nc.subscribe(inbox, { callback: (error, m) => onMessage(consumer, error, m) });
        current = consumer;
        pull();
        pull();
        // A range with nothing stored from its start on (its sequences all deleted) gets no
        // delivery to trigger the check: the new consumer's state tells.
        void checkRangeGone();
      };
      const dropConsumer = (consumer) => {
        consumer.subscription.unsubscribe();
        void jsm.consumers.delete(stream, consumer.name).catch(() => undefined);
      };
      /** Ends the current consumer and goes on with a new one after the last sequence received. */
      const reset = (why) => {
        if (done || resetting) return;
        resetting = true;
        if (current) dropConsumer(current);
        current = undefined;
        clearTimeout(resetTimer);
        resetTimer = setTimeout(() => {
          startConsumer()
            .then(() => {
              resetting = false;
            })
            .catch((error) => finish(new Error(`reading the stream after ${why}: ${error instanceof Error ? error.message : String(error)}`)));
        }, RESET_DELAY_MS);
      };

      /**
       * A delivery past the range's end shows at once that the range's last sequences were
       * deleted. Without one (checked after a delivery with nothing pending after it, and when a
       * consumer starts, for a range with nothing stored from its start on), nothing follows the
       * last message received, yet the range goes further. When the stream's
       * real last sequence already reaches the range's end (read before the consumer's state, so
       * a message published in between cannot be mistaken for a deleted one), the missing
       * sequences were deleted and never come: the range ends with an empty batch at its end
       * once the messages already delivered have arrived. Otherwise they are still to be
       * published and the read waits (the idle timeout bounds that wait).
       */
      let checkingRange = false;
      /**
       * Once checked: the consumer, and how many deliveries it had made when nothing was pending
       * (its delivered stream sequence may name a deleted message, so deliveries are counted).
       */
      let rangeEmptyAfter;
      /** The batch at the range's end is handed over (once): later deliveries are past the range. */
      let rangeEnded = false;
      /** Ends the range at its end: the sequences missing before it were deleted. */
      const endRange = () => {
        if (rangeEnded) return;
        rangeEnded = true;
        lastReceived = Math.max(lastReceived, toSequence);
        ready.push([batch, toSequence]);
        batch = new BatchBuilder();
        inBatch = 0;
        void flush();
      };
      const endIfRangeGone = () => {
        if (rangeEmptyAfter === undefined || done) return;
        if (rangeEmptyAfter.consumer !== current) {
          rangeEmptyAfter = undefined;
          return;
        }
        if (current.expected - 1 < rangeEmptyAfter.deliveries) return;
        rangeEmptyAfter = undefined;
        endRange();
      };
      /** A check asked for while one runs: it runs again after (the running one may have read older state). */
      let checkAgain = false;
      const checkRangeOnce = async () => {
        const consumer = current;
        if (!consumer) return;
        const stream_ = await jsm.streams.info(stream);
        if (stream_.state.last_seq < toSequence) return;
        const info = await jsm.consumers.info(stream, consumer.name);
        if (consumer !== current || info.num_pending !== 0) return;
        rangeEmptyAfter = { consumer, deliveries: info.delivered.consumer_seq };
        endIfRangeGone();
      };
      const checkRangeGone = async () => {
        if (!current || done || rangeEnded) return;
        if (checkingRange) {
          checkAgain = true;
          return;
        }
        checkingRange = true;
        try {
          do {
            checkAgain = false;
            await checkRangeOnce().catch(() => {
              // The consumer went away meanwhile: the new one's deliveries tell again.
            });
          } while (checkAgain && !done && !rangeEnded);
        } finally {
          checkingRange = false;
        }
      };

      /** Hands ready batches over as credits allow; pulls more only once the main thread keeps up. */
      const flush = async () => {
        if (sending) return;
        sending = true;
        try {
          while (ready.length && !stopped && !done) {
            const [next, lastSequence] = ready.shift();
            await send(next, lastSequence);
            if (lastSequence >= toSequence) return finish();
            armIdle();
            pullIfRoom();
          }
          if (stopped) finish();
        } catch (error) {
          finish(error);
        } finally {
          sending = false;
        }
      };

      const onMessage = (consumer, error, m) => {
        if (done || consumer !== current) return;
        if (error) return finish(error);
        heard++;
        if (!readDelivery(m)) {
          // A status. 408: a pull expired unanswered (or partly answered); 404: nothing to pull
          // yet; 100: a heartbeat. 409 (consumer deleted, request limits), 503 (no responders,
          // JetStream unavailable) and anything else: a new consumer, as the ordered consumer does.
          const code = m.headers?.code ?? 0;
          if (code === 100) return;
          if (code === 408 || code === 404) {
            consumer.requested = 0;
            return pullIfRoom();
          }
          return reset(`status ${code} ${m.headers?.description ?? ''}`.trim());
        }
        consumer.requested--;
        if (delivery.consumerSequence !== consumer.expected) return reset(`delivery ${delivery.consumerSequence} where ${consumer.expected} was due`);
        consumer.expected++;
        const sequence = delivery.streamSequence;
        if (sequence <= lastReceived) return;
        lastReceived = sequence;
        // Past the range's end: its last sequences were deleted, and the range is complete without them.
        if (sequence > toSequence) return endRange();
        const type = typeOf(m);
        if (type !== UNREAD_TYPE) batch.add(sequence, delivery.timeMs, m.subject, type, m.data);
        inBatch++;
        // A batch ends when full, at the range's end, or when the server says nothing follows this
        // message (its pending count, exact when delivered): never on a client-side estimate.
        if (inBatch >= batchMax || sequence >= toSequence || delivery.pending === 0) {
          if (sequence >= toSequence) rangeEnded = true;
          ready.push([batch, sequence]);
          batch = new BatchBuilder();
          inBatch = 0;
          void flush();
        }
        if (delivery.pending === 0 && sequence < toSequence) void checkRangeGone();
        endIfRangeGone();
        // The next pull goes out before the owed messages run out: the server never waits for us.
        if (!sending) pullIfRoom();
      };

      armIdle();
      startConsumer().catch(finish);
    });
  } finally {
    clearTimeout(idleTimer);
    clearInterval(silenceTimer);
    clearTimeout(resetTimer);
    if (current) {
      current.subscription.unsubscribe();
      await jsm.consumers.delete(stream, current.name).catch(() => undefined);
    }
    await nc.close().catch(() => undefined);
  }
  // After the clean-up: the main thread waits for this before it ends the thread.
  if (!stopped) parentPort.postMessage({ kind: 'end' });
}

run().catch((error) => {
  parentPort.postMessage({ kind: 'error', message: error instanceof Error ? error.message : String(error) });
  process.exitCode = 1;
});
