import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, notFound, sendApiError } from '@fastgpu/http';

/** Where the console is served: the same origin as the API, so the browser needs no CORS. */
export const CONSOLE_PATH = '/console';

/**
 * The built console (`npm run build:console`: index.html and hashed assets, base `/console/`):
 * `<root>/dist/console`, the root being the nearest folder above this module that holds
 * package.json. This module sits four folders below it in the sources (libs/console/src/static,
 * as `npm start` runs them) and three in a bundle of `npm run build` (dist/apps/<name>), so no
 * fixed number of `..` is right for both.
 */
export function defaultConsoleDirectory(): string {
  let folder = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(folder, 'package.json')) && path.dirname(folder) !== folder) folder = path.dirname(folder);
  return path.join(folder, 'dist', 'console');
}

/**
 * Headers of every /console answer. The console is a Vite build: scripts and styles are files of
 * its own origin (no inline script or style element), so the policy allows only `self`; the API
 * it calls is the same origin. Images may be data: URLs (icons inlined by the build).
 */
export const CONSOLE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Hashed build output (`assets/<name>-<hash>.<ext>`): its name changes with its bytes, so it is cached for a year. */
const IMMUTABLE_CACHE = 'public, max-age=31536000, immutable';
/** index.html names the current assets: always revalidated, so a new build is picked up at once. */
const REVALIDATE_CACHE = 'no-cache';
/** A path that names a file (an asset or a file type the build emits) and is missing is a 404, not the app. */
const FILE_PATH = /^assets\/|\.(js|mjs|css|map|png|jpe?g|gif|svg|ico|webp|avif|woff2?|ttf|json|txt|webmanifest|wasm)$/i;

export const CONSOLE_NOT_BUILT_MESSAGE = 'the console is not built: run `npm run build:console` (npm install and npm start build it), then reload';

export type ConsoleAnswer = { kind: 'file'; file: string; cacheControl: string } | { kind: 'app' } | { kind: 'missing' } | { kind: 'not-built' };

/**
 * What a request below /console is answered with, given what the build folder holds:
 * an existing file is sent (assets immutable, others revalidated); a missing file path is 404;
 * any other path is a route of the single-page app (a deep link), answered with index.html.
 * Pure apart from the `exists` it is given.
 */
export async function consoleAnswer(relativePath: string, exists: (file: string) => Promise<boolean>): Promise<ConsoleAnswer> {
  if (!(await exists('index.html'))) return { kind: 'not-built' };
  const file = path.posix.normalize(relativePath.replace(/^\/+/, ''));
  if (file === '' || file === '.' || file === 'index.html') return { kind: 'app' };
  // Outside the folder or a dotfile: never a file of the build (send refuses them too).
  if (file.startsWith('..') || file.split('/').some((segment) => segment.startsWith('.'))) return { kind: 'missing' };
  if (await exists(file)) return { kind: 'file', file, cacheControl: file.startsWith('assets/') ? IMMUTABLE_CACHE : REVALIDATE_CACHE };
  return FILE_PATH.test(file) ? { kind: 'missing' } : { kind: 'app' };
}

async function isFile(directory: string, file: string): Promise<boolean> {
  try {
    return (await stat(path.join(directory, file))).isFile();
  } catch {
    return false;
  }
}

/**
 * Serves the built console at /console from `directory` (checked on every request, so a build
 * made while the server runs is served at once, and a missing build is a 503 saying how to make
 * it, never a failed start). Registered on the Fastify instance before the app listens.
 */
export async function registerConsole(fastify: FastifyInstance, directory: string): Promise<void> {
  // sendFile only: the routes below decide what each path is; the plugin sends bytes, types and validators.
  await fastify.register(fastifyStatic, { root: directory, serve: false, decorateReply: true, cacheControl: false, index: false, dotfiles: 'deny' });
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    for (const [name, value] of Object.entries(CONSOLE_SECURITY_HEADERS)) reply.header(name, value);
    const relative = (request.params as { '*'?: string })['*'] ?? '';
    const answer = await consoleAnswer(relative, (file) => isFile(directory, file));
    switch (answer.kind) {
      case 'not-built':
        reply.header('cache-control', 'no-store');
        return sendApiError(reply, new ApiError(503, 'console_not_built', CONSOLE_NOT_BUILT_MESSAGE));
      case 'missing':
        return sendApiError(reply, notFound(`console file ${relative}`));
      case 'app':
        reply.header('cache-control', REVALIDATE_CACHE);
        return reply.type('text/html; charset=utf-8').sendFile('index.html', directory, { cacheControl: false });
      case 'file':
        reply.header('cache-control', answer.cacheControl);
        return reply.sendFile(answer.file, directory, { cacheControl: false });
      default: {
        const unreachable: never = answer;
        return unreachable;
      }
    }
  };
  // `/console/*` also matches `/console/`; Fastify adds HEAD to each GET route.
  for (const url of [CONSOLE_PATH, `${CONSOLE_PATH}/*`]) fastify.get(url, handler);
}
