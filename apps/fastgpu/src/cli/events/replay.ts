import { replayUsage, runReplayCommand } from '@fastgpu/replay';
import { replayableProjections } from '../replay.registry';
import { CliError } from './log-reader';
import type { CliContext } from './cli';

/**
 * `events replay <projection> [--swap] [--diff-only] [--restart] [--discard]` is the replay tool
 * of libs/replay over the registry in replay.registry.ts: rebuild into fresh tables, diff
 * against the live ones, swap on request, resume after a crash, with a progress line.
 * An unknown projection is refused before anything is opened or written.
 */
export async function runReplay(args: string[], ctx: CliContext): Promise<number> {
  const known = Object.keys(replayableProjections);
  if (args.length === 0 || args.includes('--help') || args.includes('-h') || args.includes('--list')) {
    ctx.io.out(replayUsage.replace('npm run replay --', 'npm run events -- replay'));
    ctx.io.out(`projections: ${known.join(', ')}`);
    return args.length === 0 ? 2 : 0;
  }
  const name = args.find((a) => !a.startsWith('-'));
  if (name && !Object.hasOwn(replayableProjections, name)) throw new CliError(`unknown projection "${name}"; known: ${known.join(', ')}. Nothing was changed.`, 2);
  if (!ctx.openDatabase) throw new CliError('replay needs the database (DATABASE_URL, or the embedded PGlite folder)', 2);
  const database = await ctx.openDatabase();
  try {
    return await runReplayCommand(args, replayableProjections, { bus: ctx.bus, db: database.db, io: ctx.io });
  } finally {
    await database.close();
  }
}
