/**
 * Proves the tax allocation rules of tax.ts: the largest-remainder split sums exactly to the total
 * and keeps every share within one minor unit of its exact part (a seeded property test, negative
 * credit lines included), tax per rate is allocated to lines so each rate's line taxes sum to the
 * invoice's tax of that rate, and a tax-inclusive amount splits into net + taxes = gross.
 */
import { describe, expect, it } from 'vitest';
import { allocateLargestRemainder, allocateTaxToLines, computeTotals, splitTaxIncluded, taxOnNetMinor } from './tax';
import { Money } from './money';

/** A small deterministic generator (mulberry32), so a failure names its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('largest remainder', () => {
  it('splits 10 over three equal weights as 4, 3, 3 (earliest first on ties)', () => {
    expect(allocateLargestRemainder(10n, [1n, 1n, 1n])).toEqual([4n, 3n, 3n]);
  });

  it('gives the leftover units to the largest remainders, not the largest weights', () => {
    // Exact parts of 100 over 1:2:3:… are 16.67, 33.33, 50.00 → 17, 33, 50.
    expect(allocateLargestRemainder(100n, [1n, 2n, 3n])).toEqual([17n, 33n, 50n]);
  });

  it('gives a negative (credit) weight a negative share and still sums exactly', () => {
    const shares = allocateLargestRemainder(19n, [100n, 5n, -10n]);
    expect(shares.reduce((a, b) => a + b, 0n)).toBe(19n);
    expect(shares[2]! < 0n).toBe(true);
    expect(shares).toEqual([20n, 1n, -2n]);
  });

  it('sums exactly and stays within one unit of every exact part, for 2,000 random cases', () => {
    for (let seed = 1; seed <= 2000; seed++) {
      const next = random(seed);
      const count = 1 + Math.floor(next() * 12);
      const weights = Array.from({ length: count }, () => BigInt(Math.floor(next() * 2_000_000) - (next() < 0.2 ? 2_500_000 : 0)));
      const sum = weights.reduce((a, b) => a + b, 0n);
      if (sum <= 0n) continue;
      const total = BigInt(Math.floor(next() * 500_000));
      const shares = allocateLargestRemainder(total, weights);
      expect(shares.reduce((a, b) => a + b, 0n), `seed ${seed}`).toBe(total);
      for (const [i, share] of shares.entries()) {
        // |share − total × w / sum| < 1  ⇔  |share × sum − total × w| < sum
        const gap = share * sum - total * weights[i]!;
        expect(gap < sum && gap > -sum, `seed ${seed} line ${i}`).toBe(true);
      }
    }
  });

  it('refuses weights that do not sum to a positive number when there is something to split', () => {
    expect(() => allocateLargestRemainder(5n, [1n, -1n])).toThrow(/summing to 0/);
    expect(allocateLargestRemainder(0n, [1n, -1n])).toEqual([0n, 0n]);
  });
});

describe('tax per line', () => {
  it('allocates each rate of an invoice to its lines so the line taxes sum to the invoice tax of that rate', () => {
    // Three lines of 0.01 taxed 20 % and 7 %: the invoice tax is round(0.03 × 0.2) = 0.01 and round(0.03 × 0.07) = 0.00.
    const lines = [1n, 1n, 1n].map((amountMinor) => ({ amountMinor, taxable: true }));
    const totals = computeTotals(lines, [{ name: 'VAT', rate: '0.2' }, { name: 'Levy', rate: '0.07' }], [], 0, 'USD');
    expect(totals.taxes.map((t) => t.amountMinor)).toEqual([1n, 0n]);
    const perLine = allocateTaxToLines(lines, totals.taxes);
    expect(perLine.map((l) => l.map((t) => t.amountMinor))).toEqual([[1n, 0n], [0n, 0n], [0n, 0n]]);
  });

  it('sums to the invoice tax for random invoices with SLA-credit lines, in USD, JPY and KWD', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const next = random(seed * 7919);
      const currency = (['USD', 'JPY', 'KWD'] as const)[seed % 3]!;
      const lines = Array.from({ length: 1 + Math.floor(next() * 9) }, () => ({ amountMinor: BigInt(Math.floor(next() * 1_000_000)), taxable: true }));
      const charged = lines.reduce((a, l) => a + l.amountMinor, 0n);
      lines.push({ amountMinor: -(charged / 10n), taxable: true });
      const rates = [{ name: 'VAT', rate: String(Math.floor(next() * 2500) / 10000) }, { name: 'City', rate: '0.0125' }];
      const totals = computeTotals(lines, rates, [], 0, currency);
      const perLine = allocateTaxToLines(lines, totals.taxes);
      for (const [r, tax] of totals.taxes.entries()) {
        expect(perLine.reduce((sum, line) => sum + line[r]!.amountMinor, 0n), `seed ${seed} rate ${r}`).toBe(tax.amountMinor);
      }
      expect(perLine[perLine.length - 1]!.every((t) => t.amountMinor <= 0n)).toBe(true);
    }
  });

  it('gives every line zero when the taxable base is not positive or a line is not taxable', () => {
    expect(allocateTaxToLines([{ amountMinor: 500n, taxable: false }], [{ name: 'VAT', rate: '0.2', amountMinor: 0n }])).toEqual([[{ name: 'VAT', rate: '0.2', amountMinor: 0n }]]);
    const mixed = allocateTaxToLines([{ amountMinor: 500n, taxable: true }, { amountMinor: 500n, taxable: false }], [{ name: 'VAT', rate: '0.2', amountMinor: 100n }]);
    expect(mixed.map((l) => l[0]!.amountMinor)).toEqual([100n, 0n]);
  });
});

describe('tax-included split', () => {
  it('splits 120.00 at 20 % into 100.00 net and 20.00 tax', () => {
    expect(splitTaxIncluded(12000n, [{ name: 'VAT', rate: '0.2' }], 'USD')).toEqual({ netMinor: 10000n, taxes: [{ name: 'VAT', rate: '0.2', amountMinor: 2000n }] });
  });

  it('rounds each rate once, half away from zero, and keeps net + taxes = gross', () => {
    // 1.25 × 0.2 / 1.2 = 0.208333… → 0.21; net 1.04.
    expect(splitTaxIncluded(125n, [{ name: 'VAT', rate: '0.2' }], 'USD')).toEqual({ netMinor: 104n, taxes: [{ name: 'VAT', rate: '0.2', amountMinor: 21n }] });
    for (let gross = 0n; gross < 3000n; gross += 7n) {
      const split = splitTaxIncluded(gross, [{ name: 'A', rate: '0.19' }, { name: 'B', rate: '0.025' }], 'KWD');
      expect(split.netMinor + split.taxes.reduce((a, t) => a + t.amountMinor, 0n)).toBe(gross);
      for (const t of split.taxes) expect(t.amountMinor).toBe(BigInt(new Money(String(gross)).times(t.rate).dividedBy('1.215').toDecimalPlaces(0, Money.ROUND_HALF_UP).toString()));
    }
  });

  it('taxes a net amount by the invoice rule (rounded once)', () => {
    expect(taxOnNetMinor(1013n, '0.2', 'USD')).toBe(203n); // 10.13 × 0.2 = 2.026 → 2.03
    expect(() => taxOnNetMinor(-1n, '0.2', 'USD')).toThrow();
  });
});
