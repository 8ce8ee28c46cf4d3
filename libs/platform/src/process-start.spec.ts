/**
 * Proves what deferOptimizingCompiler does to a real Node process (node --trace-opt, V8's own
 * report of what it optimizes): while deferred, a hot function is not optimized by TurboFan;
 * after resumeOptimizingCompiler that function and a new one are; and a process whose command
 * line chose (`--no-turbofan`) keeps its choice.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const module = path.join(import.meta.dirname, 'process-start.ts');
const script = `
import { deferOptimizingCompiler, resumeOptimizingCompiler } from ${JSON.stringify(module)};
const hot = (name) => (0, eval)('(function ' + name + '(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; })');
deferOptimizingCompiler();
const during = hot('hotWhileDeferred');
for (let i = 0; i < 3000; i++) during(1000);
console.log('-- resumed');
resumeOptimizingCompiler();
const after = hot('hotAfterResume');
for (let i = 0; i < 3000; i++) { during(1000); after(1000); }
`;

/** What V8 reported optimizing with TurboFan before and after resumeOptimizingCompiler, by function name. */
async function traceOpt(nodeOptions: string[]): Promise<{ before: string; after: string }> {
  const { stdout } = await run(process.execPath, [...nodeOptions, '--trace-opt', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: path.join(import.meta.dirname, '../../..'), maxBuffer: 16 * 1024 * 1024 });
  const [before = '', after = ''] = stdout.split('-- resumed');
  return { before, after };
}

const optimized = (trace: string, name: string) => new RegExp(`completed optimizing .*<JSFunction ${name} .*target TURBOFAN`).test(trace);

describe('deferOptimizingCompiler', () => {
  it('keeps TurboFan off until resumed, then it optimizes hot code again', async () => {
    const { before, after } = await traceOpt([]);
    expect(optimized(before, 'hotWhileDeferred')).toBe(false);
    expect(optimized(after, 'hotWhileDeferred')).toBe(true);
    expect(optimized(after, 'hotAfterResume')).toBe(true);
  });

  it('leaves a choice made on the command line alone', async () => {
    const { after } = await traceOpt(['--no-turbofan']);
    expect(optimized(after, 'hotAfterResume')).toBe(false);
  });
});
