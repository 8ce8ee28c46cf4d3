/**
 * `npm run nemesis -- --seed S --minutes M [--instances N] [--converge-seconds C]`: one seeded
 * nemesis run (test/nemesis/nemesis.ts); several seeds with `--seed 1,2,3`. Prints each seed, its
 * faults, the history's counts and every invariant by name; exits 1 when any invariant fails.
 */
import { parseArgs } from 'node:util';
import { runNemesis } from './nemesis';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: String(Date.now() % 100_000) },
    minutes: { type: 'string', default: '1' },
    instances: { type: 'string', default: '2' },
    'converge-seconds': { type: 'string', default: '180' },
    json: { type: 'boolean', default: false },
  },
});
const seeds = values.seed.split(',').map((s) => Number(s.trim()));
if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error('--seed: non-negative integers, comma-separated');
let failed = 0;
for (const seed of seeds) {
  const result = await runNemesis({ seed, chaosMs: Math.round(Number(values.minutes) * 60_000), instances: Number(values.instances), convergeMs: Number(values['converge-seconds']) * 1000 });
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write(`seed ${seed}: ${result.ok ? 'PASS' : 'FAIL'}; ${result.history.operations} operations (acknowledged ${JSON.stringify(result.history.acknowledged)}, refused ${JSON.stringify(result.history.refused)}); ${result.faults.length} faults (${Object.entries(result.faults.reduce<Record<string, number>>((acc, f) => ({ ...acc, [f.kind]: (acc[f.kind] ?? 0) + 1 }), {})).map(([k, n]) => `${k} ×${n}`).join(', ')}); converged ${result.convergedInMs === null ? 'never' : `in ${result.convergedInMs} ms`}\n`);
    for (const invariant of result.invariants) process.stdout.write(`  ${invariant.ok ? 'ok  ' : 'FAIL'} ${invariant.name}${invariant.ms === undefined ? '' : ` (${invariant.ms} ms)`}: ${invariant.detail}\n`);
    if (!result.ok && result.tails) for (const [name, tail] of Object.entries(result.tails)) if (tail.trim()) process.stdout.write(`  --- ${name} (last output)\n${tail.trim().split('\n').slice(-8).map((l) => `    ${l}`).join('\n')}\n`);
  }
  if (!result.ok) failed++;
}
process.stdout.write(`seeds ${seeds.join(',')}: ${seeds.length - failed} passed, ${failed} failed (rerun one with npm run nemesis -- --seed <seed>)\n`);
process.exit(failed ? 1 : 0);
