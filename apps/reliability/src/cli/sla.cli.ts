import path from 'node:path';
import { loadConfig } from '@fastgpu/config';
import { createDatabase } from '@fastgpu/db';
import { connectBus } from '@fastgpu/messaging';
import { reliabilityConfig } from '../reliability.config';
import { runSlaCommand } from './sla.command';

// `tsx apps/reliability/src/cli/sla.cli.ts --period 2026-11 --format csv`: SLA reports for SREs,
// read from DATABASE_URL (or the embedded PGlite database); `--close` also needs NATS_URL.
const config = loadConfig();
const handle = createDatabase({ databaseUrl: config.databaseUrl, dataDir: path.join(config.dataDir, 'pglite') });
let code = 1;
try {
  code = await runSlaCommand(process.argv.slice(2), {
    db: handle.db,
    config: reliabilityConfig(config),
    nowMs: Date.now(),
    connectBus: () => connectBus({ natsUrl: config.natsUrl, subjectPrefix: config.subjectPrefix, name: 'fastgpu-sla-cli', ensureStreams: false }),
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
  });
} catch (error) {
  process.stderr.write(`sla: ${(error as Error).message}\n`);
} finally {
  await handle.close();
}
process.exit(code);
