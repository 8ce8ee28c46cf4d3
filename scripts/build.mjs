// `npm run build`: the production build. Every service, the all-in-one apps/fastgpu, the node agent,
// the simulator and every CLI (`*.cli.ts` under apps/ and libs/) compiled ahead of time into
// dist/ — one ESM file per entry point, bundled by esbuild as scripts/compile.mjs does (our
// TypeScript bundled, npm packages left to node_modules; what an entry loads with `await import()`
// goes into chunk files beside it, loaded on that path only) — so production runs them with plain
// `node dist/...`, no TypeScript loader at run time.
//
// Layout: `apps/<app>/src/main.ts` → `dist/apps/<app>/main.mjs`, `<pkg>/src/cli/x.cli.ts` and
// `<pkg>/src/x.cli.ts` → `dist/<pkg>/x.cli.mjs`. Every bundle sits three folders below the
// repository root, as its sources do, because a few modules find repository files relative to
// themselves (`../../../proto` in libs/grpc, `../../../docs` in the catalogue CLI). Files that a
// bundle loads beside itself at run time (worker threads, the node agent's supervisor) are
// copied next to it.
//
// Decorators: esbuild compiles TypeScript's legacy decorators (tsconfig experimentalDecorators)
// but emits no decorator metadata; Nest never needs it here because every constructor
// parameter names its token with @Inject (docs/adr/0002-runtime-and-packaging.md).
//
//   node scripts/build.mjs            builds everything, prints one line per entry point
//   node scripts/build.mjs --list     prints the entry points and their outputs, builds nothing
/* global process, console, performance */
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compile } from './compile.mjs';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const distFolder = path.join(repositoryRoot, 'dist');

/** Files loaded at run time relative to a bundle: source (from the root) → place beside the bundle. */
const besideBundle = {
  'apps/node-agent/main.mjs': [['apps/node-agent/src/runs/supervisor.mjs', 'runs/supervisor.mjs']],
  // `npm start`'s local agent (FASTGPU_LOCAL_AGENT=1) runs in the all-in-one bundle.
  'apps/fastgpu/main.mjs': [['apps/node-agent/src/runs/supervisor.mjs', 'runs/supervisor.mjs']],
};

/** Every entry point: `{ source, output }`, paths from the repository root. */
export async function entryPoints() {
  const entries = [];
  for (const group of ['apps', 'libs']) {
    for (const name of (await readdir(path.join(repositoryRoot, group))).sort()) {
      const source = path.join(group, name, 'src');
      if (!existsSync(path.join(repositoryRoot, source))) continue;
      if (group === 'apps' && existsSync(path.join(repositoryRoot, source, 'main.ts'))) {
        entries.push({ source: `${source}/main.ts`, output: `dist/${group}/${name}/main.mjs` });
      }
      for (const folder of [source, `${source}/cli`]) {
        const files = await readdir(path.join(repositoryRoot, folder)).catch(() => []);
        for (const file of files.filter((f) => f.endsWith('.cli.ts')).sort()) {
          entries.push({ source: `${folder}/${file}`, output: `dist/${group}/${name}/${file.replace(/\.ts$/, '.mjs')}` });
        }
      }
    }
  }
  return entries;
}

/** Builds every entry point into dist/ (emptied first); returns the entries built. */
export async function buildAll({ log = () => {} } = {}) {
  const entries = await entryPoints();
  await rm(distFolder, { recursive: true, force: true });
  for (const entry of entries) {
    const started = performance.now();
    await compile(entry.source, entry.output);
    for (const [from, to] of besideBundle[path.relative(distFolder, path.join(repositoryRoot, entry.output))] ?? []) {
      const target = path.join(repositoryRoot, path.dirname(entry.output), to);
      await mkdir(path.dirname(target), { recursive: true });
      await copyFile(path.join(repositoryRoot, from), target);
    }
    log(`${entry.source} → ${entry.output} (${Math.round(performance.now() - started)} ms)`);
  }
  return entries;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--list')) {
    for (const entry of await entryPoints()) console.log(`${entry.source} → ${entry.output}`);
  } else {
    const entries = await buildAll({ log: (line) => console.log(line) });
    console.log(`built ${entries.length} entry points into dist/ (run them with node, e.g. node dist/apps/intake/main.mjs)`);
  }
}
