import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import type { JetStreamClient, MsgRequest, NextMsgRequest, StoredMsg } from '@nats-io/jetstream';
import { decodeEvent, Headers, parseJson, peekType, type Topology } from '@fastgpu/contracts';
import type { Bus } from './bus';

export interface DeadLetterInput {
  consumer: string;
  originalSubject: string;
  originalStream: string;
  originalSequence: number;
  deliveries: number;
  reason: string;
  headers?: MsgHdrs;
  data: Uint8Array;
  /** How many times this message has been dead-lettered before (grows on failed redrives). */
  previousCount?: number;
}

/**
 * Sends a message that cannot be handled to `<prefix>.dlq.<consumer>` with the reason, keeping
 * the original subject, headers, stream sequence, consumer and delivery count. The msg id is
 * derived from (stream, sequence, consumer, count) so a retry does not make a second copy.
 */
export async function sendToDeadLetters(js: JetStreamClient, topo: Topology, input: DeadLetterInput): Promise<number> {
  const h = natsHeaders();
  if (input.headers) {
    for (const key of input.headers.keys()) {
      if (key === Headers.messageId) continue;
      for (const value of input.headers.values(key)) h.append(key, value);
    }
  }
  const count = (input.previousCount ?? Number(input.headers?.get(Headers.deadLetterCount) || 0)) + 1;
  h.set(Headers.deadLetterReason, input.reason.slice(0, 1000).replace(/[\r\n]+/g, ' '));
  h.set(Headers.deadLetterSubject, input.originalSubject);
  h.set(Headers.deadLetterStream, input.originalStream);
  h.set(Headers.deadLetterSequence, String(input.originalSequence));
  h.set(Headers.deadLetterConsumer, input.consumer);
  h.set(Headers.deadLetterDeliveries, String(input.deliveries));
  h.set(Headers.deadLetterCount, String(count));
  const ack = await js.publish(topo.subjects.deadLetter(input.consumer), input.data, {
    headers: h,
    msgID: `dlq-${input.originalStream}-${input.originalSequence}-${input.consumer}-${count}`,
  });
  return ack.seq;
}

/*
 * Reading and redriving the dead-letter stream: one implementation for the SRE CLI
 * (`npm run events -- dlq`) and the HTTP routes (`/v1/dead-letters`).
 */

/** Headers a redrive adds: which dead letter it came from and how many times it had failed. */
export const RedriveHeaders = {
  redrivenFrom: 'Fastgpu-Redriven-From',
  redriveCount: 'Fastgpu-Redrive-Count',
} as const;

/** Dead letters read by one page at most (the CLI's `list` and `redrive --all` read one page of this size). */
export const DEAD_LETTERS_PER_PAGE_MAX = 10_000;

/** Why a dead-letter operation was refused; nothing changed. */
export type DeadLetterRefusal = 'invalid-sequence' | 'not-found' | 'no-subject' | 'undecodable';

export class DeadLetterError extends Error {
  constructor(
    message: string,
    readonly refusal: DeadLetterRefusal,
  ) {
    super(message);
  }
}

export interface DeadLetter {
  /** Sequence in the dead-letter stream: the id `show`/`redrive` take. */
  sequence: number;
  storedAt: string;
  consumer: string;
  originalSubject: string;
  originalStream: string;
  originalSequence: number;
  deliveries: number;
  /** Times this message has been dead-lettered (grows with each failed redrive). */
  count: number;
  reason: string;
  eventType?: string;
  eventId?: string;
  headers: Record<string, string[]>;
  data: Uint8Array;
}

function headerRecord(h: MsgHdrs | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!h) return out;
  for (const key of h.keys()) out[key] = h.values(key);
  return out;
}

