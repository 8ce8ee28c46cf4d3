/**
 * Proves the rebuild's key filter is safe and useful: every added key is reported as possibly
 * present (a miss would make the rebuild insert a row that exists), and keys never added are
 * mostly reported absent (about 1% false positives at ~10 bits per key).
 */
import { describe, expect, it } from 'vitest';
import { KeyFilter } from './key-filter';

describe('KeyFilter', () => {
  const added = Array.from({ length: 100_000 }, (_, i) => `s:j${i}s${i % 7}:${1 + (i % 3)}`);

  it('never forgets an added key', () => {
    const filter = new KeyFilter(20);
    for (const key of added) filter.add(key);
    expect(added.filter((key) => !filter.mightContain(key))).toEqual([]);
  });

  it('answers absent for almost every key never added', () => {
    const filter = new KeyFilter(20);
    for (const key of added) filter.add(key);
    const others = Array.from({ length: 100_000 }, (_, i) => `s:j${i}s${i % 7}:${4 + (i % 3)}`);
    const falsePositives = others.filter((key) => filter.mightContain(key)).length;
    expect(falsePositives / others.length).toBeLessThan(0.02);
    expect(new KeyFilter(20).mightContain(added[0]!)).toBe(false);
  });
});
