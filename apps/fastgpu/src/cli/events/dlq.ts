import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import type { JsMsg, StoredMsg } from '@nats-io/jetstream';
import { decodeEvent, Headers, parseJson, peekType } from '@fastgpu/contracts';
import type { Bus } from '@fastgpu/messaging';
import { CliError, readLog, streamBounds } from './log-reader';

/** Headers a redrive adds: which dead letter it came from and how many times it had failed. */
export const RedriveHeaders = {
  redrivenFrom: 'Fastgpu-Redriven-From',
  redriveCount: 'Fastgpu-Redrive-Count',
} as const;

/** Dead letters handled by one `redrive --all` or listed by `list` at most. */
export const DEAD_LETTERS_PER_COMMAND_MAX = 10_000;

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

export function toDeadLetter(m: { seq: number; time: Date; subject: string; headers?: MsgHdrs; data: Uint8Array }, topology: Bus['topology']): DeadLetter {
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

export async function listDeadLetters(bus: Bus, filter: { consumer?: string } = {}): Promise<DeadLetter[]> {
  const { streams, subjects } = bus.topology;
  const letters: DeadLetter[] = [];
  await readLog(bus, {
    stream: streams.deadLetters,
    filterSubject: filter.consumer ? subjects.deadLetter(filter.consumer) : undefined,
    onMessage: (m: JsMsg) => {
      letters.push(toDeadLetter({ seq: m.seq, time: new Date(Math.floor(m.info.timestampNanos / 1e6)), subject: m.subject, headers: m.headers, data: m.data }, bus.topology));
      return letters.length < DEAD_LETTERS_PER_COMMAND_MAX;
    },
  });
  return letters;
}

export async function getDeadLetter(bus: Bus, sequence: number): Promise<DeadLetter> {
  if (!Number.isSafeInteger(sequence) || sequence < 1) throw new CliError(`"${sequence}" is not a dead-letter sequence (a positive integer from \`dlq list\`)`, 2);
  const stream = bus.topology.streams.deadLetters;
  const bounds = await streamBounds(bus, stream);
  let stored: StoredMsg | null;
  try {
    stored = await bus.jsm.streams.getMessage(stream, { seq: sequence });
  } catch (error) {
    if (/no message found|not found/i.test((error as Error).message)) stored = null;
    else throw error;
  }
  if (!stored) throw new CliError(`no dead letter #${sequence} (the dead-letter stream holds ${bounds.messages} message(s), sequences ${bounds.first}..${bounds.last}; it may have been redriven or purged)`, 2);
  return toDeadLetter({ seq: stored.seq, time: stored.time, subject: stored.subject, headers: stored.header, data: stored.data }, bus.topology);
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
export async function redrive(bus: Bus, letter: DeadLetter, options: { force?: boolean; siblings?: DeadLetter[] } = {}): Promise<RedriveResult> {
  if (!letter.originalSubject) throw new CliError(`dead letter #${letter.sequence} has no ${Headers.deadLetterSubject} header: nothing to redrive to`, 2);
  if (letter.originalStream === bus.topology.streams.events && !options.force) {
    const decoded = decodeEvent(letter.data);
    if (!decoded.ok) throw new CliError(`dead letter #${letter.sequence} still does not decode (${decoded.reason}); not redriven, nothing changed. Fix the producer or pass --force.`, 3);
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
  if (!filter.consumer) return (await streamBounds(bus, streams.deadLetters)).messages;
  const info = await bus.jsm.streams.info(streams.deadLetters, { subjects_filter: subjects.deadLetter(filter.consumer) });
  return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}
