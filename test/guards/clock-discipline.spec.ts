/**
 * Proves the suite keeps its clocks honest, cheaply, on every run: a test that runs against the
 * real services (createTestEnvironment: real NATS stream times, real PostgreSQL now()) may not
 * pin "now" to a written date. Such a test passes on the day it is written and fails weeks later,
 * when the real stream receipt times drift away from the pinned date (the lateness horizon,
 * grace periods, liveness). Its instants come from the real now, or from `logNow(bus)` (the
 * log's own clock) with the service clock pinned to that value. Pure unit tests (no
 * createTestEnvironment) may pin any date they like.
 *
 * The full proof is `npm run test:future` (every clock a year ahead); this guard catches the
 * common shape of the mistake without running anything.
 */
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** A written instant: Date.UTC(…), Date.parse('…'), new Date('…' or a number literal). */
const WRITTEN_INSTANT = String.raw`(?:Date\.UTC\(|Date\.parse\(\s*['"\x60]|new Date\(\s*(?:['"\x60]|\d))`;
/** `const NOW = <written instant>` (any capitalisation of now/today/clock names). */
const PINNED_NOW = new RegExp(String.raw`\b(?:const|let|var)\s+(?:NOW|now|NOW_MS|nowMs|TODAY|today)\s*(?::\s*\w+\s*)?=\s*${WRITTEN_INSTANT}`);
/** A clock whose now() returns a written instant directly. */
const PINNED_CLOCK = new RegExp(String.raw`now\s*:\s*\(\)\s*=>\s*${WRITTEN_INSTANT}`);

/** The reasons `source` breaks the rule, empty when it keeps it. */
export function clockViolations(source: string): string[] {
  if (!/\bcreateTestEnvironment\s*\(/.test(source)) return [];
  const reasons: string[] = [];
  source.split('\n').forEach((line, index) => {
    if (PINNED_NOW.test(line)) reasons.push(`line ${index + 1}: "now" pinned to a written date in a test on real services: ${line.trim()}`);
    if (PINNED_CLOCK.test(line)) reasons.push(`line ${index + 1}: a service clock pinned to a written date: ${line.trim()}`);
  });
  return reasons;
}

describe('clock discipline', () => {
  it('flags a pinned now in a test on real services, and accepts the log clock or the real now', () => {
    const pinned = `const env = await createTestEnvironment();\nconst NOW = Date.UTC(2026, 9, 24, 12);\nruntime = await createRuntime(env.config, { clock: { now: () => new Date(NOW) } });`;
    expect(clockViolations(pinned)).toHaveLength(1);
    expect(clockViolations(`createTestEnvironment();\nconst clock = { now: () => new Date('2026-10-24T12:00:00Z') };`)).toHaveLength(1);
    expect(clockViolations(`createTestEnvironment();\nlet nowMs: number = Date.parse('2026-10-24');`)).toHaveLength(1);
    expect(clockViolations(`createTestEnvironment();\nNOW = await logNow(env.bus);\nconst clock = { now: () => new Date(NOW) };`)).toEqual([]);
    expect(clockViolations(`createTestEnvironment();\nconst clock = { now: () => new Date() };\nconst start = Date.UTC(2026, 9, 24, 20, 17);`)).toEqual([]);
    // A pure unit test may pin its clock.
    expect(clockViolations(`const NOW = Date.UTC(2026, 9, 24, 12);`)).toEqual([]);
  });

  it('holds for every test file and test helper in the repository', () => {
    const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts'], { encoding: 'utf8' })
      .split('\n')
      .filter((file) => /(^|\/)(test|bench)\/|\.spec\.ts$/.test(file) && !file.endsWith('clock-discipline.spec.ts') && existsSync(file));
    expect(files.length).toBeGreaterThan(20);
    const violations = files.flatMap((file) => clockViolations(readFileSync(file, 'utf8')).map((reason) => `${file} ${reason}`));
    expect(violations).toEqual([]);
  });
});
