import { CliError } from './log-reader';
import type { CliContext } from './cli';

/** `events replay` delegates to the replay tool written next to it (libs/replay + replay.registry.ts). */
export async function runReplay(_args: string[], _ctx: CliContext): Promise<number> {
  throw new CliError('replay is not available in this build yet (libs/replay is not present); nothing was changed', 2);
}
