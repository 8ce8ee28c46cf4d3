// What the replay's reader thread (stream-reader.worker.mjs) reads off each NATS message without
// the client's per-message parsing: the type header, and the JetStream delivery's sequence and
// time from its reply subject. Pure functions over a nats.js message; plain JavaScript so the
// worker loads it as it is (scripts/compile.mjs copies it beside bundles), tested directly by
// stream-reader.frames.spec.ts.
//
// Both read the client's private raw fields (`_rdata`, `_msg.hdr`, `_msg.reply`) when present and
// fall back to its public parsers otherwise: a nats.js upgrade that renames them loses only speed.
/* global TextEncoder */

const utf8 = new TextEncoder();

/** typeOf: the message has no type header. */
export const NO_TYPE = -1;
/** typeOf: the type header names a type the projection does not read. */
export const UNREAD_TYPE = -2;

/**
 * typeOf(m) for one header name and the types a projection reads: the type header of a message
 * as `m.headers.get(typeHeader)` gives it, as an index into wantedTypes (or NO_TYPE, UNREAD_TYPE),
 * read straight from the raw header block ("NATS/1.0\r\nName: value\r\n…") and compared as
 * bytes: decoding every header into a map (or even the value into a string) cost the reader
 * thread more than the bodies it let the main thread skip. Anything but the plain form
 * `Ce-Type: <letters and digits>` is left to the client's own parser.
 */
export function typeReader(typeHeader, wantedTypes) {
  const typeMarker = utf8.encode(`\r\n${typeHeader}:`);
  /** The wanted type names as bytes, by length, with their index in wantedTypes. */
  const wantedByLength = new Map();
  wantedTypes.forEach((name, index) => {
    const bytes = utf8.encode(name);
    wantedByLength.set(bytes.length, [...(wantedByLength.get(bytes.length) ?? []), { bytes, index }]);
  });
  const typeIndexOf = (name) => {
    if (!name) return NO_TYPE;
    const index = wantedTypes.indexOf(name);
    return index >= 0 ? index : UNREAD_TYPE;
  };
  const parsed = (m) => typeIndexOf(m.headers?.get(typeHeader));

  return function typeOf(m) {
    const raw = m._rdata;
    const end = m._msg?.hdr;
    if (!(raw instanceof Uint8Array) || typeof end !== 'number') return parsed(m);
    if (end < 0) return NO_TYPE;
    const first = typeMarker[0];
    search: for (let i = 0; i + typeMarker.length <= end; i++) {
      if (raw[i] !== first) continue;
      for (let k = 1; k < typeMarker.length; k++) if (raw[i + k] !== typeMarker[k]) continue search;
      const from = i + typeMarker.length + 1;
      if (raw[from - 1] !== 32) return parsed(m);
      let to = from;
      for (; to < end && raw[to] !== 13; to++) {
        const c = raw[to];
        const plain = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
        if (!plain) return parsed(m);
      }
      if (to === from) return parsed(m);
      candidates: for (const { bytes, index } of wantedByLength.get(to - from) ?? []) {
        for (let k = 0; k < bytes.length; k++) if (raw[from + k] !== bytes[k]) continue candidates;
        return index;
      }
      return UNREAD_TYPE;
    }
    return NO_TYPE;
  };
}

/** What readDelivery read last (one object for every message: no garbage per message). */
export const delivery = { streamSequence: 0, consumerSequence: 0, timeMs: 0, pending: 0 };
const ACK_PREFIX = utf8.encode('$JS.ACK.');
const dots = new Int32Array(16);

/** The decimal digits of bytes[from, to) as a number; NaN if anything else is there or nothing. */
function digits(bytes, from, to) {
  if (to <= from) return NaN;
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = bytes[i] - 48;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  return n;
}

/**
 * Reads a JetStream delivery's reply subject into `delivery`, in either form nats.js's parseInfo
 * reads: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>` or
 * `$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>[.<token>]`.
 * The time is the stream's, in whole milliseconds (nanoseconds floored, as `m.time` gives it).
 * False when the subject is not a delivery's (a status message has none).
 */
export function readDelivery(m) {
  const raw = m._msg?.reply;
  const bytes = raw instanceof Uint8Array ? raw : utf8.encode(m.reply ?? '');
  if (bytes.length < ACK_PREFIX.length) return false;
  for (let i = 0; i < ACK_PREFIX.length; i++) if (bytes[i] !== ACK_PREFIX[i]) return false;
  let count = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 46) continue;
    if (count === dots.length) return false;
    dots[count++] = i;
  }
  const tokens = count + 1;
  if (tokens !== 9 && tokens < 11) return false;
  const delivered = tokens === 9 ? 4 : 6;
  const start = (token) => dots[token - 1] + 1;
  const end = (token) => (token < count ? dots[token] : bytes.length);
  delivery.streamSequence = digits(bytes, start(delivered + 1), end(delivered + 1));
  delivery.consumerSequence = digits(bytes, start(delivered + 2), end(delivered + 2));
  // Nanoseconds since 1970 have 19 digits: leaving out the last 6 keeps the milliseconds exact.
  delivery.timeMs = digits(bytes, start(delivered + 3), end(delivered + 3) - 6);
  delivery.pending = digits(bytes, start(delivered + 4), end(delivered + 4));
  return Number.isSafeInteger(delivery.streamSequence) && Number.isSafeInteger(delivery.consumerSequence) && Number.isSafeInteger(delivery.timeMs) && Number.isSafeInteger(delivery.pending);
}
