/**
 * The simulator's skewed clocks for fault runs: a node named in the skew file reads the machine's
 * clock plus its skew, the others the machine's; the file is read again while the fleet runs, and
 * a missing or malformed file skews nothing.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '@fastgpu/testing';
import { ClockSkewFile } from './clock-skew';

const HOUR_MS = 3_600_000;
const dir = mkdtempSync(path.join(tmpdir(), 'fastgpu-clock-skew-'));
const file = path.join(dir, 'skew.json');
let skew: ClockSkewFile | undefined;

afterEach(() => {
  skew?.stop();
  rmSync(file, { force: true });
});

/** The clock's offset from the machine's, to the nearest minute (the call itself takes a moment). */
const offsetMinutes = (clock: () => Date) => Math.round((clock().getTime() - Date.now()) / 60_000);

describe('ClockSkewFile', () => {
  it('skews the named node only, and follows the file as it changes', async () => {
    writeFileSync(file, JSON.stringify({ 'sim-a100-0': HOUR_MS }));
    skew = new ClockSkewFile(file);
    await skew.start();
    const a = skew.clockOf('sim-a100-0');
    const b = skew.clockOf('sim-a100-1');
    expect(offsetMinutes(a)).toBe(60);
    expect(offsetMinutes(b)).toBe(0);

    writeFileSync(file, JSON.stringify({ 'sim-a100-1': -10 * 60_000 }));
    await eventually(() => offsetMinutes(b) === -10, { timeoutMs: 10_000, message: 'the new skew was never read' });
    expect(offsetMinutes(a)).toBe(0);
  });

  it('skews nothing without a readable file or with values that are not numbers', async () => {
    skew = new ClockSkewFile(path.join(dir, 'missing.json'));
    await skew.start();
    expect(offsetMinutes(skew.clockOf('sim-a100-0'))).toBe(0);
    skew.stop();
    writeFileSync(file, JSON.stringify({ 'sim-a100-0': '3600000', 'sim-a100-1': null }));
    skew = new ClockSkewFile(file);
    await skew.start();
    expect(offsetMinutes(skew.clockOf('sim-a100-0'))).toBe(0);
    expect(offsetMinutes(skew.clockOf('sim-a100-1'))).toBe(0);
  });
});
