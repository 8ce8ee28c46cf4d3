import { createRequire } from 'node:module';
import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * The longest a service's start runs without V8's optimizing compiler (deferOptimizingCompiler):
 * a start that waits this long (NATS or PostgreSQL not answering yet, a long catch-up before the
 * service listens) gets it back then.
 */
export const OPTIMIZER_DEFERRED_MS_MAX = 20_000;

let optimizerDeferred: NodeJS.Timeout | undefined;

/**
 * Keeps V8's optimizing compiler (TurboFan) off while a service starts, until
 * `resumeOptimizingCompiler` (runStandalone, once the service listens) or
 * OPTIMIZER_DEFERRED_MS_MAX at the latest. Start-up code (module bodies, Nest's scan of modules
 * and decorators) runs a few hundred times at most, yet enough of it crosses TurboFan's
 * thresholds that an idle service kept ~7 MB of optimized code, deoptimization data and the
 * compiler's freed zones for code that never runs again (docs/benchmarks.md, service-rss).
 * Interpreter and baseline compiler run as usual, and TurboFan optimizes the request and
 * projection paths as they become hot after the start. Nothing is deferred when the command line
 * or NODE_OPTIONS already chooses (`--turbofan`, `--opt`, `--no-…`).
 */
export function deferOptimizingCompiler(): void {
  const chosen = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((flag) => /^--(no-)?(turbofan|opt)$/.test(flag));
  if (chosen || optimizerDeferred) return;
  v8.setFlagsFromString('--no-turbofan');
  optimizerDeferred = setTimeout(resumeOptimizingCompiler, OPTIMIZER_DEFERRED_MS_MAX);
  optimizerDeferred.unref();
}

/** Turns TurboFan back on after deferOptimizingCompiler (a no-op otherwise). */
export function resumeOptimizingCompiler(): void {
  if (!optimizerDeferred) return;
  clearTimeout(optimizerDeferred);
  optimizerDeferred = undefined;
  v8.setFlagsFromString('--turbofan');
}

/**
 * Run first by a service's main, before it imports the service (`await import`), so that what an
 * idle service never uses is not loaded at start (docs/benchmarks.md, service-rss). Imports no
 * package itself. It defers the optimizing compiler for the start (deferOptimizingCompiler), and
 * keeps two things Node and Nest would otherwise do on import from happening:
 *
 * - `import ... from 'node:http'` (Nest, Fastify) builds the ES module view of node:http from
 *   every export, which calls the lazy getters `WebSocket`, `CloseEvent` and `MessageEvent` and
 *   so loads Node's bundled undici. The view is built here with those three left out; CommonJS
 *   `require('node:http').WebSocket` and the globals (`WebSocket`, `fetch`) are unchanged, and
 *   nothing of ours imports them from node:http.
 * - @nestjs/common builds two `Intl.DateTimeFormat`s when it loads (its console logger's
 *   timestamps), which pages in the ICU date data. They are built on their first use instead
 *   (our services log with NestJsonLogger and never use them).
 */
export async function prepareServiceProcess(): Promise<void> {
  deferOptimizingCompiler();
  const http = createRequire(import.meta.url)('node:http') as object;
  const undiciGetters = ['WebSocket', 'CloseEvent', 'MessageEvent'].flatMap((name) => {
    const descriptor = Object.getOwnPropertyDescriptor(http, name);
    return descriptor?.get ? [[name, descriptor] as const] : [];
  });
  for (const [name, descriptor] of undiciGetters) Object.defineProperty(http, name, { configurable: true, enumerable: descriptor.enumerable, writable: true, value: undefined });
  try {
    await import('node:http');
  } finally {
    for (const [name, descriptor] of undiciGetters) Object.defineProperty(http, name, descriptor);
  }

  const DateTimeFormat = Intl.DateTimeFormat;
  Intl.DateTimeFormat = new Proxy(DateTimeFormat, { construct: (_target, args: ConstructorParameters<typeof Intl.DateTimeFormat>) => lazyDateTimeFormat(DateTimeFormat, args) });
  try {
    await import('@nestjs/common');
  } finally {
    Intl.DateTimeFormat = DateTimeFormat;
  }
}

/** An `Intl.DateTimeFormat` built on first use: every property read goes to the real one. */
function lazyDateTimeFormat(DateTimeFormat: typeof Intl.DateTimeFormat, args: ConstructorParameters<typeof Intl.DateTimeFormat>): Intl.DateTimeFormat {
  let real: Intl.DateTimeFormat | undefined;
  const formatter = () => (real ??= new DateTimeFormat(...args));
  return new Proxy(Object.create(DateTimeFormat.prototype) as Intl.DateTimeFormat, {
    get: (_target, key) => {
      const value: unknown = Reflect.get(formatter(), key);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(formatter()) : value;
    },
  });
}

/**
 * One full, compacting garbage collection once a service has started, which returns to the
 * system what loading modules and building the app left behind: V8 does not shrink its heap
 * by itself while a process idles, and module loading leaves ~10 MB of free heap pages
 * (docs/benchmarks.md, service-rss). `gc` is reached as jest's leak detector does: the flag set
 * at run time exposes it in a new context. Blocks the process for some tens of milliseconds.
 */
export function collectStartupGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
