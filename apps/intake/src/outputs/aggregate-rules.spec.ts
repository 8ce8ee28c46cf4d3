/**
 * The aggregation rules over results read in arbitrary chunks: concat keeps bytes as they are;
 * jsonl keeps JSON lines in order, one newline each, and names the sub-task and line of one that
 * is not JSON.
 */
import { describe, expect, it } from 'vitest';
import { aggregateBytes, AggregationError, resultTransform } from './aggregate-rules';

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/** Feeds one result in pieces of `size` bytes. */
function inPieces(rule: 'concat' | 'jsonl', result: Uint8Array, size: number): string {
  const transform = resultTransform(rule, 0);
  const out: Uint8Array[] = [];
  for (let at = 0; at < result.length; at += size) out.push(...transform.push(result.subarray(at, at + size)));
  out.push(...transform.end());
  return text(Buffer.concat(out));
}

describe('concat', () => {
  it('joins the results byte for byte in sub-task order', () => {
    const results = [bytes('a\n'), new Uint8Array([0, 255, 1]), bytes(''), bytes('é')];
    expect(Buffer.from(aggregateBytes('concat', results))).toEqual(Buffer.concat(results));
  });
});

describe('jsonl', () => {
  it('keeps each JSON line, in order, ending each with a newline, whatever the chunking', () => {
    const result = bytes('{"a":1}\r\n\n[1,2]\n"é"');
    for (const size of [1, 2, 3, 7, 100]) expect(inPieces('jsonl', result, size)).toBe('{"a":1}\n[1,2]\n"é"\n');
    expect(text(aggregateBytes('jsonl', [bytes('{"i":0}'), bytes('{"i":1}\n'), bytes('')]))).toBe('{"i":0}\n{"i":1}\n');
  });

  it('fails on a line that is not JSON, naming the sub-task and the line', () => {
    expect(() => aggregateBytes('jsonl', [bytes('{"i":0}\n'), bytes('{"i":1}\nnot json\n')])).toThrow(new AggregationError('sub-task 1, line 2: not a JSON value'));
    expect(() => aggregateBytes('jsonl', [new Uint8Array([0x22, 0xff, 0x22])])).toThrow(/not a JSON value/);
  });
});
