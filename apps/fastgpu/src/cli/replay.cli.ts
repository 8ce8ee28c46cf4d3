import 'reflect-metadata';
import { loadConfig } from '@fastgpu/config';
import { connectBus } from '@fastgpu/messaging';
import { replayUsage, runReplayCommand } from '@fastgpu/replay';
import { openOperatorDatabase } from '../../../metering/src/cli/cli-context';
import { runReconcile } from '../../../metering/src/cli/reconcile';
import { replayableProjections } from './replay.registry';

// `npm run replay -- <projection> [--swap] [--diff-only] [--restart] [--discard]` rebuilds a
// projection next to the live one; `npm run replay -- reconcile [--tenant <id>]` checks metered
// GPU-ms per job against the scheduler's record.
const argv = process.argv.slice(2);
const io = {
  out: (line: string) => process.stdout.write(`${line}\n`),
  err: (line: string) => process.stderr.write(`${line}\n`),
  ...(process.stderr.isTTY ? { progress: (line: string) => process.stderr.write(`\r\x1b[2K${line}`) } : {}),
};

if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
  io.out(replayUsage);
  io.out(`       npm run replay -- reconcile [--tenant <id>]`);
  io.out(`projections: ${Object.keys(replayableProjections).join(', ')}`);
  process.exit(argv.length === 0 ? 2 : 0);
}

const config = loadConfig();
const database = await openOperatorDatabase(config);
try {
  if (argv[0] === 'reconcile') {
    process.exitCode = await runReconcile(argv.slice(1), database.db, io);
  } else {
    const bus = await connectBus({ natsUrl: config.natsUrl, subjectPrefix: config.subjectPrefix, name: 'fastgpu-replay' });
    try {
      process.exitCode = await runReplayCommand(argv, replayableProjections, { bus, db: database.db, io });
      if (io.progress) process.stderr.write('\n');
    } finally {
      await bus.close();
    }
  }
} catch (error) {
  io.err(`error: ${(error as Error).message}`);
  process.exitCode = 2;
} finally {
  await database.close();
}
