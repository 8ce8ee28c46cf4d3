import 'reflect-metadata';
import { createInterface } from 'node:readline/promises';
import { loadConfig } from '@fastgpu/config';
import { connectBus } from '@fastgpu/messaging';
import { openOperatorDatabase } from '../../../metering/src/cli/cli-context';
import { runEventsCli, type CliIo } from './events/cli';

// `npm run events -- <command>`: the SRE's window on the event log (see --help).
const argv = process.argv.slice(2);
const io: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  ...(process.stderr.isTTY ? { progress: (line: string) => process.stderr.write(`\r\x1b[2K${line}`) } : {}),
  ...(process.stdin.isTTY
    ? {
        confirm: async (question: string) => {
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          try {
            return /^y(es)?$/i.test((await rl.question(question)).trim());
          } finally {
            rl.close();
          }
        },
      }
    : {}),
};

if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help' || argv.includes('--help')) {
  process.exitCode = await runEventsCli(argv, { bus: undefined as never, io });
} else {
  const config = loadConfig();
  let bus;
  try {
    bus = await connectBus({ natsUrl: config.natsUrl, subjectPrefix: config.subjectPrefix, name: 'fastgpu-events-cli', ensureStreams: false });
  } catch (error) {
    io.err(`error: cannot connect to NATS at ${config.natsUrl}: ${(error as Error).message}`);
    process.exit(1);
  }
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  try {
    process.exitCode = await runEventsCli(argv, { bus, io, signal: controller.signal, openDatabase: () => openOperatorDatabase(config) });
  } finally {
    await bus.close();
  }
}
