import type { Kysely } from 'kysely';
import type { Database } from '@fastgpu/db';
import type { Bus } from '@fastgpu/messaging';
import { formatDiff } from './diff';
import { Rebuild, type RebuildProgress, type ReplayableProjection } from './rebuild';
import { EventNotAppliedError } from './threaded-reader';

export interface ReplayIo {
  out(line: string): void;
  err(line: string): void;
  /** Rewrites the current terminal line (progress); falls back to err lines. */
  progress?(line: string): void;
}

export const replayUsage = `usage: npm run replay -- <projection> [--swap] [--diff-only] [--restart] [--discard]

Rebuilds <projection> from sequence 1 into <table>_rebuild copies while the live one keeps
serving, resuming from its own checkpoint (<name>@rebuild) after an interruption, then brings
the copy to exactly the live sequence and compares every table row by row.
  --swap       then swap: <table> -> <table>_previous, <table>_rebuild -> <table>, in one transaction
  --diff-only  do not replay the whole log: align the existing rebuild and compare
  --restart    drop an existing rebuild and start again from sequence 1
  --discard    drop the rebuild tables and checkpoint, and stop
Exit code: 0 identical (or swapped), 1 different, 2 usage or setup error, 3 an event the
projection cannot apply (its sequence, event id, type and reason are printed; see docs/operations.md,
"Runbook: a projection stopped at an event").`;

function formatNumber(n: number): string {
  return n.toLocaleString('en-US');
}

export function formatProgress(p: RebuildProgress): string {
  // Tenths of a percent, in integers (progress display only).
  const tenths = p.targetSequence ? Math.floor((1000 * p.sequence) / p.targetSequence) : 1000;
  const percent = `${Math.floor(tenths / 10)}.${tenths % 10}`;
  const eta = p.etaSeconds === null ? 'ETA ?' : `ETA ${p.etaSeconds}s`;
  return `${p.projection}: ${formatNumber(p.sequence)} / ${formatNumber(p.targetSequence)} (${percent}%) ${formatNumber(p.eventsPerSecond)} events/s ${eta} [${p.status}${p.error ? `: ${p.error}` : ''}]`;
}

/** `replay <projection> …` over a registry of replayable projections. */
export async function runReplayCommand(args: string[], registry: Readonly<Record<string, ReplayableProjection>>, ctx: { bus: Bus; db: Kysely<Database>; io: ReplayIo; alignWaitIntervalMs?: number }): Promise<number> {
  const name = args.find((a) => !a.startsWith('-'));
  const flags = new Set(args.filter((a) => a.startsWith('-')));
  const known = new Set(['--swap', '--diff-only', '--restart', '--discard']);
  const unknownFlags = [...flags].filter((f) => !known.has(f));
  if (!name || unknownFlags.length) {
    ctx.io.err(unknownFlags.length ? `unknown option(s) ${unknownFlags.join(', ')}` : 'name a projection');
    ctx.io.err(replayUsage);
    ctx.io.err(`projections: ${Object.keys(registry).join(', ')}`);
    return 2;
  }
  const replayable = registry[name];
  if (!replayable) {
    ctx.io.err(`unknown projection "${name}"; known: ${Object.keys(registry).join(', ')}`);
    return 2;
  }
  const rebuild = new Rebuild(ctx.bus, ctx.db, replayable, { onProgress: (p) => (ctx.io.progress ?? ctx.io.err)(formatProgress(p)) });
  if (flags.has('--discard')) {
    await rebuild.discard();
    ctx.io.out(`${name}: rebuild tables and checkpoint dropped`);
    return 0;
  }
  let result: Awaited<ReturnType<Rebuild['alignAndCompare']>>;
  try {
    if (flags.has('--diff-only')) {
      const prepared = await rebuild.prepare({ restart: false });
      if (prepared.fresh) ctx.io.err(`${name}: there was no rebuild; a fresh one was started and will be caught up now`);
    } else {
      const prepared = await rebuild.prepare({ restart: flags.has('--restart') });
      ctx.io.err(prepared.fresh ? `${name}: rebuilding from sequence 1 into ${replayable.tables.map((t) => `${t}_rebuild`).join(', ')}` : `${name}: resuming the rebuild after sequence ${prepared.resumedFrom}`);
      await rebuild.catchUp();
    }
    result = await rebuild.alignAndCompare({ swap: flags.has('--swap'), ...(ctx.alignWaitIntervalMs !== undefined ? { waitIntervalMs: ctx.alignWaitIntervalMs } : {}) });
  } catch (error) {
    if (!(error instanceof EventNotAppliedError)) throw error;
    // Every event before it is in the rebuild tables; a run after the repair resumes there.
    ctx.io.err(`${name}: ${error.message}`);
    ctx.io.err(`${name}: the rebuild stands at sequence ${error.sequence - 1}; repair the event with a fix-up (libs/contracts upcasters.ts, docs/operations.md) and run again to resume`);
    return 3;
  }
  ctx.io.out(
    result.aligned
      ? `${name}: compared at sequence ${result.sequence}: ${result.equal ? 'identical' : 'DIFFERENT'}`
      : `${name}: the live projection stands at sequence ${result.liveSequence}, behind the rebuild at ${result.sequence} (stopped or stalled): compared unaligned`,
  );
  ctx.io.out(formatDiff(result.diffs));
  if (result.swapped) ctx.io.out(`${name}: swapped; the previous tables are kept as <table>_previous`);
  return result.equal || result.swapped ? 0 : 1;
}
