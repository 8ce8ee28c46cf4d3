/**
 * instantMs equals Date.parse on every input: canonical instants across centuries, month ends and
 * leap days (which it hands to Date.parse), and the forms it does not read itself (other
 * fraction lengths, offsets, no fraction, garbage, out-of-range fields).
 */
import { describe, expect, it } from 'vitest';
import { instantMs } from './gpu-time';

describe('instantMs', () => {
  it('equals Date.parse on canonical instants from year 100 to 9999, month ends and leap days included', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const lo = Date.UTC(100, 0, 1);
    const hi = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
    const samples = [Date.UTC(2024, 1, 29, 12), Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2026, 0, 28, 23, 59, 59, 999), 0, hi];
    for (let i = 0; i < 20_000; i++) samples.push(Math.floor(lo + random() * (hi - lo)));
    for (const ms of samples) {
      const iso = new Date(ms).toISOString();
      expect(instantMs(iso), iso).toBe(Date.parse(iso));
      expect(instantMs(iso), iso).toBe(ms);
    }
  });

  it('gives what Date.parse gives on every other form, NaN included', () => {
    const forms = [
      '2026-03-01T10:00:00Z',
      '2026-03-01T10:00:00.1Z',
      '2026-03-01T10:00:00.123456Z',
      '2026-03-01T10:00:00.000+02:00',
      '2026-03-01T24:00:00.000Z',
      '2026-02-30T10:00:00.000Z',
      '2026-13-01T10:00:00.000Z',
      '2026-00-01T10:00:00.000Z',
      '2026-03-00T10:00:00.000Z',
      '2026-03-01T10:60:00.000Z',
      '2026-03-01T10:00:60.000Z',
      '0050-03-01T10:00:00.000Z',
      '2026-03-01T10:00:00.00xZ',
      '2O26-03-01T10:00:00.000Z',
      '2026-03-01 10:00:00.000Z',
      '2026-03-01T10:00:00.000z',
      '',
      'not a time at all, 24 c',
    ];
    for (const iso of forms) expect(Object.is(instantMs(iso), Date.parse(iso)), iso).toBe(true);
  });
});
