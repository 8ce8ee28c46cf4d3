// `npm run build:console`: builds the browser console (apps/console, Vite + React) into
// dist/console, which the platform serves at /console. `npm install` (postinstall) and
// `npm start` (prestart, with --if-stale) run it, so the README's two commands still do all the
// set-up. Without Vite (a production install with --omit=dev) it says so and builds nothing: the
// server then answers /console with how to build it.
//
//   node scripts/build-console.mjs             builds
//   node scripts/build-console.mjs --if-stale  builds only when a source is newer than the build
//   node scripts/build-console.mjs --dev       serves it with hot reload (API proxied to FASTGPU_URL)
/* global process, console */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const app = path.join(root, 'apps/console');
const configFile = path.join(app, 'vite.config.ts');
const builtIndex = path.join(root, 'dist/console/index.html');
const args = new Set(process.argv.slice(2));

/** The newest modification time under `entry` (a file or a folder), in ms. */
function newestMs(entry) {
  const stats = statSync(entry);
  if (!stats.isDirectory()) return stats.mtimeMs;
  return readdirSync(entry).reduce((newest, name) => Math.max(newest, newestMs(path.join(entry, name))), stats.mtimeMs);
}

function isStale() {
  if (!existsSync(builtIndex)) return true;
  const built = statSync(builtIndex).mtimeMs;
  return ['src', 'index.html', 'vite.config.ts', 'tsconfig.json'].some((entry) => newestMs(path.join(app, entry)) > built);
}

let vite;
try {
  vite = await import('vite');
} catch {
  console.log('console: vite is not installed (an install without dev dependencies), so the console is not built; /console answers how to build it');
  process.exit(0);
}

if (args.has('--dev')) {
  const server = await vite.createServer({ configFile });
  await server.listen();
  server.printUrls();
} else if (args.has('--if-stale') && !isStale()) {
  console.log('console: dist/console is up to date');
} else {
  await vite.build({ configFile, logLevel: 'warn' });
  console.log('console: built dist/console (served at /console)');
}
