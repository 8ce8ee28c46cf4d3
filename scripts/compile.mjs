// Compiles a TypeScript entry point of this repository ahead of time, as a deployment would,
// instead of running it under tsx (whose on-the-fly compiler holds ~80 MB of a process): one ESM
// file bundling our TypeScript, with npm packages left to node_modules. Our libs are marked free
// of import side effects, so the unused modules of a barrel (the Nest transport, telemetry, gRPC)
// are left out and the process loads what it runs, nothing else. Output goes under
// node_modules/.cache/fastgpu so the packages resolve from the repository.
//
//   node [node flags] scripts/compile.mjs <entry.ts> [args...]   compiles, then runs it with args
/* global process */
import { build } from 'esbuild';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const libs = path.join(repositoryRoot, 'libs') + path.sep;

/**
 * Compiles `entry` (a path from the repository root or absolute) and returns the output file:
 * `outfile` when given (scripts/build.mjs writes dist/), else a file under the cache.
 */
export async function compile(entry, outfile = undefined) {
  const absolute = path.resolve(repositoryRoot, entry);
  const name = path.relative(repositoryRoot, absolute).replace(/[\\/]/g, '__').replace(/\.ts$/, '.mjs');
  outfile = outfile ? path.resolve(repositoryRoot, outfile) : path.join(repositoryRoot, 'node_modules/.cache/fastgpu', name);
  await build({
    // Code splitting: a module our code loads with `await import()` (gRPC in libs/platform,
    // the OTLP exporter in libs/telemetry) becomes a chunk beside the entry file, with its own
    // imports of npm packages, so a process loads those packages only when it takes that path.
    // Without splitting esbuild would inline the module and hoist its package imports to the
    // top of the entry file, loading them in every process.
    entryPoints: [{ in: absolute, out: path.basename(outfile, '.mjs') }],
    outdir: path.dirname(outfile),
    outExtension: { '.js': '.mjs' },
    splitting: true,
    chunkNames: '[name]-[hash]',
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    packages: 'external',
    tsconfig: path.join(repositoryRoot, 'tsconfig.json'),
    logLevel: 'warning',
    plugins: [
      {
        name: 'side-effect-free-libs',
        setup(plugin) {
          plugin.onResolve({ filter: /^@fastgpu\/|^\.\.?\// }, async (args) => {
            if (args.pluginData?.resolving) return undefined;
            const resolved = await plugin.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { resolving: true } });
            if (resolved.errors.length) return { errors: resolved.errors };
            return resolved.path.startsWith(libs) ? { ...resolved, sideEffects: false } : resolved;
          });
        },
      },
    ],
  });
  // Worker threads are started from files next to the module that starts them
  // (`new URL('./x.worker.mjs', import.meta.url)`): plain JavaScript, copied beside the bundle
  // with the plain-JavaScript modules they import (every .mjs of a lib's src).
  await mkdir(path.dirname(outfile), { recursive: true });
  for (const lib of await readdir(libs)) {
    const source = path.join(libs, lib, 'src');
    const files = await readdir(source).catch(() => []);
    for (const file of files.filter((f) => f.endsWith('.mjs'))) await copyFile(path.join(source, file), path.join(path.dirname(outfile), file));
  }
  return outfile;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const entry = process.argv[2];
  if (!entry) {
    process.stderr.write('usage: node scripts/compile.mjs <entry.ts> [args...]\n');
    process.exit(2);
  }
  const outfile = await compile(entry);
  // The compiled program sees its own arguments where it expects them (process.argv.slice(2)).
  process.argv.splice(1, 2, outfile);
  await import(pathToFileURL(outfile).href);
}
