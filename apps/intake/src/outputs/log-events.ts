import { logKindSchema, type LogKind } from '@fastgpu/contracts';

/**
 * A LOGS message as a Server-Sent Event: `id` is its stream sequence (a client reconnecting
 * with `Last-Event-ID` resumes after it), `event` its kind (stdout, stderr, truncated, end),
 * `data` one JSON line with the sub-task index and attempt (read from the subject), the byte
 * offset and the text (the program's bytes as UTF-8; invalid sequences become U+FFFD). Pure.
 */
export interface LogEvent {
  sequence: number;
  subtaskIndex: number;
  attempt: number;
  kind: LogKind;
  offset: number;
  text: string;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/** Index and attempt from `<prefix>.logs.<tenantId>.<jobId>.<subtaskIndex>.<attempt>`, or undefined for any other subject. */
export function attemptOfSubject(subject: string): { subtaskIndex: number; attempt: number } | undefined {
  const tokens = subject.split('.');
  if (tokens.length < 6 || tokens[tokens.length - 5] !== 'logs') return undefined;
  const subtaskIndex = Number(tokens[tokens.length - 2]);
  const attempt = Number(tokens[tokens.length - 1]);
  return Number.isSafeInteger(subtaskIndex) && subtaskIndex >= 0 && Number.isSafeInteger(attempt) && attempt > 0 ? { subtaskIndex, attempt } : undefined;
}

/** The event of a stored LOGS message, or undefined when the message is not one the agent writes. */
export function logEventOf(message: { seq: number; subject: string; data: Uint8Array; kind: string | undefined; offset: string | undefined }): LogEvent | undefined {
  const where = attemptOfSubject(message.subject);
  const kind = logKindSchema.safeParse(message.kind);
  const offset = Number(message.offset ?? 0);
  if (!where || !kind.success || !Number.isSafeInteger(offset) || offset < 0) return undefined;
  return { sequence: message.seq, ...where, kind: kind.data, offset, text: decoder.decode(message.data) };
}

export function sseFrame(event: LogEvent): string {
  const data = JSON.stringify({ subtask: event.subtaskIndex, attempt: event.attempt, kind: event.kind, offset: event.offset, text: event.text });
  return `id: ${event.sequence}\nevent: ${event.kind}\ndata: ${data}\n\n`;
}