export function toDeadLetter(m: { seq: number; time: Date; subject: string; headers?: MsgHdrs; data: Uint8Array }, topology: Topology): DeadLetter {
  const h = m.headers;
  const get = (key: string) => h?.get(key) ?? '';
  const parsed = parseJson(m.data);
  const body = parsed.ok && typeof parsed.value === 'object' && parsed.value !== null ? (parsed.value as { id?: unknown }) : undefined;
  const headerCount = Number(get(Headers.deadLetterCount) || 1);
  // A redrive records the count it had; a dead-lettering that does not carry the count forward still grows it.
  const redriveCount = Number(get(RedriveHeaders.redriveCount) || 0);
  return {
    sequence: m.seq,
    storedAt: m.time.toISOString(),
    consumer: get(Headers.deadLetterConsumer) || m.subject.slice(topology.subjects.deadLetter('').length),
    originalSubject: get(Headers.deadLetterSubject),
    originalStream: get(Headers.deadLetterStream),
    originalSequence: Number(get(Headers.deadLetterSequence) || 0),
    deliveries: Number(get(Headers.deadLetterDeliveries) || 0),
    count: Math.max(headerCount, redriveCount + 1),
    reason: get(Headers.deadLetterReason),
    eventType: get(Headers.eventType) || (parsed.ok ? peekType(parsed.value) : undefined),
    eventId: typeof body?.id === 'string' ? body.id : undefined,
    headers: headerRecord(h),
    data: m.data,
  };
}

function storedToDeadLetter(stored: StoredMsg, topology: Topology): DeadLetter {
  return toDeadLetter({ seq: stored.seq, time: stored.time, subject: stored.subject, headers: stored.header, data: stored.data }, topology);
}

/**
 * STREAM.MSG.GET's "first message of this subject at or after seq" (nats-server 2.9 and later):
 * the client sends the request as given, though its type names only the by-sequence and
 * last-by-subject forms for this call (it names this one for direct gets, which the stream does
 * not enable).
 */
function nextBySubject(seq: number, subject: string): MsgRequest {
  const request: NextMsgRequest = { seq, next_by_subj: subject };
  return request as unknown as MsgRequest;
}

/**
 * One page of dead letters in stream order, after a sequence: each read by the server's "next
 * message of this subject from sequence" lookup, so no consumer is left behind and an empty
 * stream answers at once. `next` is the sequence to pass as `after` for the following page, null
 * when this page reached the end.
 */
export async function readDeadLetters(bus: Bus, options: { after?: number; limit: number; consumer?: string }): Promise<{ letters: DeadLetter[]; next: number | null }> {
  const { streams, subjects } = bus.topology;
  const limit = Math.min(Math.max(1, options.limit), DEAD_LETTERS_PER_PAGE_MAX);
  const filter = options.consumer ? subjects.deadLetter(options.consumer) : subjects.deadLettersAll;
  const letters: DeadLetter[] = [];
  let from = Math.max(0, options.after ?? 0) + 1;
  // One more than the page, to know whether another page follows.
  while (letters.length <= limit) {
    const stored = await bus.jsm.streams.getMessage(streams.deadLetters, nextBySubject(from, filter));
    if (!stored) break;
    letters.push(storedToDeadLetter(stored, bus.topology));
    from = stored.seq + 1;
  }
  const more = letters.length > limit;
  if (more) letters.length = limit;
  return { letters, next: more ? letters[letters.length - 1]!.sequence : null };
}

export async function getDeadLetter(bus: Bus, sequence: number): Promise<DeadLetter> {
  if (!Number.isSafeInteger(sequence) || sequence < 1) throw new DeadLetterError(`"${sequence}" is not a dead-letter sequence (a positive integer from \`dlq list\`)`, 'invalid-sequence');
  const stream = bus.topology.streams.deadLetters;
  const stored = await bus.jsm.streams.getMessage(stream, { seq: sequence });
  if (!stored) {
    const { state } = await bus.jsm.streams.info(stream);
    throw new DeadLetterError(`no dead letter #${sequence} (the dead-letter stream holds ${state.messages} message(s), sequences ${state.first_seq}..${state.last_seq}; it may have been redriven or purged)`, 'not-found');
  }
  return storedToDeadLetter(stored, bus.topology);
}

/** The other dead letters of the same original message (one per consumer that dead-lettered it). */
export async function deadLetterSiblings(bus: Bus, letter: DeadLetter): Promise<DeadLetter[]> {
  if (!letter.originalSequence) return [];
  const { letters } = await readDeadLetters(bus, { limit: DEAD_LETTERS_PER_PAGE_MAX });
  return letters.filter((l) => l.sequence !== letter.sequence && l.originalStream === letter.originalStream && l.originalSequence === letter.originalSequence);
}

