/**
 * Proves the console's event-stream parser reads what the live feed and the log routes send, however
 * the network cuts it: messages split mid-line or mid-field across chunks, CRLF line ends, comment
 * lines (the feed's heartbeat) ignored, multi-line data joined, and the last id kept for
 * Last-Event-ID. A message is only answered once its blank line has arrived.
 */
import { describe, expect, it } from 'vitest';
import { SseParser } from './sse';

const frame = (seq: number, type: string, data: object) => `id: ${seq}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;

describe('SseParser', () => {
  it('answers each message once its blank line arrives, whatever the chunking', () => {
    const text = ': heartbeat\n\n' + frame(7, 'JobSubmitted', { seq: 7, jobId: 'j-1' }) + frame(8, 'SubtaskPlaced', { seq: 8, jobId: 'j-1' });
    for (const size of [1, 2, 3, 5, 8, 13, text.length]) {
      const parser = new SseParser();
      const messages = [];
      for (let i = 0; i < text.length; i += size) messages.push(...parser.feed(text.slice(i, i + size)));
      expect(messages).toEqual([
        { id: '7', event: 'JobSubmitted', data: JSON.stringify({ seq: 7, jobId: 'j-1' }) },
        { id: '8', event: 'SubtaskPlaced', data: JSON.stringify({ seq: 8, jobId: 'j-1' }) },
      ]);
    }
  });

  it('holds a message back until its blank line', () => {
    const parser = new SseParser();
    expect(parser.feed('id: 1\nevent: x\ndata: {}\n')).toEqual([]);
    expect(parser.feed('\n')).toEqual([{ id: '1', event: 'x', data: '{}' }]);
  });

  it('reads CRLF line ends, joins data lines, defaults the event type and keeps the last id', () => {
    const parser = new SseParser();
    expect(parser.feed('id: 3\r\ndata: a\r\ndata: b\r\n\r\ndata:c\n\n')).toEqual([
      { id: '3', event: 'message', data: 'a\nb' },
      { id: '3', event: 'message', data: 'c' },
    ]);
  });

  it('ignores comments and blank lines that end no message', () => {
    const parser = new SseParser();
    expect(parser.feed(': keep-alive\n\n\n: another\n\n')).toEqual([]);
  });
});
