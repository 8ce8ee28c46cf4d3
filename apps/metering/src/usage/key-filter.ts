/**
 * A Bloom filter of strings: `mightContain` is never false for an added key, and true for a key
 * never added with a small probability (about 1% at 3.5M keys with the default size, rising past
 * it). Fixed memory whatever the number of keys: 2^25 bits = 4 MB.
 *
 * The usage rebuild remembers the allocation keys it wrote, so that a batch looks up in Postgres
 * only keys it may have written before (a false positive costs a look-up, never a wrong row).
 */
export const KEY_FILTER_BITS_LOG2 = 25;
/** Bits set per key. */
const HASHES = 7;

export class KeyFilter {
  private readonly words: Uint32Array;
  private readonly mask: number;

  constructor(bitsLog2 = KEY_FILTER_BITS_LOG2) {
    this.words = new Uint32Array(2 ** (bitsLog2 - 5));
    this.mask = 2 ** bitsLog2 - 1;
  }

  add(key: string): void {
    const [first, step] = hashPair(key);
    let a = first;
    for (let i = 0; i < HASHES; i++, a = (a + step) >>> 0) {
      const bit = a & this.mask;
      this.words[bit >>> 5]! |= 1 << (bit & 31);
    }
  }

  mightContain(key: string): boolean {
    const [first, step] = hashPair(key);
    let a = first;
    for (let i = 0; i < HASHES; i++, a = (a + step) >>> 0) {
      const bit = a & this.mask;
      if ((this.words[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

/** Two independent 32-bit hashes of a string (FNV-1a, and a multiply-xorshift mix), for double hashing. */
function hashPair(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  // An odd step visits distinct bits for every i.
  return [a >>> 0, (b | 1) >>> 0];
}
