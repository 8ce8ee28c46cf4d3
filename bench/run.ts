import 'reflect-metadata';
import { readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * `npm run bench [-- <name> ...flags]`: runs every `bench/*.bench.ts` (or those named). Each
 * prints its figures as ratios against a baseline measured in the same run, never as
 * absolute pass/fail timings.
 */
const folder = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const names = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
const files = readdirSync(folder)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => names.length === 0 || names.includes(f.replace(/\.bench\.ts$/, '')))
  .sort();
if (files.length === 0) {
  console.error(`no benchmark matches ${names.join(', ')}`);
  process.exit(1);
}
/** The machine's load average (1, 5, 15 min): what else the cores were doing around a run. */
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
for (const file of files) {
  console.log(`\n=== ${file.replace(/\.bench\.ts$/, '')} (load average ${load()})`);
  const module = (await import(pathToFileURL(path.join(folder, file)).href)) as { default: (flags: string[]) => Promise<void> };
  await module.default(flags);
  console.log(`(load average after the run: ${load()})`);
}
process.exit(0);