export interface RedriveResult {
  deadLetter: number;
  consumer: string;
  republishedTo: string;
  sequence: number;
  duplicate: boolean;
  /** Other dead letters of the same original message (one per consumer) removed with it. */
  alsoRemoved: number[];
}

/** Headers that describe the dead-lettering itself; the count is kept so a failed redrive can grow it. */
const DEAD_LETTER_DESCRIPTION = new Set<string>([Headers.deadLetterReason, Headers.deadLetterSubject, Headers.deadLetterStream, Headers.deadLetterSequence, Headers.deadLetterConsumer, Headers.deadLetterDeliveries, RedriveHeaders.redrivenFrom, RedriveHeaders.redriveCount].map((h) => h.toLowerCase()));

/**
 * Republishes a dead letter to its original subject with its original headers, then removes
 * it (and the copies other consumers dead-lettered for the same original message). A message
 * that still fails comes back as a new dead letter with its count grown. Event bodies that
 * still do not decode are refused unless `force`: redriving them could only fail again.
 */
export async function redriveDeadLetter(bus: Bus, letter: DeadLetter, options: { force?: boolean; siblings?: DeadLetter[] } = {}): Promise<RedriveResult> {
  if (!letter.originalSubject) throw new DeadLetterError(`dead letter #${letter.sequence} has no ${Headers.deadLetterSubject} header: nothing to redrive to`, 'no-subject');
  if (letter.originalStream === bus.topology.streams.events && !options.force) {
    const decoded = decodeEvent(letter.data);
    if (!decoded.ok) throw new DeadLetterError(`dead letter #${letter.sequence} still does not decode (${decoded.reason}); not redriven, nothing changed. Fix the producer or pass --force.`, 'undecodable');
  }
  const h = natsHeaders();
  for (const [key, values] of Object.entries(letter.headers)) {
    if (DEAD_LETTER_DESCRIPTION.has(key.toLowerCase())) continue;
    for (const value of values) h.append(key, value);
  }
  h.set(Headers.deadLetterCount, String(letter.count));
  h.set(RedriveHeaders.redriveCount, String(letter.count));
  h.set(RedriveHeaders.redrivenFrom, `${bus.topology.streams.deadLetters}:${letter.sequence}`);
  // The event's own id would be dropped as a duplicate inside the bus window: the redrive has its own.
  const ack = await bus.js.publish(letter.originalSubject, letter.data, { headers: h, msgID: `redrive-${bus.topology.streams.deadLetters}-${letter.sequence}` });
  const removed: number[] = [];
  for (const copy of [letter, ...(options.siblings ?? [])]) {
    await bus.jsm.streams.deleteMessage(bus.topology.streams.deadLetters, copy.sequence, false).catch(() => false);
    if (copy !== letter) removed.push(copy.sequence);
  }
  return { deadLetter: letter.sequence, consumer: letter.consumer, republishedTo: letter.originalSubject, sequence: ack.seq, duplicate: ack.duplicate, alsoRemoved: removed };
}

/** Groups dead letters by original message: one redrive per original, whatever the consumers. */
export function groupByOriginal(letters: DeadLetter[]): DeadLetter[][] {
  const groups = new Map<string, DeadLetter[]>();
  for (const letter of letters) {
    const key = letter.originalStream && letter.originalSequence ? `${letter.originalStream}:${letter.originalSequence}` : `dlq:${letter.sequence}`;
    const group = groups.get(key) ?? [];
    group.push(letter);
    groups.set(key, group);
  }
  return [...groups.values()];
}

export async function purgeDeadLetters(bus: Bus, filter: { consumer?: string } = {}): Promise<number> {
  const { streams, subjects } = bus.topology;
  const response = await bus.jsm.streams.purge(streams.deadLetters, filter.consumer ? { filter: subjects.deadLetter(filter.consumer) } : undefined);
  return response.purged;
}

export async function countDeadLetters(bus: Bus, filter: { consumer?: string } = {}): Promise<number> {
  const { streams, subjects } = bus.topology;
  const info = await bus.jsm.streams.info(streams.deadLetters, filter.consumer ? { subjects_filter: subjects.deadLetter(filter.consumer) } : undefined);
  if (!filter.consumer) return info.state.messages;
  return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}
