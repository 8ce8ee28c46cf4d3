/**
 * The reader thread's byte-level readers against the forms the server writes: the delivery's
 * reply subject in its old (9 tokens) and new (11 or 12 tokens, with domain and account) forms,
 * read from raw bytes and from the decoded string alike, and the type header from a raw header
 * block. The end-to-end agreement with the client's own parsers (m.seq, m.time, headers.get) on
 * real NATS is in threaded-reader.spec.ts.
 */
import { describe, expect, it } from 'vitest';
import { delivery, NO_TYPE, readDelivery, typeReader, UNREAD_TYPE, type FrameMessage } from './stream-reader.frames.mjs';

const bytes = (s: string) => new TextEncoder().encode(s);
/** The same reply subject as nats.js holds it (raw bytes) and as its public getter gives it. */
const forms = (reply: string): FrameMessage[] => [{ _msg: { reply: bytes(reply) } }, { reply }];
const read = (m: FrameMessage) => (readDelivery(m) ? { ...delivery } : undefined);

describe('readDelivery', () => {
  it('reads sequence, delivery sequence, millisecond time and pending from the old form', () => {
    for (const m of forms('$JS.ACK.fastgpu_events.c1.1.42.7.1767225600123999999.3')) {
      expect(read(m)).toEqual({ streamSequence: 42, consumerSequence: 7, timeMs: 1_767_225_600_123, pending: 3 });
    }
  });

  it('reads the new form with domain and account hash, with and without the trailing token', () => {
    for (const m of [...forms('$JS.ACK.hub.ACCHASH.events.c1.2.9007199254740991.5.1767225600000000001.0.r4nd'), ...forms('$JS.ACK._.ACCHASH.events.c1.1.12.5.1767225600000000001.0')]) {
      const seen = read(m);
      expect(seen?.consumerSequence).toBe(5);
      expect(seen?.timeMs).toBe(1_767_225_600_000);
      expect(seen?.pending).toBe(0);
    }
    expect(read(forms('$JS.ACK.hub.ACCHASH.events.c1.2.9007199254740991.5.1767225600000000001.0.r4nd')[0]!)?.streamSequence).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('refuses what is not a delivery: a status message, another subject, a malformed or unsafe number', () => {
    for (const reply of ['', '_INBOX.abc.def', '$JS.ACK.s.c.1.2.3', '$JS.ACK.s.c.1.x2.3.1767225600000000001.0', '$JS.ACK.s.c.1.99999999999999999.3.1767225600000000001.0', '$JS.ACK.s.c.1.2.3.12345.0', '$JS.ACK.s.c.1..3.1767225600000000001.0']) {
      for (const m of forms(reply)) expect(read(m), reply).toBeUndefined();
    }
    expect(readDelivery({})).toBe(false);
  });
});

describe('typeReader', () => {
  const typeOf = typeReader('Ce-Type', ['SubtaskStarted', 'SubtaskCompleted']);
  const raw = (block: string, body = '{}'): FrameMessage => ({ _rdata: bytes(block + body), _msg: { hdr: bytes(block).length } });

  it('finds the plain header among others and names its index, or UNREAD_TYPE, or NO_TYPE', () => {
    expect(typeOf(raw('NATS/1.0\r\nNats-Msg-Id: a\r\nCe-Type: SubtaskCompleted\r\n\r\n'))).toBe(1);
    expect(typeOf(raw('NATS/1.0\r\nCe-Type: SubtaskStarted\r\nNats-Msg-Id: a\r\n\r\n'))).toBe(0);
    expect(typeOf(raw('NATS/1.0\r\nCe-Type: NodeRegistered\r\n\r\n'))).toBe(UNREAD_TYPE);
    expect(typeOf(raw('NATS/1.0\r\nNats-Msg-Id: a\r\n\r\n'))).toBe(NO_TYPE);
    expect(typeOf({ _rdata: bytes('{}'), _msg: { hdr: -1 } })).toBe(NO_TYPE);
    // The type's name inside another header's value is not the header.
    expect(typeOf(raw('NATS/1.0\r\nX-Note: Ce-Type: SubtaskStarted\r\n\r\n'))).toBe(NO_TYPE);
  });

  it("leaves anything but the plain form to the client's parser", () => {
    const parsedAs = (value: string): FrameMessage => ({ _rdata: bytes('NATS/1.0\r\nCe-Type:SubtaskStarted\r\n\r\n{}'), _msg: { hdr: 36 }, headers: { get: () => value } });
    expect(typeOf(parsedAs('SubtaskStarted'))).toBe(0);
    expect(typeOf(parsedAs('NodeRegistered'))).toBe(UNREAD_TYPE);
    expect(typeOf({ headers: { get: () => 'SubtaskCompleted' } })).toBe(1);
    expect(typeOf({ headers: { get: () => '' } })).toBe(NO_TYPE);
  });
});
