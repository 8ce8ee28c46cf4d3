/**
 * Proves how program output becomes log messages: whole lines packed up to the size limit, a
 * long line cut at the limit without splitting a UTF-8 character, a trailing partial line held
 * back until it is flushed, and — for any input and any way of reading it in pieces — the
 * chunks, concatenated, are exactly the bytes written, each within the limit (fast-check).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { takeChunks } from './log-chunks';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const texts = (source: Uint8Array, chunks: Array<{ start: number; end: number }>): string[] => chunks.map((c) => new TextDecoder().decode(source.subarray(c.start, c.end)));

describe('takeChunks', () => {
  it('packs whole lines into a message and holds a partial last line', () => {
    const source = bytes('a\nbb\nccc\ndd');
    const { chunks, consumed } = takeChunks(source, 8, false);
    expect(texts(source, chunks)).toEqual(['a\nbb\n', 'ccc\n']);
    expect(consumed).toBe(9);
    expect(texts(source, takeChunks(source, 8, true).chunks)).toEqual(['a\nbb\n', 'ccc\n', 'dd']);
  });

  it('cuts a line longer than a message at the limit, on a character boundary', () => {
    const source = bytes('ééééé\n');
    // 'é' is two bytes: a cut at 5 would split the third one, so it backs off to 4.
    const { chunks } = takeChunks(source, 5, false);
    expect(chunks[0]).toEqual({ start: 0, end: 4 });
    expect(texts(source, chunks).join('')).toBe('ééééé\n');
  });

  it('returns nothing for nothing, and refuses a limit too small for a character', () => {
    expect(takeChunks(new Uint8Array(0), 16, true)).toEqual({ chunks: [], consumed: 0 });
    expect(() => takeChunks(bytes('x'), 3, true)).toThrow();
  });

  it('for any output read in any pieces, ships every byte once, in order, within the limit', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.integer({ min: 4, max: 40 }), fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 20 }), (text, limit, reads) => {
        const source = bytes(text);
        const shipped: number[] = [];
        let offset = 0;
        let available = 0;
        for (const read of [...reads, source.length]) {
          available = Math.min(source.length, available + read);
          const last = available === source.length;
          const { chunks, consumed } = takeChunks(source.subarray(offset, available), limit, last);
          for (const c of chunks) {
            expect(c.end - c.start).toBeLessThanOrEqual(limit);
            expect(c.end).toBeGreaterThan(c.start);
            shipped.push(...source.subarray(offset + c.start, offset + c.end));
          }
          offset += consumed;
          if (last) break;
        }
        expect(Uint8Array.from(shipped)).toEqual(source);
      }),
    );
  });
});
