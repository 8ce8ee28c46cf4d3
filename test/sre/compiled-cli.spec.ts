/**
 * Proves that `npm run replay` runs compiled ahead of time (scripts/compile.mjs bundles the CLI
 * with esbuild and runs it): the compiled program gets its own arguments and knows every
 * registered projection. A broken bundle (a missing module, a decorator esbuild cannot compile)
 * fails here rather than on an operator's machine.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { replayableProjections } from '../../apps/fastgpu/src/cli/replay.registry';

const run = promisify(execFile);

describe('compiled replay CLI', () => {
  it('is what npm run replay starts, and answers --help with every projection', async () => {
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.replay).toMatch(/scripts\/compile\.mjs apps\/fastgpu\/src\/cli\/replay\.cli\.ts$/);
    const args = scripts.replay!.split(' ').slice(1);
    const { stdout } = await run(process.execPath, [...args, '--help'], { timeout: 60_000 });
    expect(stdout).toContain('npm run replay -- reconcile');
    for (const name of Object.keys(replayableProjections)) expect(stdout).toContain(name);
  });
});
