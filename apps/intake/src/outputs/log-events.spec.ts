/**
 * Proves how a LOGS message becomes a Server-Sent Event: index and attempt come from the
 * subject, the frame carries the stream sequence as its id and the kind as its event, the data
 * is one JSON line whatever the text holds (newlines, "data:" look-alikes, invalid UTF-8 as
 * U+FFFD), and a message the agent would not write (another subject, an unknown kind, a bad
 * offset) yields no event.
 */
import { describe, expect, it } from 'vitest';
import { attemptOfSubject, logEventOf, sseFrame } from './log-events';

describe('log events', () => {
  it('reads index and attempt from the subject', () => {
    expect(attemptOfSubject('fastgpu.logs.acme.job-1.12.3')).toEqual({ subtaskIndex: 12, attempt: 3 });
    expect(attemptOfSubject('fastgpu.evt.acme.job-1.12.3')).toBeUndefined();
    expect(attemptOfSubject('fastgpu.logs.acme.job-1.x.3')).toBeUndefined();
    expect(attemptOfSubject('fastgpu.logs.acme.job-1.1.0')).toBeUndefined();
  });

  it('frames one event per message, the data on one line', () => {
    const event = logEventOf({ seq: 42, subject: 'p.logs.acme.job-1.2.1', data: new Uint8Array([...new TextEncoder().encode('a\n\ndata: x\n'), 0xff]), kind: 'stdout', offset: '17' })!;
    expect(event).toMatchObject({ sequence: 42, subtaskIndex: 2, attempt: 1, kind: 'stdout', offset: 17, text: 'a\n\ndata: x\n\ufffd' });
    const frame = sseFrame(event);
    expect(frame.split('\n')).toEqual(['id: 42', 'event: stdout', `data: ${JSON.stringify({ subtask: 2, attempt: 1, kind: 'stdout', offset: 17, text: 'a\n\ndata: x\n\ufffd' })}`, '', '']);
  });

  it('skips what the agent does not write', () => {
    const base = { seq: 1, subject: 'p.logs.acme.job-1.2.1', data: new Uint8Array(), offset: '0' };
    expect(logEventOf({ ...base, kind: 'stdin' })).toBeUndefined();
    expect(logEventOf({ ...base, kind: undefined })).toBeUndefined();
    expect(logEventOf({ ...base, kind: 'end', offset: '-1' })).toBeUndefined();
    expect(logEventOf({ ...base, subject: 'p.other.acme.job-1.2.1', kind: 'end' })).toBeUndefined();
  });
});
