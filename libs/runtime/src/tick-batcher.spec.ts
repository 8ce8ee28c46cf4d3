/**
 * Proves TickBatcher: calls made in one event-loop turn run as one batch in arrival order,
 * later turns get their own batch, one item's failure fails only its caller, and a batch never
 * exceeds maxBatch.
 */
import { describe, expect, it } from 'vitest';
import { TickBatcher } from './tick-batcher';

describe('TickBatcher', () => {
  it('runs the calls of one turn as one batch and answers each caller with its own result', async () => {
    const batches: number[][] = [];
    const batcher = new TickBatcher<number, number>((items) => {
      batches.push([...items]);
      return items.map((n) => (n < 0 ? Promise.reject(new Error(`negative ${n}`)) : Promise.resolve(n * 10)));
    });
    const first = await Promise.allSettled([batcher.add(1), batcher.add(-2), batcher.add(3)]);
    expect(batches).toEqual([[1, -2, 3]]);
    expect(first[0]).toEqual({ status: 'fulfilled', value: 10 });
    expect(first[1]).toMatchObject({ status: 'rejected', reason: { message: 'negative -2' } });
    expect(first[2]).toEqual({ status: 'fulfilled', value: 30 });
    expect(await batcher.add(4)).toBe(40);
    expect(batches).toEqual([[1, -2, 3], [4]]);
  });

  it('splits at maxBatch and fails every caller when run throws', async () => {
    const sizes: number[] = [];
    const batcher = new TickBatcher<number, number>((items) => {
      sizes.push(items.length);
      return items.map((n) => Promise.resolve(n));
    }, 4);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.add(i)));
    expect(results).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(sizes).toEqual([4, 4, 2]);
    const broken = new TickBatcher<number, number>(() => {
      throw new Error('database down');
    });
    const settled = await Promise.allSettled([broken.add(1), broken.add(2)]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
  });
});
